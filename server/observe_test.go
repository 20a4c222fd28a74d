package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"mcptower/agents"
	"mcptower/agents/llm"
	"mcptower/agents/llm/llmtest"
	"mcptower/internal/logging"
	"mcptower/internal/observe"
	"mcptower/server"
)

// newObservedEnv is a test server with metrics, the engine's observer and
// an instrumented store, as App wires them.
func newObservedEnv(t *testing.T) (*testEnv, *observe.Metrics, *httptest.Server) {
	t.Helper()
	m := observe.NewMetrics()
	env := newTestEnv(t, &server.Options{Metrics: m})
	env.engine.Observer = &observe.Observer{Metrics: m}
	env.engine.Store = observe.Store(env.store, m)
	ts := httptest.NewServer(env.srv.Handler())
	t.Cleanup(ts.Close)
	return env, m, ts
}

func TestMetrics(t *testing.T) {
	_, m, ts := newObservedEnv(t)
	client := mcp.NewClient(&mcp.Implementation{Name: "metrics", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func(name string, args map[string]any) {
		t.Helper()
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args}); err != nil {
			t.Fatal(err)
		}
	}
	call("echo", map[string]any{"text": "a"})
	call("echo", map[string]any{"text": "b"})
	call("echo", map[string]any{"text": 3}) // invalid
	call("fail", map[string]any{})
	call("slow", map[string]any{})

	for _, c := range []struct {
		agent, outcome string
		want           float64
	}{{"echo", "ok", 2}, {"echo", "invalid", 1}, {"fail", "internal", 1}, {"slow", "timeout", 1}} {
		if got := testutil.ToFloat64(m.Invocations.WithLabelValues(c.agent, c.outcome)); got != c.want {
			t.Errorf("invocations{agent=%q,outcome=%q} = %v, want %v", c.agent, c.outcome, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.MCPRequests.WithLabelValues("tools/call", "ok")); got != 5 {
		t.Errorf("mcp tools/call requests = %v, want 5", got)
	}
	// Appends: the two echo calls, fail and slow ran (invalid input did not).
	if n := histogramCount(t, m, observe.MetricStoreDuration, "append"); n != 4 {
		t.Errorf("store appends observed = %d, want 4", n)
	}
	if n := histogramCount(t, m, observe.MetricInvokeDuration, "echo"); n != 3 {
		t.Errorf("echo latency observations = %d, want 3", n)
	}
	if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/mcp", "200")); got < 5 {
		t.Errorf("http /mcp 200 = %v, want >= 5", got)
	}

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{observe.MetricInvocations, observe.MetricInvokeDuration, observe.MetricMCPRequests,
		observe.MetricHTTPRequests, observe.MetricStoreDuration, observe.MetricSessions, "go_goroutines"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(string(body), "session=") {
		t.Error("/metrics has a session label: unbounded cardinality")
	}
}

func histogramCount(t *testing.T, m *observe.Metrics, name, label string) uint64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetValue() == label {
					return metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestTracing: a request carrying traceparent produces one trace: HTTP
// server span → MCP method span → agent invocation span (an llm agent) →
// its call to the model provider, whose traceparent reaches the fake
// provider; and a traceparent in MCP _meta is honoured.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	// The agent is a real llm agent (kind llm) talking to a fake
	// OpenAI-compatible server, which records the traceparent it receives.
	fake := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.OpenAIChat("m", "hi", 3, 1)})
	env, _, ts := newObservedEnv(t)
	noStream := false
	llmAgent, err := llm.New(agents.Spec{Name: "fake_llm"}, &llm.Options{
		BaseURL: fake.URL + "/v1", Model: "m", Stream: &noStream,
		PromptOptions: llm.PromptOptions{Prompt: "{{.Input.prompt}}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Add(llmAgent); err != nil {
		t.Fatal(err)
	}
	upstreamTP := func() string {
		t.Helper()
		reqs := fake.Requests()
		if len(reqs) == 0 {
			t.Fatal("the fake LLM server received no request")
		}
		return reqs[len(reqs)-1].Header.Get("Traceparent")
	}

	const remoteTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	httpClient := &http.Client{Transport: headerTransport{"Traceparent": "00-" + remoteTrace + "-00f067aa0ba902b7-01"}}
	client := mcp.NewClient(&mcp.Implementation{Name: "tracing", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: httpClient}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "fake_llm", Arguments: map[string]any{"prompt": "hello"}}); err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}
	if got := upstreamTP(); !strings.Contains(got, remoteTrace) {
		t.Errorf("upstream traceparent %q is not in trace %s", got, remoteTrace)
	}

	// Started, not Ended: the HTTP server span of the POST may still be
	// finishing its response when the client already has the result.
	started := func() []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range rec.Started() {
			out = append(out, s)
		}
		return out
	}
	var httpSpan, mcpSpan, invoke, outgoing sdktrace.ReadOnlySpan
	for _, s := range started() {
		if s.SpanContext().TraceID().String() != remoteTrace {
			continue
		}
		switch {
		case s.Name() == "invoke fake_llm":
			invoke = s
		case s.Name() == "mcp tools/call":
			mcpSpan = s
		case s.SpanKind() == trace.SpanKindClient:
			outgoing = s
		case s.SpanKind() == trace.SpanKindServer && s.Name() == "/mcp" && s.Parent().SpanID().String() == "00f067aa0ba902b7" && httpSpan == nil:
			httpSpan = s
		}
	}
	if invoke == nil || mcpSpan == nil || httpSpan == nil || outgoing == nil {
		var names []string
		for _, s := range started() {
			names = append(names, s.Name()+"/"+s.SpanContext().TraceID().String()[:8])
		}
		t.Fatalf("missing spans in trace %s (http %v, mcp %v, invoke %v, outgoing %v); ended spans: %v",
			remoteTrace, httpSpan != nil, mcpSpan != nil, invoke != nil, outgoing != nil, names)
	}
	parentOf := func(child, parent sdktrace.ReadOnlySpan) {
		t.Helper()
		if child.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q's parent is %s, want %q (%s)", child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
	}
	parentOf(invoke, mcpSpan)
	parentOf(outgoing, invoke)
	// The MCP span's parent is one of the /mcp server spans of this trace
	// (the POST that carried the call).
	var mcpParentIsHTTP bool
	for _, s := range started() {
		if s.SpanKind() == trace.SpanKindServer && s.SpanContext().SpanID() == mcpSpan.Parent().SpanID() {
			mcpParentIsHTTP = true
		}
	}
	if !mcpParentIsHTTP {
		t.Errorf("span %q's parent %s is not an HTTP server span", mcpSpan.Name(), mcpSpan.Parent().SpanID())
	}

	// traceparent in _meta wins for that request.
	const metaTrace = "0af7651916cd43dd8448eb211c80319c"
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "fake_llm", Arguments: map[string]any{"prompt": "again"},
		Meta: mcp.Meta{"traceparent": "00-" + metaTrace + "-b7ad6b7169203331-01"}}); err != nil {
		t.Fatal(err)
	}
	if got := upstreamTP(); !strings.Contains(got, metaTrace) {
		t.Errorf("with _meta traceparent, upstream got %q, want trace %s", got, metaTrace)
	}
}

