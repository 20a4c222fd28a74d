package mcpkind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// fakeClient is the calling MCP client, as the agent sees it.
type fakeClient struct {
	mu       sync.Mutex
	progress []string
	logs     []string
	samples  []*agents.SampleRequest
	sample   func(*agents.SampleRequest) (*agents.SampleResult, error)
	elicit   func(*agents.ElicitRequest) (*agents.ElicitResult, error)
	gotFirst chan struct{} // closed at the first progress notification
	once     sync.Once
}

func newFakeClient() *fakeClient { return &fakeClient{gotFirst: make(chan struct{})} }

// callKey marks the context of the call: the relay must hand it to the
// client (the SDK uses it to route messages to the right request stream).
type callKey struct{}

func checkCallContext(ctx context.Context) error {
	if ctx.Value(callKey{}) == nil {
		return errors.New("fakeClient: relayed with a context that is not the call's")
	}
	return nil
}

func (c *fakeClient) Progress(ctx context.Context, p, total float64, msg string) error {
	if err := checkCallContext(ctx); err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.progress = append(c.progress, fmt.Sprintf("%g/%g %s", p, total, msg))
	c.mu.Unlock()
	c.once.Do(func() { close(c.gotFirst) })
	return nil
}

func (c *fakeClient) Log(ctx context.Context, level slog.Level, logger string, data any) error {
	if err := checkCallContext(ctx); err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs = append(c.logs, fmt.Sprintf("%s %s %v", level, logger, data))
	return nil
}

func (c *fakeClient) Sample(ctx context.Context, req *agents.SampleRequest) (*agents.SampleResult, error) {
	if err := checkCallContext(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.samples = append(c.samples, req)
	c.mu.Unlock()
	if c.sample == nil {
		return agents.NoClient{}.Sample(context.Background(), req)
	}
	return c.sample(req)
}

func (c *fakeClient) Elicit(ctx context.Context, req *agents.ElicitRequest) (*agents.ElicitResult, error) {
	if err := checkCallContext(ctx); err != nil {
		return nil, err
	}
	if c.elicit == nil {
		return agents.NoClient{}.Elicit(context.Background(), req)
	}
	return c.elicit(req)
}

func (c *fakeClient) Supports(feature string) bool {
	return feature == "sampling" && c.sample != nil || feature == "elicitation" && c.elicit != nil || feature == "progress"
}

func (c *fakeClient) Ask(context.Context, map[string]agents.Input) (map[string]agents.Answer, error) {
	return nil, errors.New("fakeClient: Ask is not used by the relay")
}

func (c *fakeClient) CloseStream(time.Duration) {}

func (c *fakeClient) snapshot() (progress, logs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.progress...), append([]string(nil), c.logs...)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type env struct {
	up     *Upstream
	reg    *agents.Registry
	engine *agents.Engine
	logs   *syncBuffer
}

// stdioOptions run this test binary as the upstream (see TestMain).
func stdioOptions(extra map[string]any) map[string]any {
	o := map[string]any{
		"command":         os.Args[0],
		"args":            []string{"-test.run=^$"},
		"env":             map[string]string{"MCPKIND_TEST_SERVER": "stdio"},
		"restart_backoff": "50ms",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

// start builds, starts and attaches an upstream named "up".
func start(t *testing.T, opts map[string]any) *env {
	t.Helper()
	e := newEnv(t, opts)
	if err := e.up.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, e.logs)
	}
	e.up.Attach(e.reg)
	return e
}

func newEnv(t *testing.T, opts map[string]any) *env {
	t.Helper()
	raw, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := agents.ContextWithLogger(t.Context(), logger)
	built, err := agents.Build(ctx, &agents.Definition{Name: "up", Kind: Kind, Options: raw, Tags: []string{"t"}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e := &env{up: built[0].(*Upstream), reg: agents.NewRegistry(), logs: logs}
	e.engine = &agents.Engine{Registry: e.reg, Timeout: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { e.up.Close() })
	return e
}

func (e *env) call(ctx context.Context, name, args string, c agents.Client) (*agents.Result, error) {
	ctx = context.WithValue(ctx, callKey{}, name)
	resp, err := e.engine.Invoke(ctx, agents.Request{Agent: name, Args: json.RawMessage(args), Client: c})
	if err != nil {
		return nil, err
	}
	return resp.Result, nil
}

func text(r *agents.Result) string {
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

func TestStdioRelay(t *testing.T) {
	e := start(t, stdioOptions(nil))
	testRelay(t, e, true, func() bool {
		// The upstream said so on stderr, which we log.
		return strings.Contains(e.logs.String(), `"line":"slow: cancelled at step`)
	})
	if !strings.Contains(e.logs.String(), `"msg":"upstream stderr","upstream":"up","line":"test server: starting"`) {
		t.Errorf("stderr not logged with upstream=up:\n%s", e.logs)
	}
	if err := e.up.CheckHealth(t.Context()); err != nil {
		t.Errorf("CheckHealth: %v", err)
	}
}

// TestHTTPRelay runs the relay suite against an HTTP upstream: through the
// SDK's client, and through lean calls against an upstream that answers
// with event streams (with event ids) or with JSON.
func TestHTTPRelay(t *testing.T) {
	for _, tt := range []struct {
		name string
		lean bool
		opts *mcp.StreamableHTTPOptions
	}{
		{"sdk client", false, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)}},
		{"lean, event streams", true, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)}},
		{"lean, JSON responses", true, &mcp.StreamableHTTPOptions{JSONResponse: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHTTPUpstreamWith(t, tt.opts)
			e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp", "lean_calls": tt.lean})
			if _, err := e.call(t.Context(), "up_echo", `{"text":"x"}`, nil); err != nil {
				t.Fatal(err)
			}
			if got := e.up.leanActive(); got != tt.lean {
				t.Fatalf("lean calls active = %v, want %v", got, tt.lean)
			}
			before := slowCancelled.Load()
			testRelay(t, e, !tt.opts.JSONResponse, func() bool { return slowCancelled.Load() > before })
		})
	}
}

