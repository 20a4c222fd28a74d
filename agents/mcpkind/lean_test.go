package mcpkind

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// recorded is one request an HTTP upstream received.
type recorded struct {
	method string
	header http.Header
	body   string
}

// recorder wraps an upstream's handler and keeps every request.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rc *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{r.Method, r.Header.Clone(), string(body)})
		rc.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// peek reads a request's body, leaving it to be read again, and the id and
// method of the JSON-RPC message in it.
func peek(r *http.Request) (body []byte, m struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}) {
	body, _ = io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	_ = json.Unmarshal(body, &m)
	return body, m
}

// calls returns the tools/call requests received.
func (rc *recorder) calls() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []recorded
	for _, r := range rc.reqs {
		if strings.Contains(r.body, `"method":"tools/call"`) {
			out = append(out, r)
		}
	}
	return out
}

func (rc *recorder) find(pred func(recorded) bool) *recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := range rc.reqs {
		if pred(rc.reqs[i]) {
			return &rc.reqs[i]
		}
	}
	return nil
}

// progressClient is a client that asked for progress (or not).
type progressClient struct {
	agents.NoClient
	wants bool
}

func (c progressClient) Supports(f string) bool { return f == "progress" && c.wants }

// TestLeanRequest checks what a lean call sends: the session's headers, the
// tool and arguments, and in _meta only what applies: a progress token when
// the client asked for progress, the trace context, the forwarded session.
func TestLeanRequest(t *testing.T) {
	rec := &recorder{}
	h := newHTTPUpstreamWith(t, nil)
	h.wrap = rec.wrap
	h.reset()
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp", "forward_session": true})
	ctx := t.Context()

	type meta struct {
		ProgressToken any    `json:"progressToken"`
		Session       string `json:"mcptower/session_id"`
		Traceparent   string `json:"traceparent"`
	}
	type call struct {
		ID     any `json:"id"`
		Params struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
			Meta      *meta           `json:"_meta"`
		} `json:"params"`
	}
	last := func() (call, recorded) {
		t.Helper()
		calls := rec.calls()
		if len(calls) == 0 {
			t.Fatal("no tools/call reached the upstream")
		}
		r := calls[len(calls)-1]
		var c call
		if err := json.Unmarshal([]byte(r.body), &c); err != nil {
			t.Fatalf("request body %s: %v", r.body, err)
		}
		return c, r
	}

	if _, err := e.engine.Invoke(ctx, agents.Request{Agent: "up_echo", Args: json.RawMessage(`{"text":"a"}`), Client: progressClient{}}); err != nil {
		t.Fatal(err)
	}
	c, r := last()
	if m := c.Params.Meta; c.Params.Name != "echo" || string(c.Params.Arguments) != `{"text":"a"}` || m == nil || m.ProgressToken != nil || m.Traceparent != "" || m.Session == "" {
		t.Errorf("call without progress nor trace = %s; want name echo, the arguments, and only the session in _meta", r.body)
	}
	if r.header.Get("Mcp-Session-Id") == "" || r.header.Get("Mcp-Protocol-Version") != DefaultProtocol {
		t.Errorf("headers %v lack the session id or protocol version", r.header)
	}
	if _, ok := c.ID.(string); !ok {
		t.Errorf("request id %v: want a string, distinct from the SDK client's numbers", c.ID)
	}

	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled, Remote: true})
	tctx := trace.ContextWithRemoteSpanContext(ctx, sc)
	if _, err := e.engine.Invoke(tctx, agents.Request{Agent: "up_echo", Session: "conv-1", Args: json.RawMessage(`{"text":"b"}`), Client: progressClient{wants: true}}); err != nil {
		t.Fatal(err)
	}
	c, r = last()
	if m := c.Params.Meta; m == nil || m.ProgressToken != c.ID || m.Session != "conv-1" || !strings.HasPrefix(m.Traceparent, "00-09000000") {
		t.Errorf("call with progress, session and trace = %s; want them all in _meta, the token equal to the id", r.body)
	}
	if tp := r.header.Get("Traceparent"); !strings.HasPrefix(tp, "00-09000000") {
		t.Errorf("traceparent header = %q, want the call's trace", tp)
	}
}