type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestCallLogs: every call is logged once with request id, session, agent,
// duration and outcome.
func TestCallLogs(t *testing.T) {
	var buf syncBuffer
	logger := logging.New(&buf, slog.LevelInfo, logging.JSON)
	env := newTestEnv(t, &server.Options{Logger: logger})
	env.engine.Logger = logger
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	c := &rawClient{t: t, url: ts.URL + "/mcp"}
	c.initialize()
	r := c.do("POST", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"logged"}}}`, map[string]string{"X-Request-Id": "req-123"})
	if r.header.Get("X-Request-Id") != "req-123" {
		t.Errorf("X-Request-Id not echoed: %q", r.header.Get("X-Request-Id"))
	}
	c.do("POST", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"fail","arguments":{}}}`, nil)

	var calls []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && (rec["msg"] == "call" || rec["msg"] == "call failed") {
			calls = append(calls, rec)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("want 2 call log lines, got %d:\n%s", len(calls), buf.String())
	}
	for i, want := range []struct{ agent, outcome, level string }{{"echo@1.0.0", "ok", "INFO"}, {"fail@1.0.0", "internal", "WARN"}} {
		rec := calls[i]
		if rec["agent"] != want.agent || rec["outcome"] != want.outcome || rec["level"] != want.level || rec["session"] != c.session || rec["duration"] == nil || rec["request_id"] == nil {
			t.Errorf("log line %d = %v; want agent %s, outcome %s, level %s, session %s, duration and request_id", i, rec, want.agent, want.outcome, want.level, c.session)
		}
	}
	if calls[0]["request_id"] != "req-123" {
		t.Errorf("request_id = %v, want the client's req-123", calls[0]["request_id"])
	}
}

// syncBuffer is a goroutine-safe buffer for captured logs.
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