// testRelay checks what a call carries between our client and the upstream
// (which serves testServer): results, progress, logs, sampling, elicitation,
// tool errors, validation and cancellation. cancelSeen reports whether the
// upstream has seen a call cancelled. ordered says that the upstream sends
// a call's notifications on the call's own stream, so they reach the client
// before the result; an upstream answering with JSON sends them on the
// session's standalone stream, a different connection.
func testRelay(t *testing.T, e *env, ordered bool, cancelSeen func() bool) {
	ctx := t.Context()
	a, err := e.reg.Resolve("up_echo")
	if err != nil {
		t.Fatal(err)
	}
	spec := a.Spec()
	if spec.Title != "Echo" || !spec.Hints.ReadOnly || spec.Output == nil || spec.Metadata[MetaUpstreamTool] != "echo" || spec.Kind != Kind {
		t.Errorf("up_echo spec = %+v", spec)
	}
	if !spec.Input.HasProperty("text") {
		t.Errorf("input schema lost its properties: %s", spec.Input.JSON())
	}

	res, err := e.call(ctx, "up_echo", `{"text":"hi"}`, nil)
	if err != nil || string(res.Output) != `{"text":"hi"}` {
		t.Fatalf("echo = %v, %v", res, err)
	}

	t.Run("progress", func(t *testing.T) {
		c := newFakeClient()
		res, err := e.call(ctx, "up_slow", `{"steps":3,"step_ms":10}`, c)
		if err != nil || text(res) != "done" {
			t.Fatalf("slow = %v, %v", res, err)
		}
		progress, _ := c.snapshot()
		want := []string{"1/3 step 1", "2/3 step 2", "3/3 step 3"}
		if !ordered && len(progress) < len(want) {
			// The last one may follow the result on the other connection,
			// after the call has ended: it is then not relayed.
			want = want[:2]
			progress = progress[:min(len(progress), 2)]
		}
		if diff := cmp.Diff(want, progress); diff != "" {
			t.Errorf("progress relayed (-want +got):\n%s", diff)
		}
	})

	t.Run("log", func(t *testing.T) {
		if !ordered {
			t.Skip("the upstream sends the log message on its standalone stream just before the result: it arrives after the call has ended, and is not relayed")
		}
		c := newFakeClient()
		if _, err := e.call(ctx, "up_log", `{"text":"careful"}`, c); err != nil {
			t.Fatal(err)
		}
		// The notification precedes the response on the wire, and
		// notifications are handled in order.
		_, logs := c.snapshot()
		if diff := cmp.Diff([]string{"WARN test careful"}, logs); diff != "" {
			t.Errorf("log relayed (-want +got):\n%s", diff)
		}
	})

	t.Run("sampling", func(t *testing.T) {
		c := newFakeClient()
		c.sample = func(*agents.SampleRequest) (*agents.SampleResult, error) {
			return &agents.SampleResult{Content: agents.Text("blue"), Model: "m1"}, nil
		}
		res, err := e.call(ctx, "up_sample", `{"text":"sky color?"}`, c)
		if err != nil || string(res.Output) != `{"text":"m1: blue"}` {
			t.Fatalf("sample = %v, %v", res, err)
		}
		if len(c.samples) != 1 || c.samples[0].SystemPrompt != "be brief" || c.samples[0].Messages[0].Content.Text != "sky color?" || c.samples[0].MaxTokens != 50 {
			t.Errorf("sampling request relayed as %+v", c.samples)
		}
	})

	t.Run("sampling without a capable client", func(t *testing.T) {
		res, err := e.call(ctx, "up_sample", `{"text":"x"}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(text(res), "mcptower could not relay sampling to its client: sampling needs a connected MCP client") {
			t.Errorf("result = %q (is_error %v), want the client's reason", text(res), res.IsError)
		}
	})

	t.Run("elicitation", func(t *testing.T) {
		c := newFakeClient()
		var got *agents.ElicitRequest
		c.elicit = func(r *agents.ElicitRequest) (*agents.ElicitResult, error) {
			got = r
			return &agents.ElicitResult{Action: "accept", Content: map[string]any{"color": "blue"}}, nil
		}
		res, err := e.call(ctx, "up_elicit", `{"text":"favourite color?"}`, c)
		if err != nil || string(res.Output) != `{"text":"accept blue"}` {
			t.Fatalf("elicit = %v, %v", res, err)
		}
		if got.Message != "favourite color?" || !strings.Contains(string(got.Schema), `"color"`) {
			t.Errorf("elicitation relayed as %+v", got)
		}
	})

	t.Run("tool error", func(t *testing.T) {
		res, err := e.call(ctx, "up_fail", `{"text":""}`, nil)
		if err != nil || !res.IsError || !strings.Contains(text(res), "it failed, as asked") {
			t.Errorf("fail = %v, %v", res, err)
		}
	})

	t.Run("invalid input stops at our validation", func(t *testing.T) {
		_, err := e.call(ctx, "up_echo", `{"text":5}`, nil)
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "text") {
			t.Errorf("err = %v, want Invalid naming the field", err)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		c := newFakeClient()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := e.call(cctx, "up_slow", `{"steps":500,"step_ms":20}`, c)
			done <- err
		}()
		<-c.gotFirst
		cancel()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("cancelled call succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancelled call did not return")
		}
		// notifications/cancelled reached the upstream: its handler saw its
		// context end.
		waitFor(t, 5*time.Second, "the upstream to see the cancellation", cancelSeen)
	})
}

func TestStdioCrashRestart(t *testing.T) {
	e := start(t, stdioOptions(nil))
	ctx := t.Context()
	pid1 := e.up.PID()

	_, err := e.call(ctx, "up_exit", `{"after_ms":50,"code":3}`, nil)
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "exited during the call") ||
		!strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "exit: goodbye") {
		t.Fatalf("in-flight call of a crashing upstream: %v; want Unavailable with the exit status and stderr", err)
	}
	res, err := e.call(ctx, "up_echo", `{"text":"again"}`, nil)
	if err != nil || string(res.Output) != `{"text":"again"}` {
		t.Fatalf("call after the restart = %v, %v", res, err)
	}
	pid2 := e.up.PID()
	if pid2 == pid1 || pid2 == 0 {
		t.Fatalf("pid after restart %d (before %d)", pid2, pid1)
	}

	// Killed from outside, mid-call.
	c := newFakeClient()
	done := make(chan error, 1)
	go func() {
		_, err := e.call(ctx, "up_slow", `{"steps":500,"step_ms":20}`, c)
		done <- err
	}()
	<-c.gotFirst
	if err := syscall.Kill(pid2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "signal: killed") {
			t.Fatalf("in-flight call of a killed upstream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight call did not end when its upstream was killed")
	}
	if _, err := e.call(ctx, "up_echo", `{"text":"3"}`, nil); err != nil {
		t.Fatalf("call after the second restart: %v", err)
	}
	pid3 := e.up.PID()
	if !strings.Contains(e.logs.String(), `"msg":"upstream connection ended; reconnecting"`) {
		t.Errorf("restart not logged:\n%s", e.logs)
	}

	e.up.Close()
	for _, pid := range []int{pid1, pid2, pid3} {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("process %d still exists (running or zombie) after Close", pid)
		}
	}
	if _, err := e.call(ctx, "up_echo", `{"text":"x"}`, nil); !errs.Is(err, errs.NotFound) {
		t.Errorf("after Close the tools are still registered: %v", err)
	}
}

func TestListChanged(t *testing.T) {
	e := start(t, stdioOptions(nil))
	ctx := t.Context()
	changes := make(chan agents.Change, 16)
	defer e.reg.Subscribe(func(c agents.Change) { changes <- c })()
	next := func() agents.Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no registry change")
		}
		return agents.Change{}
	}
	if _, err := e.call(ctx, "up_add_tool", `{"name":"extra"}`, nil); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Type != agents.Added || c.Agent.Spec().Name != "up_extra" {
		t.Fatalf("change = %v %s, want added up_extra", c.Type, c.Agent.Spec().Name)
	}
	res, err := e.call(ctx, "up_extra", `{"text":""}`, nil)
	if err != nil || string(res.Output) != `{"text":"extra"}` {
		t.Fatalf("new tool = %v, %v", res, err)
	}
	if _, err := e.call(ctx, "up_remove_tool", `{"name":"extra"}`, nil); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Type != agents.Removed || c.Agent.Spec().Name != "up_extra" {
		t.Fatalf("change = %v %s, want removed up_extra", c.Type, c.Agent.Spec().Name)
	}
	select {
	case c := <-changes:
		t.Errorf("unexpected change %v %s: unchanged tools must keep their agents", c.Type, c.Agent.Spec().Name)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestInputRequiredReplay(t *testing.T) {
	e := start(t, stdioOptions(nil))
	ctx := t.Context()
	// A 2026 client: the first run asks, the retry has the answer.
	ir := &agents.InputRequired{}
	c1 := newFakeClient()
	c1.sample = func(r *agents.SampleRequest) (*agents.SampleResult, error) {
		ir.Inputs = map[string]agents.Input{"in-0": {Sample: r}}
		return nil, ir
	}
	_, err := e.call(ctx, "up_sample", `{"text":"q"}`, c1)
	var got *agents.InputRequired
	if !errors.As(err, &got) || got != ir {
		t.Fatalf("first run: %v, want the client's *InputRequired unchanged", err)
	}
	c2 := newFakeClient()
	c2.sample = func(*agents.SampleRequest) (*agents.SampleResult, error) {
		return &agents.SampleResult{Content: agents.Text("a"), Model: "m"}, nil
	}
	res, err := e.call(ctx, "up_sample", `{"text":"q"}`, c2)
	if err != nil || string(res.Output) != `{"text":"m: a"}` {
		t.Fatalf("retry = %v, %v", res, err)
	}
}

func TestConcurrentCallsFromDifferentSessions(t *testing.T) {
	e := start(t, stdioOptions(nil))
	ctx := t.Context()
	// A long call from one session is in progress...
	c := newFakeClient()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.engine.Invoke(context.WithValue(cctx, callKey{}, "slow"), agents.Request{Agent: "up_slow", Args: json.RawMessage(`{"steps":500,"step_ms":20}`), Session: "s1", Client: c})
	}()
	<-c.gotFirst
	// ...so a sampling request during another session's call is ambiguous.
	c2 := newFakeClient()
	c2.sample = func(*agents.SampleRequest) (*agents.SampleResult, error) {
		return &agents.SampleResult{Content: agents.Text("a")}, nil
	}
	resp, err := e.engine.Invoke(context.WithValue(ctx, callKey{}, "sample"), agents.Request{Agent: "up_sample", Args: json.RawMessage(`{"text":"q"}`), Session: "s2", Client: c2})
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Result.IsError || !strings.Contains(text(resp.Result), "calls from different clients are in progress") {
		t.Errorf("ambiguous sampling: %q", text(resp.Result))
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("no such command", func(t *testing.T) {
		e := newEnv(t, map[string]any{"command": "/nonexistent/mcp-server"})
		err := e.up.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("Start = %v", err)
		}
	})
	t.Run("exits at once", func(t *testing.T) {
		e := newEnv(t, map[string]any{"command": "sh", "args": []string{"-c", "echo boom >&2; exit 7"}})
		err := e.up.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "exit status 7") {
			t.Errorf("Start = %v, want the exit status and stderr", err)
		}
	})
	t.Run("lazy, with backoff", func(t *testing.T) {
		e := newEnv(t, map[string]any{"command": "sh", "args": []string{"-c", "echo boom >&2; exit 7"}, "start": "lazy",
			"restart_backoff": "20ms", "restart_max_backoff": "80ms"})
		if err := e.up.Start(t.Context()); err != nil {
			t.Fatalf("lazy Start = %v", err)
		}
		e.up.Attach(e.reg)
		waitFor(t, 10*time.Second, "the health check to report the failure", func() bool {
			err := e.up.CheckHealth(t.Context())
			return errs.Is(err, errs.Unavailable) && strings.Contains(err.Error(), "boom")
		})
		// Every attempt fails: the delay doubles up to the cap.
		var delays []time.Duration
		waitFor(t, 10*time.Second, "five attempts", func() bool {
			delays = nil
			for _, line := range strings.Split(e.logs.String(), "\n") {
				var rec struct {
					Msg     string        `json:"msg"`
					RetryIn time.Duration `json:"retry_in"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "upstream unavailable" {
					delays = append(delays, rec.RetryIn)
				}
			}
			return len(delays) >= 5
		})
		want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond}
		if diff := cmp.Diff(want, delays[:5]); diff != "" {
			t.Errorf("backoff (-want +got):\n%s", diff)
		}
	})
}