// TestConnectionReuse checks that calls reuse their TCP connections to an
// HTTP upstream, through the SDK's client and through lean calls.
func TestConnectionReuse(t *testing.T) {
	for _, lean := range []bool{false, true} {
		h := newHTTPUpstreamWith(t, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
		e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp", "lean_calls": lean})
		before := h.conns.Load()
		for range 100 {
			if _, err := e.call(t.Context(), "up_echo", `{"text":"x"}`, nil); err != nil {
				t.Fatal(err)
			}
		}
		// One connection carries the calls; the standalone stream holds
		// another. A call whose answer left its connection unusable would
		// open a new one (before keepalive.go, one call in three did).
		if n := h.conns.Load() - before; n > 2 {
			t.Errorf("lean=%v: 100 calls opened %d new connections, want at most 2", lean, n)
		}
		e.up.Close()
		h.stop()
	}
}

// cutAfter wraps an upstream handler: the event stream of the first
// tools/call of tool is cut (the connection closed) after n writes.
func cutAfter(tool string, n int) func(http.Handler) http.Handler {
	var done atomic.Bool
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if r.Method == http.MethodPost && bytes.Contains(body, []byte(`"name":"`+tool+`"`)) && !done.Swap(true) {
				w = &cuttingWriter{ResponseWriter: w, left: n}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type cuttingWriter struct {
	http.ResponseWriter
	mu   sync.Mutex
	left int
	cut  bool
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return 0, http.ErrHijacked
	}
	return c.ResponseWriter.Write(p)
}

func (c *cuttingWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return
	}
	c.ResponseWriter.(http.Flusher).Flush()
	if c.left--; c.left == 0 {
		c.cut = true
		if conn, _, err := http.NewResponseController(c.ResponseWriter).Hijack(); err == nil {
			conn.Close()
		}
	}
}

// TestLeanResume cuts a call's event stream after its first progress
// notification: the lean call resumes it from the last event id and gets
// the rest of the progress and the result.
func TestLeanResume(t *testing.T) {
	rec := &recorder{}
	h := newHTTPUpstreamWith(t, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	cut := cutAfter("slow", 2) // the priming event, then the first progress notification
	h.wrap = func(next http.Handler) http.Handler { return rec.wrap(cut(next)) }
	h.reset()
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp"})
	c := newFakeClient()
	res, err := e.call(t.Context(), "up_slow", `{"steps":3,"step_ms":20}`, c)
	if err != nil || text(res) != "done" {
		t.Fatalf("slow with a cut stream = %v, %v", res, err)
	}
	progress, _ := c.snapshot()
	if diff := cmp.Diff([]string{"1/3 step 1", "2/3 step 2", "3/3 step 3"}, progress); diff != "" {
		t.Errorf("progress across the cut (-want +got):\n%s", diff)
	}
	if rec.find(func(r recorded) bool { return r.method == http.MethodGet && r.header.Get("Last-Event-ID") != "" }) == nil {
		t.Error("no GET with Last-Event-ID reached the upstream")
	}
}

// TestLeanErrors checks what a lean call reports when the upstream answers
// a call badly.
func TestLeanErrors(t *testing.T) {
	var answer atomic.Pointer[func(http.ResponseWriter)]
	h := newHTTPUpstreamWith(t, nil)
	h.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if f := answer.Load(); f != nil && bytes.Contains(body, []byte(`"method":"tools/call"`)) {
				(*f)(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h.reset()
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp", "restart_backoff": "10ms"})
	ctx := t.Context()

	for _, tt := range []struct {
		name     string
		answer   func(http.ResponseWriter)
		wantCode errs.Code
		wantMsg  string
	}{
		{"503", func(w http.ResponseWriter) { http.Error(w, "overloaded", http.StatusServiceUnavailable) },
			errs.Unavailable, "answered HTTP 503 Service Unavailable: overloaded"},
		{"500 with a JSON-RPC error", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"database on fire"}}`)
		}, errs.Internal, "database on fire"},
		{"JSON-RPC invalid params without an id", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"unknown tool"}}`)
		}, errs.Invalid, "upstream up: unknown tool"},
		{"JSON response to another request", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":"other","result":{}}`)
		}, errs.Unavailable, "not the response to the call"},
		{"202 without an answer", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
			errs.Unavailable, "accepted the call without answering it"},
		{"unknown content type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		}, errs.Unavailable, `answered the call with Content-Type "text/html"`},
		{"malformed event", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {not json\n\n")
		}, errs.Unavailable, "sent a malformed message"},
		{"stream ends without an answer", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\"}}\n\n")
		}, errs.Unavailable, "ended the call's event stream without answering"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer.Store(&tt.answer)
			_, err := e.call(ctx, "up_echo", `{"text":"x"}`, nil)
			answer.Store(nil)
			if errs.CodeOf(err) != tt.wantCode || err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v (code %v), want %v containing %q", err, errs.CodeOf(err), tt.wantCode, tt.wantMsg)
			}
			// The upstream is still usable (after a reconnection, when the
			// connection was in doubt).
			waitFor(t, 5*time.Second, "a call to succeed again", func() bool {
				_, err := e.call(ctx, "up_echo", `{"text":"y"}`, nil)
				return err == nil
			})
		})
	}
}

