package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"mcptower/internal/bench"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// exchange is what the fake server saw of one HTTP request.
type exchange struct {
	HTTPMethod  string
	RPCMethod   string
	ID          string // raw JSON id, "" for notifications
	Session     string // Mcp-Session-Id
	Version     string // MCP-Protocol-Version
	McpMethod   string // Mcp-Method
	McpName     string // Mcp-Name
	Accept      string
	ContentType string
	Custom      string // X-Bench, set through Options.Headers
	Params      map[string]any
}

// fakeServer is a hand-written Streamable HTTP endpoint, so that tests can
// see every byte the client sends and script every byte it receives.
type fakeServer struct {
	url string

	// negotiate is the protocolVersion returned by initialize.
	negotiate string
	// initStatus, when non-zero, is returned for initialize instead.
	initStatus int
	// respond answers tools/call; jsonEcho when nil.
	respond func(w http.ResponseWriter, r *http.Request, id string)

	sessions atomic.Int64
	mu       sync.Mutex
	log      []exchange
}

func newFakeServer(t *testing.T, configure func(*fakeServer)) *fakeServer {
	t.Helper()
	f := &fakeServer{negotiate: "2025-11-25"}
	if configure != nil {
		configure(f)
	}
	ts := httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(ts.Close)
	f.url = ts.URL + "/mcp"
	return f
}

func (f *fakeServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange{
		HTTPMethod:  r.Method,
		Session:     r.Header.Get("Mcp-Session-Id"),
		Version:     r.Header.Get("Mcp-Protocol-Version"),
		McpMethod:   r.Header.Get("Mcp-Method"),
		McpName:     r.Header.Get("Mcp-Name"),
		Accept:      r.Header.Get("Accept"),
		ContentType: r.Header.Get("Content-Type"),
		Custom:      r.Header.Get("X-Bench"),
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params map[string]any  `json:"params"`
	}
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ex.RPCMethod, ex.ID, ex.Params = msg.Method, string(msg.ID), msg.Params
	}
	f.mu.Lock()
	f.log = append(f.log, ex)
	f.mu.Unlock()

	switch {
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case msg.Method == "initialize":
		if f.initStatus != 0 {
			http.Error(w, "no sessions today", f.initStatus)
			return
		}
		w.Header().Set("Mcp-Session-Id", fmt.Sprintf("s%d", f.sessions.Add(1)))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{},"serverInfo":{"name":"fake","version":"0"}}}`, msg.ID, f.negotiate)
	case msg.Method == "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case msg.Method == "tools/call":
		if f.respond != nil {
			f.respond(w, r, string(msg.ID))
		} else {
			jsonEcho(w, r, string(msg.ID))
		}
	default:
		http.Error(w, "unexpected "+msg.Method, http.StatusBadRequest)
	}
}

func (f *fakeServer) exchanges() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func jsonEcho(w http.ResponseWriter, _ *http.Request, id string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"hi"}]}}`, id)
}

// sseWithNoise answers on an event stream with a comment, a notification, a
// server-to-client request reusing the call's id, CRLF line endings and a
// response split over two data lines, before the response itself.
func sseWithNoise(w http.ResponseWriter, _ *http.Request, id string) {
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, ": keep-alive\r\n\r\n")
	fmt.Fprint(w, "event: prime\nid: 0\n\n")
	fmt.Fprint(w, "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n")
	fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n", id)
	w.(http.Flusher).Flush()
	fmt.Fprintf(w, "id: 7\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\ndata:\"id\":%s,\"result\":{\"content\":[]}}\n\n", id)
}