func TestLazyStart(t *testing.T) {
	e := newEnv(t, stdioOptions(map[string]any{"start": "lazy"}))
	if err := e.up.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.up.Attach(e.reg)
	waitFor(t, 10*time.Second, "the tools to appear", func() bool {
		_, err := e.reg.Resolve("up_echo")
		return err == nil
	})
	if _, err := e.call(t.Context(), "up_echo", `{"text":"x"}`, nil); err != nil {
		t.Fatal(err)
	}
}

// httpUpstream serves testServer over Streamable HTTP on a fixed loopback
// address, and can forget its sessions, stop and start again.
type httpUpstream struct {
	t       *testing.T
	addr    string
	handler atomic.Pointer[http.Handler]
	srv     *http.Server
	servers []*mcp.Server // every MCP server ever installed, to end their sessions
	auth    atomic.Value  // last Authorization header
	custom  atomic.Value  // last X-Test header
	opts    *mcp.StreamableHTTPOptions
	// wrap, if set, wraps the MCP handler (fault injection).
	wrap  func(http.Handler) http.Handler
	conns atomic.Int64 // TCP connections accepted
}

func newHTTPUpstream(t *testing.T) *httpUpstream { return newHTTPUpstreamWith(t, nil) }

// newHTTPUpstreamWith is newHTTPUpstream with the SDK handler's options.
func newHTTPUpstreamWith(t *testing.T, opts *mcp.StreamableHTTPOptions) *httpUpstream {
	h := &httpUpstream{t: t, opts: opts}
	h.reset()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.serve(ln)
	t.Cleanup(h.stop)
	return h
}

