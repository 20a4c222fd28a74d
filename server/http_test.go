package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mcptower/server"
)

// rawClient speaks Streamable HTTP by hand, so tests control every byte.
type rawClient struct {
	t       *testing.T
	url     string
	session string
}

func newHTTPEnv(t *testing.T, opts *server.Options) (*testEnv, *httptest.Server) {
	t.Helper()
	env := newTestEnv(t, opts)
	ts := httptest.NewServer(env.srv.Handler())
	t.Cleanup(ts.Close)
	return env, ts
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
	msg    map[string]any // the JSON-RPC response, from JSON or SSE
}

func (c *rawClient) do(method, body string, hdr map[string]string) rawResponse {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := rawResponse{status: resp.StatusCode, header: resp.Header, body: data}
	payload := data
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(d, `"id"`) {
				payload = []byte(d)
			}
		}
	}
	_ = json.Unmarshal(payload, &r.msg)
	return r
}

func (c *rawClient) initialize() {
	c.t.Helper()
	r := c.do("POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, nil)
	if r.status != 200 {
		c.t.Fatalf("initialize: %d %s", r.status, r.body)
	}
	c.session = r.header.Get("Mcp-Session-Id")
	if c.session == "" {
		c.t.Fatal("initialize: no Mcp-Session-Id")
	}
	if r := c.do("POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil); r.status != 202 {
		c.t.Fatalf("initialized: %d %s", r.status, r.body)
	}
}

// TestHTTPBadInput sends each kind of bad request and checks the documented
// error, then that the server still serves a good call.
func TestHTTPBadInput(t *testing.T) {
	_, ts := newHTTPEnv(t, &server.Options{MaxBodyBytes: 1 << 10})
	c := &rawClient{t: t, url: ts.URL + "/mcp"}
	c.initialize()
	good := `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`

	tests := []struct {
		name       string
		method     string
		body       string
		hdr        map[string]string
		wantStatus int
		wantCode   float64 // JSON-RPC error code; 0: a result
		wantInBody string
	}{
		{"malformed JSON", "POST", `{"jsonrpc":"2.0","id":2,"method":`, nil, 400, -32700, "malformed"},
		{"not JSON-RPC", "POST", `[1,2,3]`, nil, 400, -32700, "malformed"},
		{"wrong content type", "POST", good, map[string]string{"Content-Type": "text/plain"}, 415, -32600, "application/json"},
		{"oversize body", "POST", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 2<<10) + `"}}}`, nil, 413, -32600, "exceeds 1024 bytes"},
		{"unknown session id", "POST", good, map[string]string{"Mcp-Session-Id": "no-such-session"}, 404, -32001, "session not found"},
		{"bad origin", "POST", good, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403, -32600, "trusted_origins"},
		{"bad host (DNS rebinding)", "POST", good, map[string]string{"Host": "evil.example"}, 403, -32600, "Host"},
		{"wrong argument type", "POST", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":42}}}`, nil, 200, 0, "field /text: want string, got integer"},
		{"unknown tool", "POST", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope","arguments":{}}}`, nil, 200, -32602, "unknown tool"},
		{"GET without session", "GET", "", map[string]string{"Mcp-Session-Id": ""}, 400, -32600, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			r := c.do(tt.method, tt.body, tt.hdr)
			if r.status != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if r.msg == nil {
				t.Fatalf("body is not a JSON-RPC message: %s", r.body)
			}
			if tt.wantCode != 0 {
				e, _ := r.msg["error"].(map[string]any)
				if e == nil || e["code"] != tt.wantCode {
					t.Errorf("error = %v, want code %v", r.msg["error"], tt.wantCode)
				}
			} else if res, _ := r.msg["result"].(map[string]any); res == nil || res["isError"] != true {
				t.Errorf("result = %v, want an isError tool result", r.msg["result"])
			}
			if tt.wantInBody != "" && !strings.Contains(string(r.body), tt.wantInBody) {
				t.Errorf("body %s does not mention %q", r.body, tt.wantInBody)
			}
			after := c.do("POST", good, nil)
			if after.status != 200 || !strings.Contains(string(after.body), "still here") {
				t.Fatalf("server stopped serving after %s: %d %s", tt.name, after.status, after.body)
			}
		})
	}
}
