package mcpkind

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

func TestMemberName(t *testing.T) {
	long := strings.Repeat("x", 130)
	tests := []struct {
		prefix, tool, want string
	}{
		{"up_", "echo", "up_echo"},
		{"", "echo", "echo"},
		{"up.", "get-sum", "up.get-sum"},
		{"up_", "has space", "up_has_space-" + hash8("has space")},
		{"up_", "ünïcode", "up__n_code-" + hash8("ünïcode")},
		{"up_", "a/b", "up_a_b-" + hash8("a/b")},
		{"up_", long, "up_" + long[:128-3-9] + "-" + hash8(long)},
	}
	for _, tt := range tests {
		got := memberName(tt.prefix, tt.tool)
		if got != tt.want {
			t.Errorf("memberName(%q, %q) = %q, want %q", tt.prefix, tt.tool, got, tt.want)
		}
		if err := agents.ValidName(got); err != nil {
			t.Errorf("memberName(%q, %q) = %q: %v", tt.prefix, tt.tool, got, err)
		}
	}
	// Names that sanitize alike stay distinct.
	if a, b := memberName("", "a b"), memberName("", "a/b"); a == b {
		t.Errorf("%q and %q both map to %q", "a b", "a/b", a)
	}
}

func hash8(s string) string { return hashedName("", s)[len(hashedName("", s))-8:] }

