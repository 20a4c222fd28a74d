package tools_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/tools"
)

// env is an engine serving the built-ins over a memory store.
type env struct {
	t      *testing.T
	engine *agents.Engine
	store  *memory.Store
}

func newEnv(t *testing.T, extra ...agents.Agent) *env {
	t.Helper()
	store := memory.New(contextstore.Options{})
	t.Cleanup(func() { _ = store.Close() })
	r := agents.NewRegistry()
	echo, err := tools.New("echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(append(tools.Defaults(), echo), extra...) {
		if err := r.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, engine: &agents.Engine{Registry: r, Store: store, Logger: slog.New(slog.DiscardHandler)}, store: store}
}

// call invokes agent with args in session and decodes its output into out.
func (e *env) call(session, agent, args string, out any) *agents.Response {
	e.t.Helper()
	resp, err := e.engine.Invoke(context.Background(), agents.Request{Agent: agent, Args: json.RawMessage(args), Session: session})
	if err != nil {
		e.t.Fatalf("%s(%s) in session %q: %v", agent, args, session, err)
	}
	if resp.Result.IsError {
		e.t.Fatalf("%s(%s): error result %+v", agent, args, resp.Result)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result.Output, out); err != nil {
			e.t.Fatalf("%s output %s: %v", agent, resp.Result.Output, err)
		}
	}
	return resp
}

// callErr invokes agent and returns its error, failing if there is none.
func (e *env) callErr(session, agent, args string) error {
	e.t.Helper()
	resp, err := e.engine.Invoke(context.Background(), agents.Request{Agent: agent, Args: json.RawMessage(args), Session: session})
	if err == nil {
		e.t.Fatalf("%s(%s) = %s, want an error", agent, args, resp.Result.Output)
	}
	return err
}

// entryView is the part of tools.EntryView the tests compare.
type entryView struct {
	Seq     int64
	Role    string
	Agent   string
	Content any
	Tags    map[string]string
}

func views(es []tools.EntryView) []entryView {
	out := make([]entryView, len(es))
	for i, e := range es {
		out[i] = entryView{Seq: e.Seq, Role: e.Role, Agent: e.Agent, Content: e.Content, Tags: e.Tags}
	}
	return out
}

func seqs(es []tools.EntryView) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestContextAppendThenHistory(t *testing.T) {
	e := newEnv(t)
	var app tools.AppendOutput
	resp := e.call("s1", "context_append", `{"content":"remember the milk","tags":{"topic":"shopping"}}`, &app)
	if diff := cmp.Diff(tools.AppendOutput{Session: "s1", Seq: 1}, app); diff != "" {
		t.Errorf("append output (-want +got):\n%s", diff)
	}
	if resp.Seq != 2 {
		t.Errorf("the append call was recorded at seq %d, want 2 (after the note)", resp.Seq)
	}

	var hist tools.HistoryOutput
	e.call("s1", "context_history", `{}`, &hist)
	if hist.Session != "s1" || hist.Next != 0 {
		t.Errorf("history session %q next %d, want s1 and no previous page", hist.Session, hist.Next)
	}
	want := []entryView{
		{Seq: 1, Role: "user", Content: "remember the milk", Tags: map[string]string{"topic": "shopping"}},
		{Seq: 2, Role: "tool", Agent: "context_append@1.0.0", Content: map[string]any{
			"input":  map[string]any{"content": "remember the milk", "tags": map[string]any{"topic": "shopping"}},
			"output": map[string]any{"session": "s1", "seq": 1.0},
		}},
	}
	got := views(hist.Entries)
	// The duration varies; check it is there and drop it.
	if rec, ok := got[len(got)-1].Content.(map[string]any); ok {
		if _, ok := rec["duration_ms"].(float64); !ok {
			t.Errorf("call record has no duration_ms: %v", rec)
		}
		delete(rec, "duration_ms")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	for _, en := range hist.Entries {
		if !strings.HasSuffix(en.Time, "Z") || len(en.Time) != len("2006-01-02T15:04:05.000Z") {
			t.Errorf("entry time %q is not UTC RFC 3339 with milliseconds", en.Time)
		}
	}
}

func TestContextAppendExplicitSessionAndRole(t *testing.T) {
	e := newEnv(t)
	var app tools.AppendOutput
	e.call("caller", "context_append", `{"session":"notes","role":"system","content":{"k":[1,2]}}`, &app)
	if app.Session != "notes" || app.Seq != 1 {
		t.Errorf("append output = %+v, want session notes seq 1", app)
	}

	var hist tools.HistoryOutput
	e.call("elsewhere", "context_history", `{"session":"notes"}`, &hist)
	want := []entryView{{Seq: 1, Role: "system", Content: map[string]any{"k": []any{1.0, 2.0}}}}
	if diff := cmp.Diff(want, views(hist.Entries)); hist.Session != "notes" || diff != "" {
		t.Errorf("history of notes (session %q) (-want +got):\n%s", hist.Session, diff)
	}
	// The call itself is recorded in the caller's session, not in notes.
	e.call("caller", "context_history", `{}`, &hist)
	if len(hist.Entries) != 1 || hist.Entries[0].Agent != "context_append@1.0.0" {
		t.Errorf("caller history = %+v, want the append call", views(hist.Entries))
	}

	for _, args := range []string{
		`{"content":"x","role":"bot"}`,  // not an allowed role
		`{"content":"x","role":"tool"}`, // tool entries are the engine's
		`{"role":"user"}`,               // content is required
		`{"content":"x","session":"a b"}`,
	} {
		if err := e.callErr("s", "context_append", args); agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("context_append(%s) = %v, want Invalid", args, err)
		}
	}
}

