package httpkind_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"mcptower/agents"
	"mcptower/agents/httpkind"
	"mcptower/internal/errs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seen is what the test endpoint received.
type seen struct {
	Method, Path, Query, Body, ContentType, Auth, Key string
}

// endpoint answers per path and records each request.
func endpoint(t *testing.T) (*httptest.Server, chan seen) {
	t.Helper()
	reqs := make(chan seen, 10)
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")}
	}
	mux.HandleFunc("/weather", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"city":"Oslo","temp":-3.5,"tags":["cold","dark"]}}`)
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		io.WriteString(w, "plain answer")
	})
	mux.HandleFunc("/string", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		io.WriteString(w, `"a JSON string"`)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Error(w, `{"error":"no such city",   "hint": "check spelling"}`, http.StatusNotFound)
	})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Error(w, "try later", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Retry-After", "7")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		io.WriteString(w, strings.Repeat("x", 2000))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, reqs
}

func build(t *testing.T, def agents.Definition) (*agents.Engine, agents.Agent) {
	t.Helper()
	def.Kind = httpkind.Kind
	built, err := agents.Build(context.Background(), &def)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	a := built[0]
	t.Cleanup(func() { a.(io.Closer).Close() })
	r := agents.NewRegistry()
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	return &agents.Engine{Registry: r, Logger: slog.New(slog.DiscardHandler)}, a
}

func opts(t *testing.T, v map[string]any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHTTPKind(t *testing.T) {
	srv, reqs := endpoint(t)
	t.Setenv("HTTPKIND_TOKEN", "tok")
	tests := []struct {
		name    string
		opts    map[string]any
		timeout time.Duration
		args    string
		want    seen
		output  string // structured output, if any
		text    string // text content
		isError bool
		code    errs.Code // when Invoke fails
		errText string
	}{
		{
			name: "GET with a URL template and a pointer into the response",
			opts: map[string]any{"method": "get", "url": srv.URL + "/weather?city={{.city | urlquery}}&n={{.n}}", "response_pointer": "/data",
				"headers": map[string]string{"X-Api-Key": "k1"}, "bearer_token_env": "HTTPKIND_TOKEN",
				"output_schema": map[string]any{"type": "object", "properties": map[string]any{"temp": map[string]any{"type": "number"}}}},
			args:   `{"city":"São Paulo","n":12345678901234567890}`,
			want:   seen{Method: "GET", Path: "/weather", Query: "city=S%C3%A3o+Paulo&n=12345678901234567890", Auth: "Bearer tok", Key: "k1"},
			output: `{"city":"Oslo","tags":["cold","dark"],"temp":-3.5}`,
		},
		{
			name: "POST sends the input as JSON by default",
			opts: map[string]any{"url": srv.URL + "/text"},
			args: `{"q":"hi"}`,
			want: seen{Method: "POST", Path: "/text", Body: `{"q":"hi"}`, ContentType: "application/json"},
			text: "plain answer",
		},
		{
			name: "body template",
			opts: map[string]any{"method": "PUT", "url": srv.URL + "/string", "body": `{"query":{{json .q}},"limit":{{.limit}}}`},
			args: `{"q":"a \"quoted\" word","limit":5}`,
			want: seen{Method: "PUT", Path: "/string", Body: `{"query":"a \"quoted\" word","limit":5}`, ContentType: "application/json"},
			text: "a JSON string",
		},
		{
			name: "pointer to an array element",
			opts: map[string]any{"method": "GET", "url": srv.URL + "/weather", "response_pointer": "/data/tags/1"},
			args: `{}`,
			want: seen{Method: "GET", Path: "/weather"},
			text: "dark",
		},
		{
			name:    "non-2xx is a readable tool error",
			opts:    map[string]any{"url": srv.URL + "/missing?key=SECRET"},
			args:    `{}`,
			want:    seen{Method: "POST", Path: "/missing", Query: "key=SECRET", Body: `{}`, ContentType: "application/json"},
			isError: true,
			text:    `POST ` + srv.URL + `/missing: HTTP 404 Not Found: {"error":"no such city", "hint": "check spelling"}`,
		},
		{
			name: "503 is Unavailable", opts: map[string]any{"method": "GET", "url": srv.URL + "/busy"}, args: `{}`,
			want: seen{Method: "GET", Path: "/busy"}, code: errs.Unavailable, errText: "HTTP 503 Service Unavailable: try later",
		},
		{
			name: "429 is RateLimited", opts: map[string]any{"method": "GET", "url": srv.URL + "/limited"}, args: `{}`,
			want: seen{Method: "GET", Path: "/limited"}, code: errs.RateLimited, errText: "slow down (Retry-After: 7)",
		},
		{
			name: "the definition's timeout bounds the request", opts: map[string]any{"method": "GET", "url": srv.URL + "/slow"}, args: `{}`,
			timeout: 100 * time.Millisecond,
			want:    seen{Method: "GET", Path: "/slow"}, code: errs.Timeout, errText: "did not finish within 100ms",
		},
		{
			name: "response size limit", opts: map[string]any{"method": "GET", "url": srv.URL + "/big", "max_response_bytes": 1000}, args: `{}`,
			want: seen{Method: "GET", Path: "/big"}, code: errs.Unavailable, errText: "larger than 1000 bytes",
		},
		{
			name: "missing pointer target", opts: map[string]any{"method": "GET", "url": srv.URL + "/weather", "response_pointer": "/nope"}, args: `{}`,
			want: seen{Method: "GET", Path: "/weather"}, code: errs.Internal, errText: `the response has no member "nope"`,
		},
		{
			name: "output schema needs JSON", opts: map[string]any{"method": "GET", "url": srv.URL + "/text", "output_schema": map[string]any{"type": "object"}}, args: `{}`,
			want: seen{Method: "GET", Path: "/text"}, code: errs.Internal, errText: "response is not JSON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := build(t, agents.Definition{Name: "ep", Options: opts(t, tt.opts), Timeout: tt.timeout})
			resp, err := e.Invoke(t.Context(), agents.Request{Agent: "ep", Args: json.RawMessage(tt.args)})
			select {
			case got := <-reqs:
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			default:
				t.Errorf("no request reached the endpoint")
			}
			if tt.errText != "" {
				if err == nil || errs.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v (code %v), want code %v containing %q", err, errs.CodeOf(err), tt.code, tt.errText)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the query string leaked into the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res := resp.Result
			var text string
			for _, c := range res.Content {
				text += c.Text
			}
			if string(res.Output) != tt.output || text != tt.text || res.IsError != tt.isError {
				t.Errorf("result: output %s, text %q, is_error %v; want %s, %q, %v", res.Output, text, res.IsError, tt.output, tt.text, tt.isError)
			}
		})
	}
}

func TestHTTPKindSpecAndOptions(t *testing.T) {
	_, a := build(t, agents.Definition{Name: "ep", Description: "Weather.", Options: opts(t, map[string]any{
		"method": "GET", "url": "https://example.com/x?key=SECRET",
		"input_schema": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
	})})
	s := a.Spec()
	if s.Kind != "http" || s.Description != "Weather." || !s.Hints.ReadOnly || !s.Hints.Idempotent || !s.Input.HasProperty("city") || s.Output != nil {
		t.Errorf("spec = %+v", s)
	}
	_, a = build(t, agents.Definition{Name: "ep2", Options: opts(t, map[string]any{"url": "https://example.com/x?key=SECRET"})})
	if d := a.Spec().Description; d != "POST https://example.com/x" || a.Spec().Hints.ReadOnly {
		t.Errorf("default description %q (must not show the query), hints %+v", d, a.Spec().Hints)
	}

	bad := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{}, "url is required"},
		{map[string]any{"url": "{{"}, "url template"},
		{map[string]any{"url": "http://h", "body": "{{.x"}, "body template"},
		{map[string]any{"url": "http://h", "response_pointer": "data"}, "starts with '/'"},
		{map[string]any{"url": "http://h", "input_schema": map[string]any{"type": "string"}}, "must describe an object"},
		{map[string]any{"url": "http://h", "output_schema": map[string]any{"type": "array"}}, "must describe an object"},
		{map[string]any{"url": "http://h", "nope": 1}, `unknown field "nope"`},
	}
	for _, b := range bad {
		_, err := agents.Build(context.Background(), &agents.Definition{Name: "ep", Kind: "http", Options: opts(t, b.opts)})
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want Invalid containing %q", b.opts, err, b.want)
		}
	}
}

func TestHTTPKindBadCalls(t *testing.T) {
	e, _ := build(t, agents.Definition{Name: "ep", Options: opts(t, map[string]any{"method": "GET", "url": "{{.base}}/x"})})
	_, err := e.Invoke(t.Context(), agents.Request{Agent: "ep", Args: json.RawMessage(`{"base":"file:///etc"}`)})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("non-http URL: %v", err)
	}
	_, err = e.Invoke(t.Context(), agents.Request{Agent: "ep", Args: json.RawMessage(`{"base":"http://127.0.0.1:1"}`)})
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable endpoint: %v", err)
	}
	e, _ = build(t, agents.Definition{Name: "ep3", Options: opts(t, map[string]any{"url": "http://h", "bearer_token_env": "HTTPKIND_UNSET_VAR"})})
	_, err = e.Invoke(t.Context(), agents.Request{Agent: "ep3"})
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "HTTPKIND_UNSET_VAR is not set") {
		t.Errorf("unset token: %v", err)
	}
}

func FuzzTemplates(f *testing.F) {
	f.Add("{{.a}}", `{"a":1}`)
	f.Add("{{json .a}}", `{"a":[1,"x"]}`)
	f.Add("{{range .a}}{{.}}{{end}}", `{"a":"s"}`)
	f.Fuzz(func(t *testing.T, tmpl, args string) {
		def := &agents.Definition{Name: "fz", Kind: "http", Options: opts(t, map[string]any{"url": "http://127.0.0.1:1/x", "body": tmpl})}
		built, err := agents.Build(context.Background(), def)
		if err != nil {
			return
		}
		a := built[0]
		defer a.(io.Closer).Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // never send anything: only rendering is fuzzed
		_, _ = a.Invoke(ctx, &agents.Call{Args: json.RawMessage(args)})
	})
}