func TestWireLegacy(t *testing.T) {
	f := newFakeServer(t, func(f *fakeServer) { f.negotiate = "2025-06-18" })
	const requests = 7
	rep, err := bench.Run(t.Context(), bench.Options{
		URL:         f.url,
		Tool:        "echo",
		Args:        []byte("{\n  \"text\": \"hi\"\n}"),
		Concurrency: 2,
		Requests:    requests,
		Headers:     http.Header{"X-Bench": {"yes"}},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests != requests {
		t.Errorf("Requests = %d, want %d", rep.Requests, requests)
	}

	// Per session, in order: what the client sent after initializing.
	got := map[string][]string{}
	inits := 0
	for _, ex := range f.exchanges() {
		if ex.Custom != "yes" {
			t.Errorf("%s %s: X-Bench = %q, want the header from Options.Headers", ex.HTTPMethod, ex.RPCMethod, ex.Custom)
		}
		if ex.HTTPMethod == http.MethodPost {
			if ex.Accept != "application/json, text/event-stream" || ex.ContentType != "application/json" {
				t.Errorf("%s: Accept = %q, Content-Type = %q", ex.RPCMethod, ex.Accept, ex.ContentType)
			}
		}
		if ex.RPCMethod == "initialize" {
			inits++
			want := map[string]any{
				"protocolVersion": "2025-11-25",
				"capabilities":    map[string]any{},
				"clientInfo":      map[string]any{"name": "mcptower-bench", "version": "0.1.0"},
			}
			if diff := cmp.Diff(want, ex.Params); diff != "" {
				t.Errorf("initialize params (-want +got):\n%s", diff)
			}
			if ex.Session != "" || ex.Version != "" {
				t.Errorf("initialize sent session %q, version %q; want neither", ex.Session, ex.Version)
			}
			continue
		}
		// After initialize, the negotiated version, not the requested one.
		if ex.Version != "2025-06-18" {
			t.Errorf("%s %s: MCP-Protocol-Version = %q, want the negotiated 2025-06-18", ex.HTTPMethod, ex.RPCMethod, ex.Version)
		}
		if ex.McpMethod != "" || ex.McpName != "" {
			t.Errorf("%s: legacy request sent Mcp-Method %q, Mcp-Name %q", ex.RPCMethod, ex.McpMethod, ex.McpName)
		}
		step := ex.HTTPMethod
		if ex.HTTPMethod == http.MethodPost {
			step = strings.TrimSpace(ex.RPCMethod + " " + ex.ID)
		}
		got[ex.Session] = append(got[ex.Session], step)
		if ex.RPCMethod == "tools/call" {
			want := map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}}
			if diff := cmp.Diff(want, ex.Params); diff != "" {
				t.Errorf("tools/call params (-want +got):\n%s", diff)
			}
		}
	}
	if inits != 2 {
		t.Errorf("%d initialize requests, want 2 (one per worker)", inits)
	}
	// Each session: initialized, calls with ids 1, 2, ..., then DELETE.
	want := map[string][]string{}
	calls := 0
	for session, steps := range got {
		n := len(steps) - 2
		calls += n
		w := []string{"notifications/initialized"}
		for i := 1; i <= n; i++ {
			w = append(w, fmt.Sprintf("tools/call %d", i))
		}
		want[session] = append(w, http.MethodDelete)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("per-session requests (-want +got):\n%s", diff)
	}
	if len(got) != 2 || calls != requests {
		t.Errorf("%d sessions with %d calls, want 2 with %d", len(got), calls, requests)
	}
}

func TestWireStateless(t *testing.T) {
	f := newFakeServer(t, nil)
	const requests = 5
	_, err := bench.Run(t.Context(), bench.Options{
		URL:      f.url,
		Tool:     "echo",
		Args:     []byte(`{"text":"hi"}`),
		Requests: requests,
		Protocol: bench.ProtocolStateless,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []exchange
	for _, ex := range f.exchanges() {
		ex.Accept, ex.ContentType = "", "" // checked in TestWireLegacy
		got = append(got, ex)
	}
	var want []exchange
	for id := 1; id <= requests; id++ {
		want = append(want, exchange{
			HTTPMethod: http.MethodPost,
			RPCMethod:  "tools/call",
			ID:         fmt.Sprint(id),
			Version:    "2026-07-28",
			McpMethod:  "tools/call",
			McpName:    "echo",
			Params: map[string]any{
				"name":      "echo",
				"arguments": map[string]any{"text": "hi"},
				"_meta": map[string]any{
					"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
					"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "mcptower-bench", "version": "0.1.0"},
					"io.modelcontextprotocol/clientCapabilities": map[string]any{},
				},
			},
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestRunResponses(t *testing.T) {
	const requests = 6
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request, id string)
		want    string // in FirstError; "" for success
	}{
		{name: "JSON", respond: jsonEcho},
		{name: "SSE with noise", respond: sseWithNoise},
		{name: "content type with parameters", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "Application/JSON; charset=utf-8")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`, id)
		}},
		{name: "HTTP 500", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, want: "HTTP 500 Internal Server Error: boom"},
		{name: "JSON-RPC error with HTTP 404", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no such method"}}`, id)
		}, want: "HTTP 404 Not Found: JSON-RPC error -32601: no such method"},
		{name: "JSON-RPC error", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"bad","data":{"field":"text"}}}`, id)
		}, want: `JSON-RPC error -32602: bad (data: {"field":"text"})`},
		{name: "isError", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"isError":true,"content":[{"type":"text","text":"no good"}]}}`, id)
		}, want: "tool error: no good"},
		{name: "wrong id", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			jsonEcho(w, r, id+"0")
		}, want: "response is not for request id"},
		{name: "neither result nor error", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":null}`, id)
		}, want: "neither result nor error"},
		{name: "malformed JSON", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"jsonrpc":`)
		}, want: "malformed JSON-RPC message"},
		{name: "stream without response", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n")
			// An incomplete event at the end of the stream is dropped.
			fmt.Fprintf(w, `data: {"jsonrpc":"2.0","id":%s,"result":{}}`, id)
		}, want: "event stream ended without a response to request id"},
		{name: "202 for a call", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.WriteHeader(http.StatusAccepted)
		}, want: "HTTP 202 Accepted without a response"},
		{name: "text/plain", respond: func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "hello")
		}, want: `unexpected Content-Type "text/plain"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t, func(f *fakeServer) { f.respond = tt.respond })
			rep, err := bench.Run(t.Context(), bench.Options{
				URL:         f.url,
				Tool:        "echo",
				Concurrency: 2,
				Requests:    requests,
			})
			if rep.Requests != requests {
				t.Errorf("Requests = %d, want %d", rep.Requests, requests)
			}
			if tt.want == "" {
				if err != nil || rep.Errors != 0 {
					t.Errorf("Run = %d errors, %v; want success", rep.Errors, err)
				}
				return
			}
			if err == nil || rep.Errors != requests {
				t.Errorf("Run = %d errors, %v; want %d errors and an error", rep.Errors, err, requests)
			}
			if !strings.Contains(rep.FirstError, tt.want) {
				t.Errorf("FirstError = %q, want it to contain %q", rep.FirstError, tt.want)
			}
		})
	}
}