func TestContextHistoryPaging(t *testing.T) {
	e := newEnv(t)
	for _, note := range []string{"n1", "n2", "n3", "n4", "n5"} {
		e.call("writer", "context_append", `{"session":"p","content":"`+note+`"}`, nil)
	}
	page := func(args string) ([]int64, int64) {
		t.Helper()
		var h tools.HistoryOutput
		e.call("reader", "context_history", args, &h)
		return seqs(h.Entries), h.Next
	}
	for _, tc := range []struct {
		args     string
		want     []int64
		wantNext int64
	}{
		{`{"session":"p"}`, []int64{1, 2, 3, 4, 5}, 0},
		{`{"session":"p","limit":2}`, []int64{4, 5}, 4},
		{`{"session":"p","limit":2,"before":4}`, []int64{2, 3}, 2},
		{`{"session":"p","limit":2,"before":2}`, []int64{1}, 0},
		{`{"session":"p","after":3}`, []int64{4, 5}, 0},
		{`{"session":"p","after":1,"limit":2}`, []int64{2, 3}, 0},
		{`{"session":"p","after":5}`, []int64{}, 0},
		{`{"session":"nobody"}`, []int64{}, 0},
	} {
		got, next := page(tc.args)
		if diff := cmp.Diff(tc.want, got); diff != "" || next != tc.wantNext {
			t.Errorf("context_history(%s): next %d (want %d), seqs (-want +got):\n%s", tc.args, next, tc.wantNext, diff)
		}
	}
	// Following next_before from the newest page walks the whole session.
	var all []int64
	args := `{"session":"p","limit":2}`
	for range 5 {
		got, next := page(args)
		all = append(got, all...)
		if next == 0 {
			break
		}
		args = `{"session":"p","limit":2,"before":` + strings.TrimSpace(jsonString(next)) + `}`
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, all); diff != "" {
		t.Errorf("paging with next_before (-want +got):\n%s", diff)
	}

	for _, args := range []string{`{"limit":-1}`, `{"limit":1001}`, `{"before":"3"}`, `{"sesion":"p"}`} {
		if err := e.callErr("reader", "context_history", args); agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("context_history(%s) = %v, want Invalid", args, err)
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestContextSearchCurrentSession(t *testing.T) {
	e := newEnv(t)
	e.call("s", "context_append", `{"content":"The Secret code is 42"}`, nil)
	e.call("s", "context_append", `{"content":"nothing to see"}`, nil)
	e.call("other", "context_append", `{"content":"another secret"}`, nil)

	var out tools.SearchOutput
	e.call("s", "context_search", `{"query":"SECRET"}`, &out)
	// Session s holds: 1 note, 2 its append call, 3 note, 4 its append call.
	// The first note and the call that appended it both mention the secret.
	if out.Scanned != 4 {
		t.Errorf("scanned %d entries, want 4", out.Scanned)
	}
	var got []int64
	for _, m := range out.Matches {
		if m.Session != "s" {
			t.Errorf("match from session %q, want only s", m.Session)
		}
		got = append(got, m.Entry.Seq)
	}
	if diff := cmp.Diff([]int64{2, 1}, got); diff != "" {
		t.Errorf("matches, newest first (-want +got):\n%s", diff)
	}
	if len(out.Matches) == 2 && out.Matches[1].Entry.Content != "The Secret code is 42" {
		t.Errorf("match content = %v", out.Matches[1].Entry.Content)
	}

	e.call("s", "context_search", `{"query":"secret","limit":1}`, &out)
	if len(out.Matches) != 1 {
		t.Errorf("limit 1 returned %d matches", len(out.Matches))
	}
	e.call("s", "context_search", `{"query":"absent words"}`, &out)
	if out.Matches == nil || len(out.Matches) != 0 {
		t.Errorf("no match = %#v, want an empty (not null) list", out.Matches)
	}
	e.call("fresh", "context_search", `{"query":"secret","session":"other"}`, &out)
	if len(out.Matches) != 2 || out.Matches[0].Session != "other" {
		t.Errorf("explicit session: %+v, want the note and its call in other", out.Matches)
	}
}

func TestContextSearchAllSessionsByTag(t *testing.T) {
	e := newEnv(t)
	e.call("a1", "context_append", `{"content":"launch window at dawn","tags":{"project":"apollo"}}`, nil)
	e.call("a2", "context_append", `{"content":"launch checklist","tags":{"project":"apollo","phase":"2"}}`, nil)
	e.call("g1", "context_append", `{"content":"launch pad 19","tags":{"project":"gemini"}}`, nil)
	e.call("u1", "context_append", `{"content":"launch party"}`, nil)

	sessionsOf := func(out tools.SearchOutput) []string {
		var ss []string
		for _, m := range out.Matches {
			if !slices.Contains(ss, m.Session) {
				ss = append(ss, m.Session)
			}
		}
		slices.Sort(ss)
		return ss
	}
	var out tools.SearchOutput
	e.call("searcher", "context_search", `{"query":"launch","session":"*","tags":{"project":"apollo"}}`, &out)
	if diff := cmp.Diff([]string{"a1", "a2"}, sessionsOf(out)); diff != "" {
		t.Errorf("sessions tagged apollo (-want +got):\n%s", diff)
	}
	e.call("searcher", "context_search", `{"query":"launch","session":"*","tags":{"project":"apollo","phase":"2"}}`, &out)
	if diff := cmp.Diff([]string{"a2"}, sessionsOf(out)); diff != "" {
		t.Errorf("sessions tagged apollo phase 2 (-want +got):\n%s", diff)
	}
	e.call("searcher2", "context_search", `{"query":"launch pad","session":"*"}`, &out)
	// g1 holds the note; searcher holds the recorded searches, which do not
	// mention "launch pad".
	if diff := cmp.Diff([]string{"g1"}, sessionsOf(out)); diff != "" {
		t.Errorf("all sessions (-want +got):\n%s", diff)
	}
	e.call("searcher3", "context_search", `{"query":"launch","session":"*","limit":100}`, &out)
	// Recorded context_search calls mention "launch" too, but are skipped:
	// a search never finds earlier searches.
	if diff := cmp.Diff([]string{"a1", "a2", "g1", "u1"}, sessionsOf(out)); diff != "" {
		t.Errorf("all sessions without tags (-want +got):\n%s", diff)
	}
}

func TestContextSearchEmptyQuery(t *testing.T) {
	e := newEnv(t)
	for _, args := range []string{`{"query":""}`, `{"query":"   "}`, `{}`} {
		err := e.callErr("s", "context_search", args)
		if agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("context_search(%s) = %v (code %v), want Invalid", args, err, agents.CodeOf(err))
		}
	}
	if err := e.callErr("s", "context_search", `{"query":""}`); !strings.Contains(err.Error(), "query is empty") {
		t.Errorf("error %q does not say the query is empty", err)
	}
}

func TestAgentsSearch(t *testing.T) {
	lengths := agents.MustTyped(agents.Spec{
		Name:        "lengths",
		Title:       "Length units",
		Description: "Convert lengths between metric and imperial units",
		Tags:        []string{"math", "units"},
		Metadata:    map[string]string{"task_type": "transform"},
	}, func(context.Context, *agents.Call, struct {
		Meters float64 `json:"meters"`
	}) (struct{}, error) {
		return struct{}{}, nil
	})
	e := newEnv(t, lengths)

	var out tools.AgentsSearchOutput
	e.call("s", "agents_search", `{"query":"convert metric"}`, &out)
	if len(out.Agents) == 0 || out.Agents[0].Name != "lengths" {
		t.Fatalf("agents_search(convert metric) = %+v, want lengths first", out.Agents)
	}
	got := out.Agents[0]
	if got.Version != "1.0.0" || got.Kind != "go" || got.Description != lengths.Spec().Description || got.Score <= 0 {
		t.Errorf("view = %+v", got)
	}
	if diff := cmp.Diff(string(lengths.Spec().Input.JSON()), string(got.InputSchema)); diff != "" {
		t.Errorf("input schema (-want +got):\n%s", diff)
	}
	if len(got.OutputSchema) == 0 {
		t.Errorf("output schema missing")
	}

	names := func(args string) []string {
		t.Helper()
		var out tools.AgentsSearchOutput
		e.call("s", "agents_search", args, &out)
		var ns []string
		for _, a := range out.Agents {
			ns = append(ns, a.Name)
		}
		return ns
	}
	for _, tc := range []struct {
		args string
		want []string
	}{
		{`{"tags":["units"]}`, []string{"lengths"}},
		{`{"tags":["math","units"]}`, []string{"lengths"}},
		{`{"query":"convert","tags":["units"]}`, []string{"lengths"}},
		{`{"tags":["context"]}`, []string{"context_append", "context_history", "context_search"}},
		{`{"metadata":{"task_type":"transform"}}`, []string{"lengths"}},
		{`{"query":"imperial"}`, []string{"lengths"}},
		{`{"query":"nothing-matches-this"}`, nil},
		{`{"tags":["units","builtin"]}`, nil},
		{`{"limit":2}`, []string{"agents_search", "context_append"}},
	} {
		if diff := cmp.Diff(tc.want, names(tc.args)); diff != "" {
			t.Errorf("agents_search(%s) (-want +got):\n%s", tc.args, diff)
		}
	}
	// Without a limit, at most 10.
	var many []agents.Agent
	for i := range 15 {
		many = append(many, agents.MustTyped(agents.Spec{Name: "filler" + string(rune('a'+i)), Tags: []string{"filler"}}, func(context.Context, *agents.Call, struct{}) (struct{}, error) { return struct{}{}, nil }))
	}
	e = newEnv(t, many...)
	if n := len(names(`{"tags":["filler"]}`)); n != 10 {
		t.Errorf("agents_search without limit returned %d, want 10", n)
	}
}

func TestBuiltinKind(t *testing.T) {
	built, err := agents.Build(context.Background(), &agents.Definition{
		Name:        "ping",
		Kind:        "builtin",
		Description: "Checks that the server answers",
		Tags:        []string{"ops"},
		Options:     json.RawMessage(`{"tool":"echo"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 1 {
		t.Fatalf("built %d agents, want 1", len(built))
	}
	a := built[0]
	s := a.Spec()
	if s.Name != "ping" || s.Version != "1.0.0" || s.Kind != "builtin" || s.Description != "Checks that the server answers" || s.Title != "Echo" {
		t.Errorf("spec = %+v, want echo renamed to ping with the configured description", s)
	}
	if diff := cmp.Diff([]string{"ops"}, s.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if a.Spec() != s {
		t.Errorf("Spec() returns a new *Spec on every call")
	}
	echo, _ := tools.New("echo")
	if s.Input != echo.Spec().Input || echo.Spec().Name != "echo" {
		t.Errorf("the renamed agent does not keep echo's input schema, or renaming changed echo")
	}

	e := newEnv(t, a)
	var out tools.EchoOutput
	resp := e.call("s", "ping", `{"text":"pong?"}`, &out)
	if out.Text != "pong?" || resp.Agent != "ping@1.0.0" {
		t.Errorf("ping = %+v as %s", out, resp.Agent)
	}

	// A definition can pick a version too.
	built, err = agents.Build(context.Background(), &agents.Definition{Name: "hist2", Kind: "builtin", Version: "2.0.0", Options: json.RawMessage(`{"tool":"context_history"}`)})
	if err != nil || built[0].Spec().Ref() != "hist2@2.0.0" {
		t.Errorf("Build(context_history as hist2@2.0.0) = %v, %v", built, err)
	}
}

func TestBuiltinKindErrors(t *testing.T) {
	known := "agents_search, context_append, context_history, context_search, echo"
	for _, tc := range []struct {
		options string
		want    []string
	}{
		{`{"tool":"nope"}`, []string{`agent "x"`, `unknown built-in tool "nope"`, "(known: " + known + ")"}},
		{`{}`, []string{`agent "x" (kind builtin): option tool is required (one of ` + known + ")"}},
		{``, []string{"option tool is required"}},
		{`{"tool":"echo","colour":"red"}`, []string{`unknown field "colour"`}},
	} {
		_, err := agents.Build(context.Background(), &agents.Definition{Name: "x", Kind: "builtin", Options: json.RawMessage(tc.options)})
		if err == nil {
			t.Errorf("Build(builtin %s) succeeded", tc.options)
			continue
		}
		if agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("Build(builtin %s) code = %v, want Invalid", tc.options, agents.CodeOf(err))
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Build(builtin %s) = %q, want it to contain %q", tc.options, err, w)
			}
		}
	}
}

func TestContextToolsWithoutStore(t *testing.T) {
	r := agents.NewRegistry()
	for _, a := range tools.Defaults() {
		if err := r.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	e := &agents.Engine{Registry: r, Logger: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct{ agent, args string }{
		{"context_history", `{}`},
		{"context_search", `{"query":"x"}`},
		{"context_append", `{"content":"x"}`},
	} {
		_, err := e.Invoke(context.Background(), agents.Request{Agent: tc.agent, Args: json.RawMessage(tc.args)})
		if agents.CodeOf(err) != agents.CodeUnavailable || !strings.Contains(err.Error(), "without a context store") {
			t.Errorf("%s without a store = %v (code %v), want Unavailable", tc.agent, err, agents.CodeOf(err))
		}
	}
	// agents_search needs no store.
	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "agents_search", Args: json.RawMessage(`{"query":"context"}`)})
	if err != nil || !strings.Contains(string(resp.Result.Output), "context_history") {
		t.Errorf("agents_search without a store = %v, %v", resp, err)
	}
}

func TestNamesNewDefaults(t *testing.T) {
	want := []string{"agents_search", "context_append", "context_history", "context_search", "echo"}
	if diff := cmp.Diff(want, tools.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	for _, n := range want {
		a, err := tools.New(n)
		if err != nil {
			t.Fatalf("New(%s): %v", n, err)
		}
		s := a.Spec()
		if s.Name != n || s.Description == "" || s.Title == "" || !slices.Contains(s.Tags, "builtin") {
			t.Errorf("New(%s).Spec() = %+v, want name, title, description and the builtin tag", n, s)
		}
		if s.Input == nil || !s.Input.IsObject() || s.Output == nil {
			t.Errorf("%s: input %v output %v, want an object input and an output schema", n, s.Input, s.Output)
		}
		b, _ := tools.New(n)
		if a == b {
			t.Errorf("New(%s) returned the same instance twice", n)
		}
	}
	if _, err := tools.New("nope"); agents.CodeOf(err) != agents.CodeInvalid || !strings.Contains(err.Error(), "known: agents_search") {
		t.Errorf("New(nope) = %v, want Invalid listing the built-ins", err)
	}
	var got []string
	for _, a := range tools.Defaults() {
		got = append(got, a.Spec().Name)
	}
	if diff := cmp.Diff([]string{"context_history", "context_search", "context_append", "agents_search"}, got); diff != "" {
		t.Errorf("Defaults (-want +got):\n%s", diff)
	}
	// Read tools say so; context_append writes but destroys nothing.
	for _, n := range []string{"context_history", "context_search", "agents_search", "echo"} {
		a, _ := tools.New(n)
		if h := a.Spec().Hints; !h.ReadOnly || h.Destructive == nil || *h.Destructive {
			t.Errorf("%s hints = %+v, want read-only and not destructive", n, h)
		}
	}
	app, _ := tools.New("context_append")
	if h := app.Spec().Hints; h.ReadOnly || h.Destructive == nil || *h.Destructive {
		t.Errorf("context_append hints = %+v, want writable and not destructive", h)
	}
}

func TestViewOf(t *testing.T) {
	s := &agents.Spec{Name: "n", Version: "1.2.3", Title: "T", Description: "D", Kind: "k", Tags: []string{"a"}, Metadata: map[string]string{"x": "y"}}
	want := tools.AgentView{Name: "n", Version: "1.2.3", Title: "T", Description: "D", Kind: "k", Tags: []string{"a"}, Metadata: map[string]string{"x": "y"}}
	if diff := cmp.Diff(want, tools.ViewOf(s)); diff != "" {
		t.Errorf("ViewOf (-want +got):\n%s", diff)
	}
}
