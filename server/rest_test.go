package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/config"
	"mcptower/internal/errs"
	"mcptower/server"
)

// apiValidator checks requests and responses against the OpenAPI document,
// so every REST test also proves the document describes what is served.
var apiValidator = sync.OnceValues(func() (validator.Validator, error) {
	spec, err := server.OpenAPI("test")
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	v, errList := validator.NewValidator(doc)
	if len(errList) > 0 {
		return nil, errors.Join(errList...)
	}
	return v, nil
})

type restClient struct {
	t    *testing.T
	base string
}

type restResponse struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r restResponse) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request; body is a string (sent as is) or a value (sent as
// JSON); hdr are header name/value pairs ("" deletes). The response is
// checked against the OpenAPI document, and so is the request when it
// succeeded (failing requests are often invalid on purpose).
func (c *restClient) do(method, path string, body any, hdr ...string) restResponse {
	c.t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, c.base+path, bytes.NewReader(data))
		if err != nil {
			c.t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			switch {
			case hdr[i] == "Host":
				req.Host = hdr[i+1]
			case hdr[i+1] == "":
				req.Header.Del(hdr[i])
			default:
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		return req
	}
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := restResponse{status: resp.StatusCode, header: resp.Header}
	if out.body, err = io.ReadAll(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		c.t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c.checkDoc(newReq(), out)
	return out
}

func (c *restClient) checkDoc(req *http.Request, r restResponse) {
	c.t.Helper()
	if r.status == http.StatusNotFound && strings.Contains(string(r.body), "no route") ||
		r.status == http.StatusMethodNotAllowed {
		return // not a documented operation, by design
	}
	v, err := apiValidator()
	if err != nil {
		c.t.Fatalf("OpenAPI validator: %v", err)
	}
	resp := &http.Response{StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)), Request: req}
	var ok bool
	var verrs []*verrors.ValidationError
	if r.status < 300 {
		ok, verrs = v.ValidateHttpRequestResponse(req, resp)
	} else {
		ok, verrs = v.ValidateHttpResponse(req, resp)
	}
	if !ok {
		var problems []string
		for _, e := range verrs {
			problems = append(problems, e.Error())
		}
		c.t.Errorf("%s %s (%d) does not match the OpenAPI document:\n%s\nbody: %s", req.Method, req.URL.Path, r.status, strings.Join(problems, "\n"), r.body)
	}
}