func TestRunSetupFailure(t *testing.T) {
	f := newFakeServer(t, func(f *fakeServer) { f.initStatus = http.StatusServiceUnavailable })
	rep, err := bench.Run(t.Context(), bench.Options{URL: f.url, Tool: "echo", Concurrency: 3, Requests: 10})
	want := "set up 3 of 3 sessions failed; first: initialize: HTTP 503 Service Unavailable: no sessions today"
	if err == nil || err.Error() != want {
		t.Errorf("Run error = %v, want %q", err, want)
	}
	if rep.Requests != 0 || rep.Errors != 3 {
		t.Errorf("Requests, Errors = %d, %d, want 0, 3", rep.Requests, rep.Errors)
	}
	for _, ex := range f.exchanges() {
		if ex.RPCMethod != "initialize" {
			t.Errorf("sent %s %s after a failed setup", ex.HTTPMethod, ex.RPCMethod)
		}
	}
}

func TestRunDuration(t *testing.T) {
	f := newFakeServer(t, nil)
	const d = 200 * time.Millisecond
	began := time.Now()
	rep, err := bench.Run(t.Context(), bench.Options{URL: f.url, Tool: "echo", Concurrency: 2, Duration: d})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(began); elapsed > 5*time.Second {
		t.Errorf("Run took %v for a %v run", elapsed, d)
	}
	if rep.Requests == 0 || rep.Duration < d {
		t.Errorf("Requests = %d, Duration = %v; want some requests over at least %v", rep.Requests, rep.Duration, d)
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls atomic.Int64
	f := newFakeServer(t, func(f *fakeServer) {
		f.respond = func(w http.ResponseWriter, r *http.Request, id string) {
			if calls.Add(1) == 20 {
				cancel()
				// Other calls are in flight; this one never gets an answer.
				<-r.Context().Done()
				return
			}
			time.Sleep(time.Millisecond)
			jsonEcho(w, r, id)
		}
	})
	began := time.Now()
	rep, err := bench.Run(ctx, bench.Options{URL: f.url, Tool: "echo", Concurrency: 4, Duration: time.Minute})
	if elapsed := time.Since(began); elapsed > 10*time.Second {
		t.Errorf("Run took %v after cancellation", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want it to wrap context.Canceled", err)
	}
	if rep.Requests < 16 || rep.Requests >= 20 || rep.Errors != 0 {
		t.Errorf("Requests, Errors = %d, %d, want 16-19 requests and no errors (interrupted calls are not failures)", rep.Requests, rep.Errors)
	}
	// Sessions are deleted even though the context is done.
	deletes := 0
	for _, ex := range f.exchanges() {
		if ex.HTTPMethod == http.MethodDelete {
			deletes++
		}
	}
	if deletes != 4 {
		t.Errorf("%d DELETEs, want 4", deletes)
	}
}

func TestRunCancelDuringSetup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// initialize never gets an answer: the run is cancelled meanwhile.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body so the server notices when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		cancel()
		<-r.Context().Done()
	}))
	defer ts.Close()
	rep, err := bench.Run(ctx, bench.Options{URL: ts.URL, Tool: "echo", Concurrency: 2, Requests: 10})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want it to wrap context.Canceled", err)
	}
	if rep.Requests != 0 || rep.Errors != 0 {
		t.Errorf("Requests, Errors = %d, %d, want 0, 0: an interrupted setup is not a server failure", rep.Requests, rep.Errors)
	}
}

