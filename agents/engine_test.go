package agents_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/internal/errs"
)

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string `json:"text"`
}

func echoAgent(tb testing.TB) agents.Agent {
	tb.Helper()
	a, err := agents.Typed(agents.Spec{Name: "echo", Description: "Echoes"}, func(_ context.Context, _ *agents.Call, in echoIn) (echoOut, error) {
		return echoOut(in), nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

var discard = slog.New(slog.DiscardHandler)

// newEngine returns an engine over a registry holding as, recording in a
// fresh memory store.
func newEngine(t testing.TB, as ...agents.Agent) (*agents.Engine, *memory.Store) {
	t.Helper()
	store := memory.New(contextstore.Options{})
	t.Cleanup(func() { _ = store.Close() })
	r := agents.NewRegistry()
	mustAdd(t, r, as...)
	return &agents.Engine{Registry: r, Store: store, Logger: discard}, store
}

func history(t *testing.T, s contextstore.Store, session string) []contextstore.Entry {
	t.Helper()
	es, err := s.History(context.Background(), session, contextstore.HistoryQuery{})
	if err != nil {
		t.Fatalf("History(%s): %v", session, err)
	}
	return es
}

// record is the content of the context entry recording one call.
type record struct {
	Input   json.RawMessage `json:"input"`
	Output  json.RawMessage `json:"output"`
	Content []agents.Content
	IsError bool `json:"is_error"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	DurationMS *float64 `json:"duration_ms"`
}

func decodeRecord(t *testing.T, e contextstore.Entry) record {
	t.Helper()
	var r record
	if err := json.Unmarshal(e.Content, &r); err != nil {
		t.Fatalf("entry content %s: %v", e.Content, err)
	}
	return r
}

func TestInvokeRecordsCall(t *testing.T) {
	e, store := newEngine(t, echoAgent(t))
	ctx := context.Background()
	resp, err := e.Invoke(ctx, agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"hello"}`), Session: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Agent != "echo@1.0.0" || resp.Session != "s1" || resp.Seq != 1 || resp.Duration <= 0 {
		t.Errorf("response = %+v, want agent echo@1.0.0, session s1, seq 1, a duration", resp)
	}
	if resp.Result == nil || string(resp.Result.Output) != `{"text":"hello"}` {
		t.Fatalf("result = %+v, want the echoed text", resp.Result)
	}

	es := history(t, store, "s1")
	if len(es) != 1 {
		t.Fatalf("history has %d entries, want 1: %+v", len(es), es)
	}
	got := es[0]
	if got.Role != contextstore.RoleTool || got.Agent != "echo@1.0.0" || got.Seq != resp.Seq || got.Session != "s1" {
		t.Errorf("entry = %+v, want role tool, agent echo@1.0.0, seq %d", got, resp.Seq)
	}
	rec := decodeRecord(t, got)
	if string(rec.Input) != `{"text":"hello"}` || string(rec.Output) != `{"text":"hello"}` {
		t.Errorf("record input %s output %s, want both {\"text\":\"hello\"}", rec.Input, rec.Output)
	}
	if rec.Error != nil || rec.IsError || rec.DurationMS == nil || *rec.DurationMS < 0 {
		t.Errorf("record = %s, want no error and a duration", got.Content)
	}

	// A second call in the same session appends.
	resp2, err := e.Invoke(ctx, agents.Request{Agent: "echo@1.0.0", Args: json.RawMessage(`{"text":"again"}`), Session: "s1"})
	if err != nil || resp2.Seq != 2 {
		t.Fatalf("second call = %+v, %v; want seq 2", resp2, err)
	}
	if n := len(history(t, store, "s1")); n != 2 {
		t.Errorf("history has %d entries after two calls", n)
	}
}

func TestInvokeRecordsContent(t *testing.T) {
	a := newFake("text", "1.0.0")
	a.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		return &agents.Result{Content: []agents.Content{agents.Text("plain")}, IsError: true, Usage: &agents.Usage{InputTokens: 3}}, nil
	}
	e, store := newEngine(t, a)
	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "text", Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Result.IsError {
		t.Errorf("IsError lost: %+v", resp.Result)
	}
	rec := decodeRecord(t, history(t, store, "s")[0])
	if diff := cmp.Diff([]agents.Content{agents.Text("plain")}, rec.Content); diff != "" || !rec.IsError || string(rec.Input) != `{}` {
		t.Errorf("record input %s is_error %v content diff:\n%s", rec.Input, rec.IsError, diff)
	}
}

func TestInvokeNewSession(t *testing.T) {
	e, store := newEngine(t, echoAgent(t))
	seen := map[string]bool{}
	for range 3 {
		resp, err := e.Invoke(context.Background(), agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"x"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hex.DecodeString(resp.Session); err != nil || len(resp.Session) != 32 {
			t.Errorf("new session id %q, want 32 hex digits", resp.Session)
		}
		if seen[resp.Session] {
			t.Errorf("session id %q handed out twice", resp.Session)
		}
		seen[resp.Session] = true
		if es := history(t, store, resp.Session); len(es) != 1 || es[0].Seq != resp.Seq {
			t.Errorf("the call was not recorded in the new session %s: %+v", resp.Session, es)
		}
		if err := contextstore.ValidateSession(resp.Session); err != nil {
			t.Errorf("generated session id is invalid: %v", err)
		}
	}
}

func TestInvokeCallFields(t *testing.T) {
	var got *agents.Call
	a := newFake("spy", "2.0.0")
	a.invoke = func(_ context.Context, c *agents.Call) (*agents.Result, error) {
		got = c
		return &agents.Result{}, nil
	}
	e, store := newEngine(t, a)
	for _, args := range []string{"", "null", "{}"} {
		if _, err := e.Invoke(context.Background(), agents.Request{Agent: "spy", Session: "sess", Args: json.RawMessage(args)}); err != nil {
			t.Fatal(err)
		}
		if got.Agent != "spy@2.0.0" || got.Session != "sess" || string(got.Args) != "{}" {
			t.Errorf("args %q: call = %+v, want agent spy@2.0.0, session sess, args {}", args, got)
		}
		if got.Store != store || got.Registry != e.Registry || got.Client == nil || got.Logger == nil {
			t.Errorf("call handles = store %v registry %v client %v logger %v", got.Store, got.Registry, got.Client, got.Logger)
		}
		if err := got.Client.Progress(context.Background(), 1, 2, "x"); err != nil {
			t.Errorf("NoClient.Progress = %v", err)
		}
	}
}

func TestInvokeUnknownAgent(t *testing.T) {
	e, store := newEngine(t, echoAgent(t))
	for _, ref := range []string{"nope", "echo@9.0.0"} {
		resp, err := e.Invoke(context.Background(), agents.Request{Agent: ref, Session: "s"})
		if agents.CodeOf(err) != agents.CodeNotFound {
			t.Errorf("Invoke(%s) = %v, want NotFound", ref, err)
		}
		if resp == nil || resp.Session != "s" || resp.Result != nil {
			t.Errorf("Invoke(%s) response = %+v", ref, resp)
		}
	}
	if es := history(t, store, "s"); len(es) != 0 {
		t.Errorf("a call to an unknown agent was recorded: %+v", es)
	}
}

func TestInvokeInvalidSession(t *testing.T) {
	var ran atomic.Bool
	a := newFake("x", "1.0.0")
	a.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		ran.Store(true)
		return &agents.Result{}, nil
	}
	e, _ := newEngine(t, a)
	for _, s := range []string{"has space", "a/b", strings.Repeat("s", 257), "tab\t"} {
		_, err := e.Invoke(context.Background(), agents.Request{Agent: "x", Session: s})
		if agents.CodeOf(err) != agents.CodeInvalid || !strings.Contains(err.Error(), "session") {
			t.Errorf("Invoke(session %q) = %v, want Invalid about the session", s, err)
		}
	}
	if ran.Load() {
		t.Errorf("the agent ran for an invalid session")
	}
}

func TestInvokeInvalidInput(t *testing.T) {
	var ran atomic.Bool
	a := agents.MustTyped(agents.Spec{Name: "conv"}, func(_ context.Context, _ *agents.Call, in struct {
		Value float64 `json:"value"`
		Unit  struct {
			Name string `json:"name" jsonschema:"enum=m,enum=ft"`
		} `json:"unit"`
	}) (echoOut, error) {
		ran.Store(true)
		return echoOut{}, nil
	})
	e, store := newEngine(t, a)
	for _, tc := range []struct {
		args, want string
	}{
		{`{"value":"1","unit":{"name":"m"}}`, "invalid arguments for conv: field /value: want number, got string"},
		{`{"value":1,"unit":{"name":"yd"}}`, "invalid arguments for conv: field /unit/name: yd is not one of: m ft"},
		{`{"unit":{"name":"m"}}`, `invalid arguments for conv: missing required field(s): "value"`},
		{`{"value":1,"unit":{"name":"m"},"extra":true}`, `invalid arguments for conv: unknown field(s): "extra"`},
		{`[1]`, "invalid arguments for conv: want object, got array"},
		{`{"value":`, "invalid arguments for conv: not valid JSON: unexpected end of JSON input"},
	} {
		resp, err := e.Invoke(context.Background(), agents.Request{Agent: "conv", Args: json.RawMessage(tc.args), Session: "s"})
		if agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("Invoke(%s) = %v (code %v), want Invalid", tc.args, err, agents.CodeOf(err))
			continue
		}
		if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
			t.Errorf("Invoke(%s) message (-want +got):\n%s", tc.args, diff)
		}
		if resp.Agent != "conv@1.0.0" || resp.Result != nil || resp.Seq != 0 {
			t.Errorf("Invoke(%s) response = %+v", tc.args, resp)
		}
	}
	if ran.Load() {
		t.Errorf("the agent ran with invalid arguments")
	}
	if es := history(t, store, "s"); len(es) != 0 {
		t.Errorf("invalid calls were recorded: %+v", es)
	}
}

