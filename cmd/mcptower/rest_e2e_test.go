package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rest calls the REST API of a running server.
type rest struct {
	t    *testing.T
	base string // http://host:port
}

func restOf(t *testing.T, p *serverProc) *rest {
	return &rest{t: t, base: strings.TrimSuffix(p.url, "/mcp")}
}

type restReply struct {
	status int
	header http.Header
	body   []byte
}

func (r restReply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

// problem checks an RFC 9457 problem with the status and domain code.
func (r restReply) problem(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s, want %d problem: %s", r.status, r.header.Get("Content-Type"), status, r.body)
	}
	if m := r.obj(t); m["code"] != code || m["status"] != float64(status) || m["detail"] == "" {
		t.Fatalf("problem %v, want code %s", m, code)
	}
}

// do sends body (a string as is, anything else as JSON) with Content-Type
// application/json unless hdr overrides it.
func (c *rest) do(method, path string, body any, hdr ...string) restReply {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return restReply{status: resp.StatusCode, header: resp.Header, body: data}
}

func toolNames(t *testing.T, ctx context.Context, cs *mcp.ClientSession) map[string]bool {
	t.Helper()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, tool := range lt.Tools {
		m[tool.Name] = true
	}
	return m
}

// TestE2ERESTRegistrationSurvivesRestart: an agent registered over REST
// reaches a connected MCP client (list_changed), is kept in the
// registrations file of the user's data dir (no config file), is there
// again after SIGTERM and a new start, and is gone for good once deleted.
func TestE2ERESTRegistrationSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	env := testEnvVars(t)
	var dataHome string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "XDG_DATA_HOME="); ok {
			dataHome = v
		}
	}
	file := filepath.Join(dataHome, "mcptower", "registrations.json")

	p := startHTTP(t, env)
	c := restOf(t, p)
	changed := make(chan struct{}, 10)
	cs := connectHTTP(t, ctx, p.url, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	if toolNames(t, ctx, cs)["shout"] {
		t.Fatal("shout exists before it is registered")
	}
	r := c.do("POST", "/v1/agents", `{"name":"shout","kind":"builtin","version":"2.0.0","description":"Echoes, loudly.","tool":"echo"}`)
	if r.status != 201 || r.header.Get("Location") != "/v1/agents/shout" {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no notifications/tools/list_changed after POST /v1/agents\n%s", p.stderr.String())
	}
	if !toolNames(t, ctx, cs)["shout"] {
		t.Fatal("tools/list lacks the registered agent")
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shout", Arguments: map[string]any{"text": "over MCP"}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call shout: %v %v", err, res)
	}
	r = c.do("POST", "/v1/invoke", map[string]any{"agent": "shout", "session_id": "e2e-rest", "input": map[string]any{"text": "over REST"}})
	if m := r.obj(t); r.status != 200 || m["agent"] != "shout@2.0.0" || m["output"].(map[string]any)["text"] != "over REST" {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	if data, err := os.ReadFile(file); err != nil || !strings.Contains(string(data), `"name": "shout"`) {
		t.Fatalf("registrations file %s: %v\n%s", file, err, data)
	}
	cs.Close()
	p.stop(t)

	p = startHTTP(t, env)
	c = restOf(t, p)
	r = c.do("GET", "/v1/agents/shout", nil)
	if m := r.obj(t); r.status != 200 || m["versions"].([]any)[0].(map[string]any)["runtime"] != true {
		t.Fatalf("after a restart GET /v1/agents/shout: %d %s\n%s", r.status, r.body, p.stderr.String())
	}
	cs = connectHTTP(t, ctx, p.url, nil)
	if !toolNames(t, ctx, cs)["shout"] {
		t.Fatal("after a restart tools/list lacks the registered agent")
	}
	if r := c.do("GET", "/v1/history/e2e-rest", nil); r.status != 200 || !strings.Contains(string(r.body), "over REST") {
		t.Errorf("history after a restart: %d %s", r.status, r.body)
	}
	r = c.do("DELETE", "/v1/agents/shout@2.0.0", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"shout@2.0.0"`) {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	cs.Close()
	p.stop(t)

	p = startHTTP(t, env)
	restOf(t, p).do("GET", "/v1/agents/shout", nil).problem(t, 404, "not_found")
	p.stop(t)
}

// TestE2ERESTRoutes exercises every route and the error statuses against
// the binary, including the seed's POST /invoke through an http agent
// registered at run time.
func TestE2ERESTRoutes(t *testing.T) {
	// The endpoint behind the http agents: /answer greets, /slow is too
	// slow, /bad breaks the output schema, /busy is rate limited.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Prompt string `json:"prompt"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		switch r.URL.Path {
		case "/answer":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"answer": "Hello, " + in.Prompt})
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/bad":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"answer": 42}`)
		case "/busy":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}))
	defer upstream.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcptower.yaml")
	if err := os.WriteFile(cfgPath, []byte("server:\n  max_body_bytes: 8KiB\nstore:\n  url: \"memory:\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startHTTP(t, testEnvVars(t), "--config", cfgPath)
	c := restOf(t, p)

	promptAgent := func(name, path, timeout string) map[string]any {
		return map[string]any{
			"name": name, "kind": "http", "url": upstream.URL + path, "timeout": timeout,
			"description":   "Answers a prompt.",
			"input_schema":  map[string]any{"type": "object", "properties": map[string]any{"prompt": map[string]any{"type": "string"}}, "required": []string{"prompt"}},
			"output_schema": map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}, "required": []string{"answer"}},
		}
	}
	for name, path := range map[string]string{"seedbot": "/answer", "sleepy": "/slow", "broken": "/bad", "busy": "/busy"} {
		if r := c.do("POST", "/v1/agents", promptAgent(name, path, "300ms")); r.status != 201 {
			t.Fatalf("register %s: %d %s", name, r.status, r.body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mcptower.registrations.json")); err != nil {
		t.Errorf("no registrations file next to the config: %v", err)
	}

	// The seed's round trip.
	r := c.do("POST", "/invoke", map[string]any{"session_id": "seed-e2e", "agent_name": "seedbot", "prompt": "Ada"})
	if m := r.obj(t); r.status != 200 || m["response"] != "Hello, Ada" || m["session_id"] != "seed-e2e" {
		t.Fatalf("POST /invoke: %d %s", r.status, r.body)
	}
	r = c.do("POST", "/v1/invoke", map[string]any{"agent": "seedbot", "version": "1.0.0", "session_id": "seed-e2e", "input": map[string]any{"prompt": "Bo"}})
	if m := r.obj(t); r.status != 200 || m["output"].(map[string]any)["answer"] != "Hello, Bo" || m["seq"] != float64(2) {
		t.Fatalf("POST /v1/invoke: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v1/history/seed-e2e?limit=1", nil)
	if m := r.obj(t); r.status != 200 || len(m["entries"].([]any)) != 1 || m["next_before"] != float64(2) {
		t.Fatalf("history: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/v1/invoke", map[string]any{"agent": "context_append", "session_id": "tagged", "input": map[string]any{"content": "x", "tags": map[string]string{"team": "e2e"}}}); r.status != 200 {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v1/sessions?tag=team:e2e", nil)
	if m := r.obj(t); r.status != 200 || len(m["sessions"].([]any)) != 1 {
		t.Fatalf("sessions: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v1/agents?q=prompt", nil)
	if m := r.obj(t); r.status != 200 || len(m["agents"].([]any)) != 4 {
		t.Fatalf("agents search: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v1/openapi.json", nil)
	if m := r.obj(t); r.status != 200 || m["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %d %.200s", r.status, r.body)
	}

	for _, tt := range []struct {
		name         string
		method, path string
		body         any
		hdr          []string
		status       int
		code         string
	}{
		{"malformed JSON", "POST", "/v1/invoke", `{"agent"`, nil, 400, "invalid"},
		{"bad query", "GET", "/v1/agents?limit=-1", nil, nil, 400, "invalid"},
		{"cross-origin", "POST", "/v1/agents", `{}`, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403, "forbidden"},
		{"unknown agent", "POST", "/invoke", `{"agent_name":"nope","prompt":"x"}`, nil, 404, "not_found"},
		{"unknown session", "GET", "/v1/history/nobody", nil, nil, 404, "not_found"},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/invoke", nil, nil, 405, "invalid"},
		{"name taken", "POST", "/v1/agents", promptAgent("seedbot", "/answer", "1s"), nil, 409, "conflict"},
		{"delete a built-in", "DELETE", "/v1/agents/context_append@1.0.0", nil, nil, 409, "conflict"},
		{"body too large", "POST", "/v1/invoke", `{"agent":"echo","input":{"text":"` + strings.Repeat("x", 9<<10) + `"}}`, nil, 413, "invalid"},
		{"not JSON", "POST", "/invoke", `agent_name=seedbot`, []string{"Content-Type", "text/plain"}, 415, "invalid"},
		{"input breaks the schema", "POST", "/v1/invoke", `{"agent":"seedbot","input":{"prompt":7}}`, nil, 422, "invalid"},
		{"bad definition", "POST", "/v1/agents", `{"name":"x","kind":"http"}`, nil, 422, "invalid"},
		{"rate limited upstream", "POST", "/invoke", `{"agent_name":"busy","prompt":"x"}`, nil, 429, "rate_limited"},
		{"output breaks the schema", "POST", "/invoke", `{"agent_name":"broken","prompt":"x"}`, nil, 500, "internal"},
		{"timeout", "POST", "/invoke", `{"agent_name":"sleepy","prompt":"x"}`, nil, 504, "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &rest{t: t, base: c.base}
			c.do(tt.method, tt.path, tt.body, tt.hdr...).problem(t, tt.status, tt.code)
		})
	}
	p.stop(t)

	// 503: a server without a context store.
	p = startHTTP(t, testEnvVars(t), "--store", "none")
	restOf(t, p).do("GET", "/v1/history/any", nil).problem(t, 503, "unavailable")
	restOf(t, p).do("GET", "/v1/sessions", nil).problem(t, 503, "unavailable")
	p.stop(t)
}