func TestRunTimeout(t *testing.T) {
	var calls atomic.Int64
	f := newFakeServer(t, func(f *fakeServer) {
		f.respond = func(w http.ResponseWriter, r *http.Request, id string) {
			if calls.Add(1)%2 == 1 {
				<-r.Context().Done() // hang until the client gives up
				return
			}
			jsonEcho(w, r, id)
		}
	})
	rep, err := bench.Run(t.Context(), bench.Options{
		URL:      f.url,
		Tool:     "echo",
		Requests: 4,
		Timeout:  300 * time.Millisecond,
		Protocol: bench.ProtocolStateless,
	})
	if err == nil {
		t.Fatal("Run succeeded, want timeouts")
	}
	// Calls alternate: hang, answer, hang, answer. A success after the
	// first timeout shows that the worker recovers (on a loaded machine an
	// answer may be late too).
	if rep.Requests != 4 || rep.Errors < 2 || rep.Errors == 4 {
		t.Errorf("Requests, Errors = %d, %d, want 4 and 2 or 3", rep.Requests, rep.Errors)
	}
	if !strings.Contains(rep.FirstError, "timed out after 300ms") {
		t.Errorf("FirstError = %q, want a timeout", rep.FirstError)
	}
}

func TestRunInvalidOptions(t *testing.T) {
	valid := bench.Options{URL: "http://127.0.0.1:1/mcp", Tool: "echo", Requests: 1}
	tests := []struct {
		name   string
		modify func(*bench.Options)
		want   string
	}{
		{"no URL", func(o *bench.Options) { o.URL = "" }, "URL is required"},
		{"bad scheme", func(o *bench.Options) { o.URL = "ftp://x/mcp" }, "scheme must be http or https"},
		{"no tool", func(o *bench.Options) { o.Tool = "" }, "Tool is required"},
		{"args not JSON", func(o *bench.Options) { o.Args = []byte(`{text:1}`) }, "Args must be a JSON object"},
		{"args an array", func(o *bench.Options) { o.Args = []byte(`[1]`) }, "Args must be a JSON object"},
		{"negative concurrency", func(o *bench.Options) { o.Concurrency = -1 }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.modify(&opts)
			rep, err := bench.Run(t.Context(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want it to contain %q", err, tt.want)
			}
			if rep == nil {
				t.Error("Run returned a nil report")
			}
		})
	}
}

func TestReportString(t *testing.T) {
	rep := &bench.Report{
		Requests: 28000, Errors: 1, Duration: 10 * time.Second, RPS: 2800,
		P50: 5123456 * time.Nanosecond, P95: 9 * time.Millisecond, P99: 14 * time.Millisecond, Max: 1200 * time.Millisecond,
		FirstError: "HTTP 500 Internal Server Error: boom",
	}
	want := "requests  28000 in 10s (2800.0 req/s), 1 errors\n" +
		"latency   p50 5.12ms  p95 9ms  p99 14ms  max 1.2s\n" +
		"first error: HTTP 500 Internal Server Error: boom"
	if diff := cmp.Diff(want, rep.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// BenchmarkCall measures calls from one worker against a minimal net/http
// handler. Client and server share the process, so the allocations reported
// are the client's plus net/http's server side (about 20 per request).
func BenchmarkCall(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in [512]byte
		n, _ := io.ReadFull(r.Body, in[:])
		// The request starts {"jsonrpc":"2.0","id":N,
		id, _, _ := bytes.Cut(in[len(`{"jsonrpc":"2.0","id":`):n], []byte(","))
		var out [128]byte
		resp := append(out[:0], `{"jsonrpc":"2.0","id":`...)
		resp = append(resp, id...)
		resp = append(resp, `,"result":{"content":[{"type":"text","text":"hi"}]}}`...)
		w.Header()["Content-Type"] = contentTypeJSON
		_, _ = w.Write(resp)
	}))
	defer ts.Close()
	b.ReportAllocs()
	rep, err := bench.Run(b.Context(), bench.Options{
		URL: ts.URL, Tool: "echo", Args: []byte(`{"text":"hi"}`),
		Requests: b.N, Protocol: bench.ProtocolStateless,
	})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Requests != b.N {
		b.Fatalf("Requests = %d, want %d", rep.Requests, b.N)
	}
}

var contentTypeJSON = []string{"application/json"}