func TestInvokeAgentError(t *testing.T) {
	plain := newFake("plain", "1.0.0")
	plain.invoke = func(context.Context, *agents.Call) (*agents.Result, error) { return nil, errors.New("disk on fire") }
	coded := newFake("coded", "1.0.0")
	upstreamDown := agents.Errorf(agents.CodeUnavailable, "upstream down")
	coded.invoke = func(context.Context, *agents.Call) (*agents.Result, error) { return nil, upstreamDown }
	nothing := newFake("nothing", "1.0.0")
	nothing.invoke = func(context.Context, *agents.Call) (*agents.Result, error) { return nil, nil }
	picky := newFake("picky", "1.0.0")
	picky.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		// Arguments the schema allows but the agent rejects: it ran, so the
		// call is recorded like any other failure.
		return nil, agents.Errorf(agents.CodeInvalid, "unit yd is not supported")
	}
	e, store := newEngine(t, plain, coded, nothing, picky)

	for i, tc := range []struct {
		agent, msg, code string
	}{
		{"plain", "agent plain@1.0.0 failed: disk on fire", "internal"},
		{"coded", "agent coded@1.0.0 failed: upstream down", "unavailable"},
		{"nothing", "agent nothing@1.0.0 returned no result", "internal"},
		{"picky", "agent picky@1.0.0 failed: unit yd is not supported", "invalid"},
	} {
		resp, err := e.Invoke(context.Background(), agents.Request{Agent: tc.agent, Session: "s"})
		if err == nil {
			t.Fatalf("Invoke(%s) succeeded", tc.agent)
		}
		if err.Error() != tc.msg || agents.CodeOf(err).String() != tc.code {
			t.Errorf("Invoke(%s) = %q (code %v), want %q (code %s)", tc.agent, err, agents.CodeOf(err), tc.msg, tc.code)
		}
		if resp.Result != nil || resp.Seq != int64(i+1) {
			t.Errorf("Invoke(%s) response = %+v, want no result and the record's seq %d", tc.agent, resp, i+1)
		}
	}
	if _, err := e.Invoke(context.Background(), agents.Request{Agent: "coded"}); !errors.Is(err, upstreamDown) {
		t.Errorf("the agent's error is not wrapped: %v", err)
	}

	es := history(t, store, "s")
	if len(es) != 4 {
		t.Fatalf("history has %d entries, want every failed call recorded", len(es))
	}
	for i, want := range []string{"internal", "unavailable", "internal", "invalid"} {
		rec := decodeRecord(t, es[i])
		if rec.Error == nil || rec.Error.Code != want || !strings.HasPrefix(rec.Error.Message, "agent ") {
			t.Errorf("entry %d = %s, want an error with code %s", i, es[i].Content, want)
		}
	}
}