// problem checks that r is a problem with the status and code.
func (r restResponse) problem(t *testing.T, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	p := r.json(t)
	if p["code"] != code || p["status"] != float64(status) || p["type"] != "about:blank" || p["title"] != http.StatusText(status) || p["detail"] == "" {
		t.Fatalf("problem = %v, want status %d code %s", p, status, code)
	}
	return p
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type promptIn struct {
	Prompt string `json:"prompt"`
}

type greeting struct {
	Greeting string `json:"greeting"`
}

type twoFields struct {
	A string `json:"a"`
	B int    `json:"b"`
}

type codeIn struct {
	Code string `json:"code"`
}

// restFixtures are agents for the REST tests: greet (an object with one
// string field), texty (text content blocks), multi (an object with two
// fields), convert 2.0.0 (a second version), fails_with (fails with the
// domain code it is given).
func restFixtures(t testing.TB) []agents.Agent {
	t.Helper()
	var out []agents.Agent
	add := func(a agents.Agent, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	add(agents.Typed(agents.Spec{Name: "greet", Description: "Greets.", Tags: []string{"demo"}}, func(_ context.Context, _ *agents.Call, in promptIn) (greeting, error) {
		return greeting{Greeting: "Hello, " + in.Prompt}, nil
	}))
	add(agents.Func(agents.Spec{Name: "texty", Description: "Answers in text blocks."}, func(_ context.Context, call *agents.Call) (*agents.Result, error) {
		var in promptIn
		_ = json.Unmarshal(call.Args, &in)
		return &agents.Result{Content: []agents.Content{{Type: "text", Text: "one " + in.Prompt}, {Type: "text", Text: "two"}}}, nil
	}))
	add(agents.Typed(agents.Spec{Name: "multi", Description: "Answers with two fields."}, func(_ context.Context, _ *agents.Call, in promptIn) (twoFields, error) {
		return twoFields{A: in.Prompt, B: 2}, nil
	}))
	add(agents.Typed(agents.Spec{Name: "convert", Version: "2.0.0", Description: "Converts lengths, newer."}, convert))
	codes := map[string]errs.Code{}
	for c := errs.Internal; c <= errs.Conflict; c++ {
		codes[c.String()] = c
	}
	add(agents.Typed(agents.Spec{Name: "fails_with", Description: "Fails with the given domain code."}, func(_ context.Context, _ *agents.Call, in codeIn) (greeting, error) {
		return greeting{}, errs.E(codes[in.Code], "failing with %s as asked", in.Code)
	}))
	return out
}

type restEnv struct {
	app    *server.App
	client *restClient
	ts     *httptest.Server
	cfg    *config.Config
}

// newRESTApp is a whole App (memory store, the built-ins, the fixtures)
// served over HTTP, with its config path (and so its registrations file)
// in a temporary directory.
func newRESTApp(t *testing.T, dir string, mutate func(*config.Config)) *restEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := config.Default()
	cfg.Store.URL = "memory:"
	cfg.Path = filepath.Join(dir, "mcptower.yaml")
	cfg.Server.MaxBodyBytes = 64 << 10
	if mutate != nil {
		mutate(cfg)
	}
	app, err := server.NewApp(t.Context(), cfg, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, a := range append(fixtures(t), restFixtures(t)...) {
		if err := app.Registry.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(app.Handler())
	t.Cleanup(ts.Close)
	return &restEnv{app: app, client: &restClient{t: t, base: ts.URL}, ts: ts, cfg: cfg}
}

func TestRESTInvoke(t *testing.T) {
	c := newRESTApp(t, "", nil).client
	r := c.do("POST", "/v1/invoke", map[string]any{"agent": "convert", "version": "1.2.0", "input": map[string]any{"value": 1, "from": "m", "to": "ft"}})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out server.InvokeResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Agent != "convert@1.2.0" || out.SessionID == "" || out.Seq != 1 || string(out.Output) != `{"value":3.281,"unit":"ft"}` || out.DurationMS <= 0 || out.Content == nil {
		t.Fatalf("response = %+v (output %s)", out, out.Output)
	}

	// The same session, the newest version by default, name@version in agent.
	r = c.do("POST", "/v1/invoke", map[string]any{"session_id": out.SessionID, "agent": "convert", "input": map[string]any{"value": 1, "from": "m", "to": "ft"}})
	if m := r.json(t); r.status != 200 || m["agent"] != "convert@2.0.0" || m["session_id"] != out.SessionID || m["seq"] != float64(2) {
		t.Fatalf("second call: %d %s", r.status, r.body)
	}
	r = c.do("POST", "/v1/invoke", map[string]any{"agent": "convert@1.2.0", "input": map[string]any{"value": 0, "from": "m", "to": "m"}})
	if m := r.json(t); r.status != 200 || m["agent"] != "convert@1.2.0" {
		t.Fatalf("name@version: %d %s", r.status, r.body)
	}
	// No input means {}; an agent's own failed answer is 200 with is_error.
	r = c.do("POST", "/v1/invoke", map[string]any{"agent": "context_history", "session_id": out.SessionID})
	if m := r.json(t); r.status != 200 || m["is_error"] == true {
		t.Fatalf("no input: %d %s", r.status, r.body)
	}
}

func TestRESTInvokeCompat(t *testing.T) {
	c := newRESTApp(t, "", nil).client
	for _, tt := range []struct {
		agent, want string
	}{
		{"greet", "Hello, Ada"},        // output with one string field
		{"texty", "one Ada\ntwo"},      // text content blocks
		{"multi", `{"a":"Ada","b":2}`}, // anything else: the output as JSON
		{"greet@1.0.0", "Hello, Ada"},  // name@version works too
	} {
		r := c.do("POST", "/invoke", map[string]any{"session_id": "seed-1", "agent_name": tt.agent, "prompt": "Ada"})
		var out server.CompatInvokeResponse
		if err := json.Unmarshal(r.body, &out); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", tt.agent, r.status, r.body)
		}
		if out.Response != tt.want || out.SessionID != "seed-1" {
			t.Errorf("%s: response %+v, want %q", tt.agent, out, tt.want)
		}
	}
	// The seed's clients may send fields it does not know.
	r := c.do("POST", "/invoke", `{"agent_name":"greet","prompt":"Bo","stream":false}`)
	if m := r.json(t); r.status != 200 || m["response"] != "Hello, Bo" || m["session_id"] == "" {
		t.Fatalf("extra field: %d %s", r.status, r.body)
	}
	c.do("POST", "/invoke", map[string]any{"agent_name": "nope", "prompt": "x"}).problem(t, 404, "not_found")
	c.do("POST", "/invoke", map[string]any{"prompt": "x"}).problem(t, 400, "invalid")
	// echo takes text, not prompt: the agent's schema says which field.
	p := c.do("POST", "/invoke", map[string]any{"agent_name": "echo", "prompt": "x"}).problem(t, 422, "invalid")
	if !strings.Contains(p["detail"].(string), "prompt") {
		t.Errorf("422 detail does not name the field: %v", p)
	}
}

func TestRESTErrorStatuses(t *testing.T) {
	env := newRESTApp(t, "", nil)
	c := env.client
	big := `{"agent":"echo","input":{"text":"` + strings.Repeat("x", 70<<10) + `"}}`
	for _, tt := range []struct {
		name         string
		method, path string
		body         any
		hdr          []string
		status       int
		code         string
		detail       string // a part of the detail
	}{
		{"malformed JSON", "POST", "/v1/invoke", `{"agent":`, nil, 400, "invalid", "not valid JSON"},
		{"not an object", "POST", "/v1/invoke", `[1]`, nil, 400, "invalid", "must be a JSON object"},
		{"wrong field type", "POST", "/v1/invoke", `{"agent":5}`, nil, 400, "invalid", "field agent must be a string"},
		{"unknown field", "POST", "/v1/invoke", `{"agent":"echo","inputs":{}}`, nil, 400, "invalid", `unknown field "inputs"`},
		{"trailing data", "POST", "/v1/invoke", `{"agent":"echo"} {}`, nil, 400, "invalid", "after the JSON object"},
		{"empty body", "POST", "/v1/invoke", ``, nil, 400, "invalid", "empty"},
		{"no agent", "POST", "/v1/invoke", `{"input":{}}`, nil, 400, "invalid", "agent is required"},
		{"version twice", "POST", "/v1/invoke", `{"agent":"convert@1.2.0","version":"2.0.0"}`, nil, 400, "invalid", "version once"},
		{"input not an object", "POST", "/v1/invoke", `{"agent":"echo","input":[1]}`, nil, 400, "invalid", "input must be a JSON object"},
		{"bad limit", "GET", "/v1/history/s1?limit=many", nil, nil, 400, "invalid", "limit"},
		{"limit too big", "GET", "/v1/sessions?limit=5000", nil, nil, 400, "invalid", "up to 1000"},
		{"bad session id", "GET", "/v1/history/a%20b", nil, nil, 400, "invalid", "session id"},
		{"bad tag", "GET", "/v1/sessions?tag=nocolon", nil, nil, 400, "invalid", "key:value"},
		{"bad time", "GET", "/v1/sessions?updated_before=yesterday", nil, nil, 400, "invalid", "RFC 3339"},
		{"delete without version", "DELETE", "/v1/agents/echo", nil, nil, 400, "invalid", "name@version"},
		{"cross-origin write", "POST", "/v1/invoke", `{"agent":"echo","input":{"text":"x"}}`, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403, "forbidden", "cross-origin"},
		{"DNS rebinding", "GET", "/v1/agents", nil, []string{"Host", "evil.example"}, 403, "forbidden", "DNS rebinding"},
		{"unknown agent", "POST", "/v1/invoke", `{"agent":"nope"}`, nil, 404, "not_found", `unknown agent "nope"`},
		{"unknown version", "POST", "/v1/invoke", `{"agent":"convert","version":"9.9.9"}`, nil, 404, "not_found", `no version "9.9.9"`},
		{"unknown session", "GET", "/v1/history/never-used", nil, nil, 404, "not_found", "no recorded context"},
		{"unknown agent name", "GET", "/v1/agents/nope", nil, nil, 404, "not_found", `unknown agent "nope"`},
		{"unknown route", "GET", "/v1/nope", nil, nil, 404, "not_found", "no route"},
		{"delete unknown agent", "DELETE", "/v1/agents/nope@1.0.0", nil, nil, 404, "not_found", "unknown agent"},
		{"wrong method", "PUT", "/v1/invoke", `{}`, nil, 405, "invalid", "use POST"},
		{"wrong method, seed route", "GET", "/invoke", nil, nil, 405, "invalid", "use POST"},
		{"register taken name", "POST", "/v1/agents", `{"name":"echo","kind":"builtin","tool":"echo"}`, nil, 409, "conflict", "echo@1.0.0 is already registered"},
		{"delete a built-in", "DELETE", "/v1/agents/context_history@1.0.0", nil, nil, 409, "conflict", "only agents posted to /v1/agents"},
		{"body too large", "POST", "/v1/invoke", big, nil, 413, "invalid", "larger than 65536 bytes"},
		{"body too large, chunked", "POST", "/v1/invoke", io.MultiReader(strings.NewReader(big)), nil, 413, "invalid", "larger than 65536 bytes"},
		{"not JSON", "POST", "/v1/invoke", `agent=echo`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "invalid", "not JSON"},
		{"no content type", "POST", "/v1/agents", `{}`, []string{"Content-Type", ""}, 415, "invalid", "not JSON"},
		{"input breaks the schema", "POST", "/v1/invoke", `{"agent":"convert","input":{"value":"far","from":"m","to":"ft"}}`, nil, 422, "invalid", "field /value"},
		{"definition rejected by its kind", "POST", "/v1/agents", `{"name":"shout","kind":"builtin","tol":"echo"}`, nil, 422, "invalid", `unknown field "tol"`},
		{"unknown kind", "POST", "/v1/agents", `{"name":"shout","kind":"nope"}`, nil, 422, "invalid", `unknown kind "nope"`},
		{"output breaks the schema", "POST", "/v1/invoke", `{"agent":"liar"}`, nil, 500, "internal", "output schema"},
		{"agent error", "POST", "/v1/invoke", `{"agent":"fail"}`, nil, 500, "internal", "the backend said no"},
		{"timeout", "POST", "/v1/invoke", `{"agent":"slow"}`, nil, 504, "timeout", "did not finish"},
		{"unavailable", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"unavailable"}}`, nil, 503, "unavailable", "as asked"},
		{"rate limited", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"rate_limited"}}`, nil, 429, "rate_limited", "as asked"},
		{"unauthorized", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"unauthorized"}}`, nil, 401, "unauthorized", "as asked"},
		{"forbidden", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"forbidden"}}`, nil, 403, "forbidden", "as asked"},
		{"conflict", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"conflict"}}`, nil, 409, "conflict", "as asked"},
		{"not found from the agent", "POST", "/v1/invoke", `{"agent":"fails_with","input":{"code":"not_found"}}`, nil, 404, "not_found", "as asked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if rd, ok := tt.body.(io.Reader); ok { // unknown length: sent chunked
				postChunked(t, env.ts.URL+tt.path, rd).problem(t, tt.status, tt.code)
				return
			}
			r := c.do(tt.method, tt.path, tt.body, tt.hdr...)
			p := r.problem(t, tt.status, tt.code)
			if !strings.Contains(p["detail"].(string), tt.detail) {
				t.Errorf("detail %q does not contain %q", p["detail"], tt.detail)
			}
			if tt.name == "input breaks the schema" && p["field"] != "/value" {
				t.Errorf("422 problem field = %v, want /value", p["field"])
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func postChunked(t *testing.T, url string, body io.Reader) restResponse {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return restResponse{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestRESTStoreUnavailable: without a store, and with a store that fails
// after the agent ran (the problem then carries the result).
func TestRESTStoreUnavailable(t *testing.T) {
	none := newRESTApp(t, "", func(c *config.Config) { c.Store.URL = server.StoreNone }).client
	none.do("GET", "/v1/history/s1", nil).problem(t, 503, "unavailable")
	none.do("GET", "/v1/sessions", nil).problem(t, 503, "unavailable")

	env := newRESTApp(t, "", nil)
	env.app.Store.Close()
	p := env.client.do("POST", "/v1/invoke", map[string]any{"agent": "echo", "session_id": "s1", "input": map[string]any{"text": "ran"}}).problem(t, 503, "unavailable")
	res, _ := p["result"].(map[string]any)
	if res == nil || fmt.Sprint(res["output"]) != "map[text:ran]" || p["session_id"] != "s1" || p["agent"] != "echo@1.0.0" {
		t.Errorf("503 problem lacks the result of the call that ran: %v", p)
	}
	env.client.do("GET", "/v1/history/s1", nil).problem(t, 503, "unavailable")
}

func TestRESTHistoryAndSessions(t *testing.T) {
	env := newRESTApp(t, "", nil)
	c := env.client
	for i := range 5 {
		r := c.do("POST", "/v1/invoke", map[string]any{"agent": "context_append", "session_id": "h1", "input": map[string]any{"content": fmt.Sprint("note ", i), "tags": map[string]string{"team": "a"}}})
		if r.status != 200 {
			t.Fatalf("append: %d %s", r.status, r.body)
		}
	}
	if _, err := env.app.Store.Append(t.Context(), "h2", contextstore.Entry{Role: "user", Content: json.RawMessage(`"x"`), Tags: map[string]string{"team": "b", "env": "prod"}}); err != nil {
		t.Fatal(err)
	}

	// Each call recorded a note and the call itself: 10 entries. Page back.
	var seqs [][]float64
	var cursors []any
	for before := ""; ; {
		r := c.do("GET", "/v1/history/h1?limit=4"+before, nil)
		m := r.json(t)
		if r.status != 200 || m["session_id"] != "h1" {
			t.Fatalf("history: %d %s", r.status, r.body)
		}
		var page []float64
		for _, e := range m["entries"].([]any) {
			page = append(page, e.(map[string]any)["seq"].(float64))
		}
		seqs = append(seqs, page)
		cursors = append(cursors, m["next_before"])
		if m["next_before"] == nil {
			break
		}
		before = fmt.Sprintf("&before=%v", m["next_before"])
	}
	if diff := cmp.Diff([][]float64{{7, 8, 9, 10}, {3, 4, 5, 6}, {1, 2}}, seqs); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{float64(7), float64(3), nil}, cursors); diff != "" {
		t.Errorf("cursors (-want +got):\n%s", diff)
	}
	if r := c.do("GET", "/v1/history/h1?before=1", nil); r.status != 200 || len(r.json(t)["entries"].([]any)) != 0 {
		t.Errorf("page before the first entry: %d %s", r.status, r.body)
	}

	ids := func(query string) []string {
		t.Helper()
		r := c.do("GET", "/v1/sessions"+query, nil)
		if r.status != 200 {
			t.Fatalf("sessions%s: %d %s", query, r.status, r.body)
		}
		var out server.SessionsResponse
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range out.Sessions {
			got = append(got, s.ID)
		}
		return got
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"h2", "h1"}},
		{"?tag=team:a", []string{"h1"}},
		{"?tag=team:b&tag=env:prod", []string{"h2"}},
		{"?tag=team:a&tag=env:prod", nil},
		{"?limit=1", []string{"h2"}},
	} {
		if diff := cmp.Diff(tt.want, ids(tt.query)); diff != "" {
			t.Errorf("sessions%s (-want +got):\n%s", tt.query, diff)
		}
	}
	r := c.do("GET", "/v1/sessions?limit=1", nil).json(t)
	next, _ := r["next_updated_before"].(string)
	if next == "" {
		t.Fatalf("a full page has no cursor: %v", r)
	}
	if diff := cmp.Diff([]string{"h1"}, ids("?limit=1&updated_before="+next)); diff != "" {
		t.Errorf("second page (-want +got):\n%s", diff)
	}
}

func TestRESTAgents(t *testing.T) {
	c := newRESTApp(t, "", nil).client
	names := func(query string) []string {
		t.Helper()
		r := c.do("GET", "/v1/agents"+query, nil)
		var out server.AgentsResponse
		if err := json.Unmarshal(r.body, &out); err != nil || r.status != 200 {
			t.Fatalf("agents%s: %d %s", query, r.status, r.body)
		}
		var got []string
		for _, a := range out.Agents {
			got = append(got, a.Name+"@"+a.Version)
		}
		return got
	}
	all := names("")
	if len(all) < 10 || !strings.Contains(strings.Join(all, " "), "convert@2.0.0") || strings.Contains(strings.Join(all, " "), "convert@1.2.0") {
		t.Errorf("GET /v1/agents = %v, want the newest version of every agent", all)
	}
	if got := names("?q=convert+lengths"); len(got) == 0 || got[0] != "convert@2.0.0" {
		t.Errorf("search = %v", got)
	}
	if diff := cmp.Diff([]string{"greet@1.0.0"}, names("?tag=demo")); diff != "" {
		t.Errorf("by tag (-want +got):\n%s", diff)
	}
	if got := names("?limit=2"); len(got) != 2 {
		t.Errorf("limit=2 gave %v", got)
	}

	r := c.do("GET", "/v1/agents/convert", nil)
	var out server.AgentVersionsResponse
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(out.Versions) != 2 || out.Versions[0].Version != "2.0.0" || out.Versions[1].Version != "1.2.0" ||
		len(out.Versions[0].InputSchema) == 0 || len(out.Versions[0].OutputSchema) == 0 || out.Versions[0].Runtime {
		t.Errorf("GET /v1/agents/convert = %+v", out)
	}
	r = c.do("GET", "/v1/agents/convert@1.2.0", nil)
	if m := r.json(t); r.status != 200 || len(m["versions"].([]any)) != 1 || m["versions"].([]any)[0].(map[string]any)["version"] != "1.2.0" {
		t.Errorf("GET /v1/agents/convert@1.2.0: %d %s", r.status, r.body)
	}
	c.do("GET", "/v1/agents/convert@9.9.9", nil).problem(t, 404, "not_found")
}

// TestRESTRegistration: POST registers an agent of a configured kind,
// validated like config, visible to MCP clients (list_changed) and kept in
// the registrations file; DELETE removes it.
func TestRESTRegistration(t *testing.T) {
	dir := t.TempDir()
	env := newRESTApp(t, dir, nil)
	c := env.client
	file := filepath.Join(dir, "mcptower.registrations.json")
	if env.app.RegistrationsFile() != file {
		t.Fatalf("registrations file %q, want %q", env.app.RegistrationsFile(), file)
	}

	changed := make(chan struct{}, 10)
	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	ct, st := mcp.NewInMemoryTransports()
	if _, err := env.app.Server.Connect(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	cs, err := client.Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	waitChanged := func(why string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no notifications/tools/list_changed after %s", why)
		}
	}

	def := `{"name":"shout","kind":"builtin","version":"2.0.0","description":"Echoes, loudly.","tags":["demo"],"timeout":"5s","tool":"echo"}`
	r := c.do("POST", "/v1/agents", def)
	if r.status != 201 || r.header.Get("Location") != "/v1/agents/shout" {
		t.Fatalf("register: %d %v %s", r.status, r.header, r.body)
	}
	var reg server.AgentsResponse
	if err := json.Unmarshal(r.body, &reg); err != nil || len(reg.Agents) != 1 || reg.Agents[0].Name != "shout" || reg.Agents[0].Version != "2.0.0" || !reg.Agents[0].Runtime {
		t.Fatalf("register answered %s", r.body)
	}
	waitChanged("POST /v1/agents")
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range tools.Tools {
		found = found || tool.Name == "shout" && tool.Description == "Echoes, loudly."
	}
	if !found {
		t.Fatal("tools/list lacks the registered agent")
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "shout", Arguments: map[string]any{"text": "hey"}})
	if err != nil || res.IsError {
		t.Fatalf("MCP call of the registered agent: %v %v", err, res)
	}
	if m := c.do("GET", "/v1/agents/shout", nil).json(t); m["versions"].([]any)[0].(map[string]any)["runtime"] != true {
		t.Errorf("GET /v1/agents/shout does not say runtime: %v", m)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"tool": "echo"`) || !strings.Contains(string(data), `"timeout": "5s"`) {
		t.Errorf("registrations file:\n%s", data)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("registrations file mode %v, want 0600", fi.Mode().Perm())
	}
	c.do("POST", "/v1/agents", def).problem(t, 409, "conflict")

	r = c.do("DELETE", "/v1/agents/shout@2.0.0", nil)
	if diff := cmp.Diff(map[string]any{"removed": []any{"shout@2.0.0"}}, r.json(t)); r.status != 200 || diff != "" {
		t.Fatalf("delete: %d (-want +got):\n%s", r.status, diff)
	}
	waitChanged("DELETE")
	c.do("DELETE", "/v1/agents/shout@2.0.0", nil).problem(t, 404, "not_found")
	c.do("POST", "/v1/invoke", map[string]any{"agent": "shout"}).problem(t, 404, "not_found")
	if data, _ := os.ReadFile(file); strings.Contains(string(data), "shout") {
		t.Errorf("the file still has the deleted agent:\n%s", data)
	}

	// A Server without a Registrar does not register.
	bare := newTestEnv(t, nil)
	ts := httptest.NewServer(bare.srv.Handler())
	defer ts.Close()
	bc := &restClient{t: t, base: ts.URL}
	bc.do("POST", "/v1/agents", def).problem(t, 403, "forbidden")
	bc.do("DELETE", "/v1/agents/echo@1.0.0", nil).problem(t, 403, "forbidden")
}