// TestLeanContentConversion checks that lean calls convert every content
// type as the SDK path does.
func TestLeanContentConversion(t *testing.T) {
	for _, tt := range []struct {
		name, raw string
	}{
		{"text", `{"type":"text","text":"hi"}`},
		{"image", `{"type":"image","data":"aGk=","mimeType":"image/png"}`},
		{"audio", `{"type":"audio","data":"aGk=","mimeType":"audio/wav"}`},
		{"resource link", `{"type":"resource_link","uri":"file:///a","name":"a","mimeType":"text/plain"}`},
		{"embedded text", `{"type":"resource","resource":{"uri":"file:///a","mimeType":"text/plain","text":"body"}}`},
		{"embedded blob", `{"type":"resource","resource":{"uri":"file:///b","mimeType":"application/octet-stream","blob":"aGk="}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// What the SDK's client makes of the block, and what lean calls
			// make of it, must be the same agents.Content.
			var res mcp.CallToolResult
			if err := json.Unmarshal([]byte(`{"content":[`+tt.raw+`]}`), &res); err != nil {
				t.Fatal(err)
			}
			want := contentFrom(res.Content[0])
			if diff := cmp.Diff(want, contentFromWire(json.RawMessage(tt.raw))); diff != "" {
				t.Errorf("lean content differs from the SDK path's (-sdk +lean):\n%s", diff)
			}
		})
	}
	if got := contentFromWire(json.RawMessage(`{"type":"hologram","x":1}`)); got.Type != "text" || got.Text != `{"type":"hologram","x":1}` {
		t.Errorf("unknown content type became %+v; want its JSON as text", got)
	}
}

// TestLeanUpstreamRequests checks that requests the upstream makes during
// a lean call are answered: ping with an empty result, a method mcptower
// does not serve with a JSON-RPC error; and the call goes on.
func TestLeanUpstreamRequests(t *testing.T) {
	var (
		mu      sync.Mutex
		answers = map[string]string{} // request id -> answer body
		arrived = make(chan struct{}, 2)
	)
	h := newHTTPUpstreamWith(t, nil)
	h.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, m := peek(r)
			switch {
			case r.Method == http.MethodPost && m.Method == "" && (string(m.ID) == "76" || string(m.ID) == "77"):
				mu.Lock()
				answers[string(m.ID)] = string(body)
				mu.Unlock()
				arrived <- struct{}{}
				w.WriteHeader(http.StatusAccepted)
			case m.Method == "tools/call":
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":76,\"method\":\"ping\"}\n\n")
				io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"roots/list\"}\n\n")
				w.(http.Flusher).Flush()
				for range 2 {
					select {
					case <-arrived:
					case <-time.After(5 * time.Second):
						return // the call then fails: no answer
					}
				}
				fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}\n\n", m.ID)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	h.reset()
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp"})
	res, err := e.call(t.Context(), "up_log", `{"text":"x"}`, nil) // a tool without output schema
	if err != nil || text(res) != "ok" {
		t.Fatalf("call with upstream requests = %v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := answers["76"]; got != `{"jsonrpc":"2.0","id":76,"result":{}}` {
		t.Errorf("answer to ping = %s", got)
	}
	if got := answers["77"]; !strings.Contains(got, `"code":-32601`) || !strings.Contains(got, `roots/list`) {
		t.Errorf("answer to roots/list = %s; want a method-not-found error naming it", got)
	}
}

// TestLeanStreamLeftOpen checks that an upstream that keeps a call's event
// stream open after the response does not hold the call.
func TestLeanStreamLeftOpen(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHTTPUpstreamWith(t, nil)
	h.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, m := peek(r)
			if m.Method != "tools/call" {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}\n\n", m.ID)
			w.(http.Flusher).Flush()
			select { // and keep the stream open
			case <-release:
			case <-r.Context().Done():
			}
		})
	}
	h.reset()
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp"})
	done := make(chan error, 1)
	go func() {
		res, err := e.call(t.Context(), "up_log", `{"text":"x"}`, nil)
		if err == nil && text(res) != "ok" {
			err = fmt.Errorf("result %q", text(res))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call waited for the upstream to end its stream")
	}
}

// TestLeanUpstreamDiesMidCall stops an HTTP upstream while a lean call is
// in progress: the call fails with a clear Unavailable error, and calls
// work again once the upstream is back.
func TestLeanUpstreamDiesMidCall(t *testing.T) {
	h := newHTTPUpstreamWith(t, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	e := start(t, map[string]any{"url": "http://" + h.addr + "/mcp", "restart_backoff": "20ms"})
	ctx := t.Context()
	c := newFakeClient()
	done := make(chan error, 1)
	go func() {
		_, err := e.call(ctx, "up_slow", `{"steps":200,"step_ms":20}`, c)
		done <- err
	}()
	select {
	case <-c.gotFirst:
	case <-time.After(10 * time.Second):
		t.Fatal("the call made no progress")
	}
	h.stop()
	select {
	case err := <-done:
		if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "during the call") {
			t.Fatalf("in-flight call of a stopped upstream: %v; want Unavailable saying it was lost during the call", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the in-flight call did not end when its upstream went away")
	}
	h.restart()
	waitFor(t, 10*time.Second, "calls to work again", func() bool {
		_, err := e.call(ctx, "up_echo", `{"text":"back"}`, nil)
		return err == nil
	})
}