func TestInvokeTimeout(t *testing.T) {
	slow := func(ctx context.Context, _ *agents.Call) (*agents.Result, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			return &agents.Result{}, nil
		}
	}
	own := newFake("own", "1.0.0")
	own.spec.Timeout = 20 * time.Millisecond
	own.invoke = slow
	dflt := newFake("dflt", "1.0.0")
	dflt.invoke = slow
	e, store := newEngine(t, own, dflt)
	e.Timeout = 30 * time.Millisecond

	for _, tc := range []struct{ agent, within string }{{"own", "20ms"}, {"dflt", "30ms"}} {
		start := time.Now()
		resp, err := e.Invoke(context.Background(), agents.Request{Agent: tc.agent, Session: "s"})
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Invoke(%s) took %v", tc.agent, d)
		}
		if agents.CodeOf(err) != agents.CodeTimeout {
			t.Fatalf("Invoke(%s) = %v (code %v), want Timeout", tc.agent, err, agents.CodeOf(err))
		}
		want := "agent " + tc.agent + "@1.0.0 did not finish within " + tc.within
		if err.Error() != want {
			t.Errorf("Invoke(%s) = %q, want %q", tc.agent, err, want)
		}
		if resp.Seq == 0 {
			t.Errorf("a timed-out call was not recorded")
		}
	}
	for _, ent := range history(t, store, "s") {
		if rec := decodeRecord(t, ent); rec.Error == nil || rec.Error.Code != "timeout" {
			t.Errorf("entry %s, want error code timeout", ent.Content)
		}
	}
}