func TestParseOptions(t *testing.T) {
	tests := []struct {
		opts    string
		wantErr string
	}{
		{`{}`, "set command"},
		{`{"command":"x","url":"http://h"}`, "not both"},
		{`{"url":"ftp://h"}`, "want http://"},
		{`{"command":"x","headers":{"a":"b"}}`, "apply to url"},
		{`{"url":"http://h","args":["a"]}`, "apply to command"},
		{`{"command":"x","start":"soon"}`, "want eager or lazy"},
		{`{"command":"x","include":["[a"]}`, "tool pattern"},
		{`{"command":"x","prefix":"a b"}`, "prefix"},
		{`{"command":"x","log_level":"loud"}`, "log_level"},
		{`{"command":"x","ping_interval":"often"}`, "not a duration"},
		{`{"command":"x","bogus":1}`, `unknown field "bogus"`},
		{`{"command":"x","env":{"A=B":"c"}}`, "invalid variable name"},
		{`{"command":"x"}`, ""},
		{`{"url":"https://h/mcp","prefix":"","ping_interval":0,"connect_timeout":"5s"}`, ""},
	}
	for _, tt := range tests {
		def := &agents.Definition{Name: "up", Kind: Kind, Options: json.RawMessage(tt.opts)}
		_, err := New(context.Background(), def)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errs.Is(err, errs.Invalid)):
			t.Errorf("%s: error %v, want Invalid containing %q", tt.opts, err, tt.wantErr)
		}
	}
	u, err := New(context.Background(), &agents.Definition{Name: "up", Kind: Kind, Options: json.RawMessage(`{"url":"https://h/mcp","prefix":"","ping_interval":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	if u.s.prefix != "" || u.s.pingInterval != 0 || u.s.connectTimeout != DefaultConnectTimeout || u.s.Start != StartEager || u.s.Protocol != DefaultProtocol {
		t.Errorf("settings = %+v", u.s)
	}
	if _, err := u.Invoke(context.Background(), nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("invoking the upstream itself: %v", err)
	}
}

// tool builds an upstream tool definition as it comes off the wire.
func tool(t *testing.T, js string) *mcp.Tool {
	t.Helper()
	var tl mcp.Tool
	if err := json.Unmarshal([]byte(js), &tl); err != nil {
		t.Fatal(err)
	}
	return &tl
}

func TestSetTools(t *testing.T) {
	def := &agents.Definition{Name: "up", Kind: Kind, Version: "2.0.0", Tags: []string{"ext"}, Metadata: map[string]string{"owner": "x"},
		Options: json.RawMessage(`{"command":"x","exclude":["secret*"]}`)}
	u, err := New(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	r := agents.NewRegistry()
	var changes []string
	defer r.Subscribe(func(c agents.Change) { changes = append(changes, c.Type.String()+" "+c.Agent.Spec().Name) })()

	// Another agent already holds a name one tool would get.
	other := &fakeAgent{spec: agents.Spec{Name: "up_taken", Version: "2.0.0"}}
	if err := r.Add(other); err != nil {
		t.Fatal(err)
	}

	echo := `{"name":"echo","title":"Echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]},
		"outputSchema":{"type":"object","properties":{"text":{"type":"string"}}},
		"annotations":{"readOnlyHint":true,"destructiveHint":false,"idempotentHint":true,"openWorldHint":false}}`
	tools := []*mcp.Tool{
		tool(t, echo),
		tool(t, `{"name":"weird schema","inputSchema":{"type":"string"},"outputSchema":{"type":5}}`),
		tool(t, `{"name":"secret_tool","inputSchema":{"type":"object"}}`),
		tool(t, `{"name":"taken","inputSchema":{"type":"object"}}`),
	}
	u.setTools(tools)
	u.Attach(r)

	names := func() []string {
		var out []string
		for _, tl := range u.Tools() {
			out = append(out, tl.Spec().Name)
		}
		return out
	}
	weird := "up_weird_schema-" + hash8("weird schema")
	if diff := cmp.Diff([]string{"up_echo", "up_taken", weird}, names()); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	a, err := r.Resolve("up_echo")
	if err != nil {
		t.Fatal(err)
	}
	f := false
	want := agents.Spec{
		Name: "up_echo", Version: "2.0.0", Title: "Echo", Description: "Echoes.", Kind: Kind,
		Tags: []string{"ext"}, Metadata: map[string]string{"owner": "x", MetaUpstream: "up", MetaUpstreamTool: "echo"},
		Hints: agents.Hints{ReadOnly: true, Destructive: &f, Idempotent: true, OpenWorld: &f},
	}
	got := *a.Spec()
	if got.Input == nil || !got.Input.HasProperty("text") || got.Output == nil {
		t.Errorf("schemas not passed through: %s / %v", got.Input.JSON(), got.Output)
	}
	got.Input, got.Output = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("up_echo spec (-want +got):\n%s", diff)
	}
	w, err := r.Resolve(weird)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.Spec().Input.JSON()) != `{"type":"object"}` || string(w.Spec().Output.JSON()) != `{"type":"object"}` {
		t.Errorf("unusable schemas should fall back to any object: %s %s", w.Spec().Input.JSON(), w.Spec().Output.JSON())
	}
	if cur, _ := r.Resolve("up_taken"); cur != agents.Agent(other) {
		t.Errorf("a member replaced an agent it does not own")
	}

	// The upstream's list changes: echo unchanged, weird removed, new added,
	// echo's description... unchanged; a new version of "new" replaces it.
	changes = nil
	u.setTools([]*mcp.Tool{tool(t, echo), tool(t, `{"name":"new","inputSchema":{"type":"object"}}`)})
	u.setTools([]*mcp.Tool{tool(t, echo), tool(t, `{"name":"new","description":"v2","inputSchema":{"type":"object"}}`)})
	if diff := cmp.Diff([]string{"removed " + weird, "added up_new", "replaced up_new"}, changes); diff != "" {
		t.Errorf("registry changes (-want +got):\n%s", diff)
	}

	u.Close()
	if cur, err := r.Resolve("up_taken"); err != nil || cur != agents.Agent(other) {
		t.Errorf("Close removed an agent it does not own")
	}
	if _, err := r.Resolve("up_echo"); !errs.Is(err, errs.NotFound) {
		t.Errorf("Close left its tools registered: %v", err)
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("MCPKIND_SECRET", "s3cret")
	t.Setenv("PATH", "/usr/bin")
	has := func(env []string, kv string) bool {
		for _, e := range env {
			if e == kv {
				return true
			}
		}
		return false
	}
	s := &settings{Options: Options{Env: map[string]string{"EXTRA": "1"}}}
	env := s.environ()
	if has(env, "MCPKIND_SECRET=s3cret") || !has(env, "PATH=/usr/bin") || !has(env, "EXTRA=1") {
		t.Errorf("minimal environment = %v", env)
	}
	s.InheritEnv = true
	if env := s.environ(); !has(env, "MCPKIND_SECRET=s3cret") || !has(env, "EXTRA=1") {
		t.Errorf("inherited environment lacks mcptower's variables")
	}
	s = &settings{Options: Options{URL: "https://user:pw@h.example/mcp?token=T#x"}}
	if got := s.target(); got != "https://h.example/mcp" {
		t.Errorf("target() = %q, want no user info or query", got)
	}
}

type fakeAgent struct{ spec agents.Spec }

func (a *fakeAgent) Spec() *agents.Spec { return &a.spec }
func (a *fakeAgent) Invoke(context.Context, *agents.Call) (*agents.Result, error) {
	return &agents.Result{}, nil
}