// TestRegistrationRestart: what was registered is registered again by the
// next App over the same config path; the config wins over it.
func TestRegistrationRestart(t *testing.T) {
	dir := t.TempDir()
	env := newRESTApp(t, dir, nil)
	for _, def := range []string{
		`{"name":"shout","kind":"builtin","version":"2.0.0","tool":"echo"}`,
		`{"name":"whisper","kind":"builtin","tool":"echo","metadata":{"tone":"low"}}`,
	} {
		if r := env.client.do("POST", "/v1/agents", def); r.status != 201 {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
	}
	env.app.Close()

	env = newRESTApp(t, dir, nil)
	for _, ref := range []string{"shout@2.0.0", "whisper@1.0.0"} {
		if _, err := env.app.Registry.Resolve(ref); err != nil || !env.app.Registered(ref) {
			t.Errorf("after a restart, %s: %v (registered at run time: %v)", ref, err, env.app.Registered(ref))
		}
	}
	if a, _ := env.app.Registry.Resolve("whisper"); a.Spec().Metadata["tone"] != "low" {
		t.Errorf("metadata lost: %+v", a.Spec())
	}

	// A reload that defines shout@2.0.0 in the config takes it over.
	next := *env.cfg
	next.Agents = []config.Agent{{Definition: agents.Definition{Name: "shout", Kind: "builtin", Version: "2.0.0", Description: "From the config.", Options: json.RawMessage(`{"tool":"echo"}`)}}}
	if err := env.app.Reload(t.Context(), &next); err != nil {
		t.Fatal(err)
	}
	if a, _ := env.app.Registry.Resolve("shout@2.0.0"); a.Spec().Description != "From the config." || env.app.Registered("shout@2.0.0") {
		t.Errorf("after the reload shout is %+v, runtime %v", a.Spec(), env.app.Registered("shout@2.0.0"))
	}
	env.client.do("DELETE", "/v1/agents/shout@2.0.0", nil).problem(t, 409, "conflict")
	data, _ := os.ReadFile(env.app.RegistrationsFile())
	if strings.Contains(string(data), "shout") || !strings.Contains(string(data), "whisper") {
		t.Errorf("registrations file after the reload:\n%s", data)
	}
	env.app.Close()

	// So does a config that defines it at start.
	env = newRESTApp(t, dir, func(c *config.Config) {
		c.Agents = []config.Agent{{Definition: agents.Definition{Name: "whisper", Kind: "builtin", Options: json.RawMessage(`{"tool":"echo"}`)}}}
	})
	if env.app.Registered("whisper@1.0.0") {
		t.Error("a runtime registration shadows a config agent")
	}
	env.app.Close()

	// A broken file stops the start, naming the file.
	file := filepath.Join(dir, "mcptower.registrations.json")
	if err := os.WriteFile(file, []byte(`{"agents":[{"name":"x","kind":"nope"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := *env.cfg
	cfg.Agents = nil
	_, err := server.NewApp(t.Context(), &cfg, quiet, "test")
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), `unknown kind "nope"`) {
		t.Errorf("NewApp with a broken registrations file: %v", err)
	}
	if err := os.WriteFile(file, []byte(`{"agents":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.NewApp(t.Context(), &cfg, quiet, "test"); err == nil || !strings.Contains(err.Error(), "fix or delete") {
		t.Errorf("NewApp with a truncated registrations file: %v", err)
	}
}

func TestRegistrationPaths(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	for _, tt := range []struct{ config, want string }{
		{"/etc/mcptower/mcptower.yaml", "/etc/mcptower/mcptower.registrations.json"},
		{"/srv/prod.yml", "/srv/prod.registrations.json"},
		{"", "/data/mcptower/registrations.json"},
	} {
		got, err := server.RegistrationsPath(tt.config)
		if err != nil || got != tt.want {
			t.Errorf("RegistrationsPath(%q) = %q, %v; want %q", tt.config, got, err, tt.want)
		}
	}
}

// TestRegistrationDefinitionLikeConfig: a JSON definition decodes to the
// same agents.Definition as the equivalent config entry, and the kind
// rejects a bad one with the same message.
func TestRegistrationDefinitionLikeConfig(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	yaml := "agents:\n  - name: shout\n    kind: builtin\n    version: 2.0.0\n    title: Shout\n    description: Loud.\n    tags: [a, b]\n    metadata: {k: v}\n    timeout: 10s\n    tool: echo\n"
	cfg, err := config.Parse("x.yaml", []byte(yaml), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var ad server.AgentDefinition
	body := `{"name":"shout","kind":"builtin","version":"2.0.0","title":"Shout","description":"Loud.","tags":["a","b"],"metadata":{"k":"v"},"timeout":"10s","tool":"echo"}`
	if err := json.Unmarshal([]byte(body), &ad); err != nil {
		t.Fatal(err)
	}
	def, err := ad.Definition()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg.Agents[0].Definition, *def); diff != "" {
		t.Errorf("JSON and YAML definitions differ (-yaml +json):\n%s", diff)
	}
	// It encodes back to the same JSON.
	out, err := json.Marshal(ad)
	if err != nil || string(out) != body {
		t.Errorf("round trip: %s, %v\nwant %s", out, err, body)
	}

	// The same typo, through config validation and through REST.
	bad := "agents:\n  - name: shout\n    kind: builtin\n    tol: echo\n"
	cfg, err = config.Parse("x.yaml", []byte(bad), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfgErr := cfg.Validate(t.Context())
	p := newRESTApp(t, "", nil).client.do("POST", "/v1/agents", `{"name":"shout","kind":"builtin","tol":"echo"}`).problem(t, 422, "invalid")
	if cfgErr == nil || !strings.HasSuffix(cfgErr.Error(), p["detail"].(string)) {
		t.Errorf("config says %v; REST says %q", cfgErr, p["detail"])
	}

	for _, tt := range []struct{ body, want string }{
		{`{"name":"a","name":"b"}`, `key "name" is given twice`},
		{`{"name":5}`, "field name must be a string"},
		{`{"tags":"x"}`, "field tags must be a list of strings"},
		{`{"metadata":{"k":1}}`, "field metadata must be an object with string values"},
		{`{"timeout":10}`, "add a unit"},
		{`{"timeout":"soon"}`, `"soon" is not a duration`},
		{`{"timeout":"-1s"}`, "is negative"},
		{`[]`, "must be a JSON object"},
	} {
		var ad server.AgentDefinition
		err := json.Unmarshal([]byte(tt.body), &ad)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: error %v, want %q (code invalid)", tt.body, err, tt.want)
		}
	}
	var ad0 server.AgentDefinition
	if err := json.Unmarshal([]byte(`{"name":"a","kind":"builtin","timeout":0,"title":null,"x":null}`), &ad0); err != nil || ad0.Timeout != "0" || string(ad0.Options["x"]) != "null" {
		t.Errorf("zero timeout and nulls: %+v, %v", ad0, err)
	}
}

// BenchmarkRESTInvoke measures POST /v1/invoke of echo through the whole
// handler (middleware included), without the network.
func BenchmarkRESTInvoke(b *testing.B) {
	env := newTestEnv(b, nil)
	h := env.srv.Handler()
	body := []byte(`{"agent":"echo","session_id":"bench","input":{"text":"hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/invoke", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