func TestInvokeCallerCancels(t *testing.T) {
	started := make(chan struct{})
	a := newFake("wait", "1.0.0")
	a.invoke = func(ctx context.Context, _ *agents.Call) (*agents.Result, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	e, store := newEngine(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	resp, err := e.Invoke(ctx, agents.Request{Agent: "wait", Session: "s"})
	if agents.CodeOf(err) != agents.CodeUnavailable || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("Invoke with a cancelled caller = %v, want Unavailable saying it was cancelled", err)
	}
	// The call happened, so it is recorded even though the caller left.
	if resp.Seq == 0 || len(history(t, store, "s")) != 1 {
		t.Errorf("a cancelled call was not recorded (seq %d)", resp.Seq)
	}
}

func TestInvokePanicIsContained(t *testing.T) {
	bad := newFake("bad", "1.0.0")
	bad.invoke = func(context.Context, *agents.Call) (*agents.Result, error) { panic("nil map write") }
	e, store := newEngine(t, bad, echoAgent(t))
	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "bad", Session: "s"})
	if agents.CodeOf(err) != agents.CodeInternal || err.Error() != "agent bad@1.0.0 panicked: nil map write" {
		t.Errorf("Invoke(panicking agent) = %q (code %v), want Internal naming the panic", err, agents.CodeOf(err))
	}
	if resp.Result != nil {
		t.Errorf("result = %+v after a panic", resp.Result)
	}
	// The engine keeps serving.
	if _, err := e.Invoke(context.Background(), agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"still here"}`), Session: "s"}); err != nil {
		t.Errorf("call after a panic: %v", err)
	}
	es := history(t, store, "s")
	if len(es) != 2 || decodeRecord(t, es[0]).Error == nil {
		t.Errorf("history = %d entries; want the panic recorded as an error, then the echo", len(es))
	}
}

func TestInvokeOutputBreaksSchema(t *testing.T) {
	type countOut struct {
		Count int `json:"count" jsonschema:"minimum=0"`
	}
	liar := agents.MustTyped(agents.Spec{Name: "liar"}, func(context.Context, *agents.Call, struct{}) (countOut, error) {
		return countOut{Count: -1}, nil
	})
	silent := newFake("silent", "1.0.0")
	silent.spec.Output = mustParse(t, `{"type":"object"}`)
	silent.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		return &agents.Result{Content: []agents.Content{agents.Text("no output")}}, nil
	}
	admits := newFake("admits", "1.0.0")
	admits.spec.Output = mustParse(t, `{"type":"object"}`)
	admits.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		// An agent-reported failure need not match the output schema.
		return &agents.Result{IsError: true, Content: []agents.Content{agents.Text("could not")}}, nil
	}
	e, store := newEngine(t, liar, silent, admits)

	_, err := e.Invoke(context.Background(), agents.Request{Agent: "liar", Session: "s"})
	if agents.CodeOf(err) != agents.CodeInternal {
		t.Errorf("Invoke(liar) = %v (code %v), want Internal", err, agents.CodeOf(err))
	}
	if want := "agent liar@1.0.0 returned output that breaks its output schema: /count: -1 is less than the minimum 0"; err == nil || err.Error() != want {
		t.Errorf("Invoke(liar) = %v, want %q", err, want)
	}
	_, err = e.Invoke(context.Background(), agents.Request{Agent: "silent", Session: "s"})
	if agents.CodeOf(err) != agents.CodeInternal || !strings.Contains(err.Error(), "no structured output") {
		t.Errorf("Invoke(silent) = %v, want Internal about missing output", err)
	}
	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "admits", Session: "s"})
	if err != nil || !resp.Result.IsError {
		t.Errorf("Invoke(admits) = %+v, %v; want the IsError result", resp, err)
	}
	if n := len(history(t, store, "s")); n != 3 {
		t.Errorf("history has %d entries, want all 3 calls", n)
	}
}

// failingStore is a store whose Append fails.
type failingStore struct {
	contextstore.Store
	err error
}

func (s failingStore) Append(context.Context, string, contextstore.Entry) (contextstore.Entry, error) {
	return contextstore.Entry{}, s.err
}

func TestInvokeStoreFailure(t *testing.T) {
	var runs atomic.Int32
	a := agents.MustTyped(agents.Spec{Name: "charge"}, func(_ context.Context, _ *agents.Call, in echoIn) (echoOut, error) {
		runs.Add(1)
		return echoOut{Text: "charged " + in.Text}, nil
	})
	r := agents.NewRegistry()
	mustAdd(t, r, a)
	mem := memory.New(contextstore.Options{})
	defer mem.Close()
	down := errors.New("connection refused")
	e := &agents.Engine{Registry: r, Store: failingStore{Store: mem, err: down}, Logger: discard}

	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "charge", Args: json.RawMessage(`{"text":"$5"}`), Session: "s"})
	if agents.CodeOf(err) != agents.CodeUnavailable {
		t.Fatalf("Invoke = %v (code %v), want Unavailable", err, agents.CodeOf(err))
	}
	if !errors.Is(err, down) || !strings.Contains(err.Error(), "agent charge@1.0.0 ran") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q must say the agent ran and why recording failed", err)
	}
	if runs.Load() != 1 {
		t.Errorf("agent ran %d times, want 1", runs.Load())
	}
	// The result of a call that ran is not silently dropped.
	if resp.Result == nil || string(resp.Result.Output) != `{"text":"charged $5"}` || resp.Seq != 0 {
		t.Errorf("response = %+v, want the agent's result and no seq", resp)
	}

	// When the agent itself failed, its error wins over the store's.
	bad := newFake("bad", "1.0.0")
	bad.invoke = func(context.Context, *agents.Call) (*agents.Result, error) { return nil, errors.New("nope") }
	mustAdd(t, r, bad)
	_, err = e.Invoke(context.Background(), agents.Request{Agent: "bad", Session: "s"})
	if err == nil || err.Error() != "agent bad@1.0.0 failed: nope" {
		t.Errorf("Invoke(bad) with a failing store = %v, want the agent's error", err)
	}
}

func TestInvokeWithoutStore(t *testing.T) {
	var seen contextstore.Store = failingStore{} // anything non-nil
	a := newFake("x", "1.0.0")
	a.invoke = func(_ context.Context, c *agents.Call) (*agents.Result, error) {
		seen = c.Store
		return &agents.Result{Output: json.RawMessage(`{"ok":true}`)}, nil
	}
	r := agents.NewRegistry()
	mustAdd(t, r, a)
	e := &agents.Engine{Registry: r, Logger: discard}
	resp, err := e.Invoke(context.Background(), agents.Request{Agent: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Seq != 0 || resp.Session == "" || string(resp.Result.Output) != `{"ok":true}` {
		t.Errorf("response = %+v, want a result, a session and no seq", resp)
	}
	if seen != nil {
		t.Errorf("call.Store = %v, want nil", seen)
	}
}

// logRecorder is a slog.Handler keeping records in memory.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"level": r.Level.String(), "msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "duration" {
			m[a.Key] = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, m)
	h.mu.Unlock()
	return nil
}

func TestInvokeLogs(t *testing.T) {
	bad := newFake("bad", "1.0.0")
	bad.invoke = func(context.Context, *agents.Call) (*agents.Result, error) {
		return nil, errs.E(errs.Unavailable, "down")
	}
	e, _ := newEngine(t, echoAgent(t), bad)
	h := &logRecorder{}
	e.Logger = slog.New(h)
	if _, err := e.Invoke(context.Background(), agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"x"}`), Session: "s"}); err != nil {
		t.Fatal(err)
	}
	_, _ = e.Invoke(context.Background(), agents.Request{Agent: "bad", Session: "s"})
	want := []map[string]string{
		{"level": "INFO", "msg": "call", "agent": "echo@1.0.0", "session": "s", "outcome": "ok"},
		{"level": "WARN", "msg": "call failed", "agent": "bad@1.0.0", "session": "s", "outcome": "unavailable", "error": "agent bad@1.0.0 failed: down"},
	}
	if diff := cmp.Diff(want, h.records); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

func TestInvokeConcurrent(t *testing.T) {
	e, store := newEngine(t, echoAgent(t))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := e.Invoke(context.Background(), agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"x"}`), Session: "shared"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	es, err := store.History(context.Background(), "shared", contextstore.HistoryQuery{Limit: 1000})
	if err != nil || len(es) != 160 {
		t.Errorf("history = %d entries, %v; want 160", len(es), err)
	}
}

func BenchmarkInvokeEcho(b *testing.B) {
	for _, bc := range []struct {
		name  string
		store bool
	}{{"nostore", false}, {"memory", true}} {
		b.Run(bc.name, func(b *testing.B) {
			r := agents.NewRegistry()
			mustAdd(b, r, echoAgent(b))
			e := &agents.Engine{Registry: r, Logger: discard}
			if bc.store {
				s := memory.New(contextstore.Options{})
				defer s.Close()
				e.Store = s
			}
			req := agents.Request{Agent: "echo", Args: json.RawMessage(`{"text":"hello"}`), Session: "bench"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Invoke(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