// reset installs a new handler: every session is forgotten.
func (h *httpUpstream) reset() {
	server := testServer()
	h.servers = append(h.servers, server)
	var handler http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, h.opts)
	if h.wrap != nil {
		handler = h.wrap(handler)
	}
	h.handler.Store(&handler)
}

func (h *httpUpstream) serve(ln net.Listener) {
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.auth.Store(r.Header.Get("Authorization"))
		h.custom.Store(r.Header.Get("X-Test"))
		(*h.handler.Load()).ServeHTTP(w, r)
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			h.conns.Add(1)
		}
	}}
	go h.srv.Serve(ln)
}

func (h *httpUpstream) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
	// Sessions live on in the MCP servers; end them (goleak checks).
	for _, s := range h.servers {
		for ss := range s.Sessions() {
			ss.Close()
		}
	}
}

func (h *httpUpstream) restart() {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatalf("listen again on %s: %v", h.addr, err)
	}
	h.reset()
	h.serve(ln)
}

func TestHTTPUpstream(t *testing.T) {
	h := newHTTPUpstream(t)
	t.Setenv("MCPKIND_TEST_TOKEN", "s3cret")
	e := start(t, map[string]any{
		"url": "http://" + h.addr + "/mcp", "headers": map[string]string{"X-Test": "yes"},
		"bearer_token_env": "MCPKIND_TEST_TOKEN", "restart_backoff": "20ms", "prefix": "web", "separator": ".",
	})
	ctx := t.Context()
	res, err := e.call(ctx, "web.echo", `{"text":"hi"}`, nil)
	if err != nil || string(res.Output) != `{"text":"hi"}` {
		t.Fatalf("echo = %v, %v", res, err)
	}
	if h.auth.Load() != "Bearer s3cret" || h.custom.Load() != "yes" {
		t.Errorf("headers seen upstream: Authorization %q, X-Test %q", h.auth.Load(), h.custom.Load())
	}
	c := newFakeClient()
	if _, err := e.call(ctx, "web.slow", `{"steps":2,"step_ms":5}`, c); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.snapshot(); len(p) != 2 {
		t.Errorf("progress over HTTP: %v", p)
	}

	// The upstream restarts and forgets our session: the call is sent again
	// on a new one, transparently.
	h.reset()
	res, err = e.call(ctx, "web.echo", `{"text":"after reset"}`, nil)
	if err != nil || string(res.Output) != `{"text":"after reset"}` {
		t.Fatalf("echo after the upstream lost the session = %v, %v", res, err)
	}
	if !strings.Contains(e.logs.String(), "upstream lost the session") {
		t.Errorf("session loss not logged:\n%s", e.logs)
	}

	// The upstream goes away: calls fail, clearly; it comes back: calls work.
	h.stop()
	_, err = e.call(ctx, "web.echo", `{"text":"x"}`, nil)
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("call to a stopped upstream: %v, want Unavailable", err)
	}
	if err := e.up.CheckHealth(ctx); !errs.Is(err, errs.Unavailable) {
		t.Errorf("CheckHealth of a stopped upstream: %v", err)
	}
	h.restart()
	waitFor(t, 10*time.Second, "the upstream to be reconnected", func() bool {
		_, err := e.call(ctx, "web.echo", `{"text":"back"}`, nil)
		return err == nil
	})
}
