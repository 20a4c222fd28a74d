package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"mcptower/internal/observe"
	"mcptower/server"
)

// BenchmarkHTTPToolsCall measures the hot path: tools/call of a typed echo
// agent over Streamable HTTP through the whole pipeline (validation, engine,
// context recording in the memory store), client and server in-process.
func BenchmarkHTTPToolsCall(b *testing.B) {
	for _, bc := range []struct {
		name  string
		store bool
		json  bool
	}{{"store=memory/sse", true, false}, {"store=off/sse", false, false}, {"store=memory/json", true, true}, {"store=off/json", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := observe.NewMetrics() // as mcptower serve runs: metrics and observer on
			env := newTestEnv(b, &server.Options{JSONResponse: bc.json, Metrics: m})
			env.engine.Observer = &observe.Observer{Metrics: m}
			if bc.store {
				env.engine.Store = observe.Store(env.store, m)
			} else {
				env.engine.Store = nil
			}
			ts := httptest.NewServer(env.srv.Handler())
			defer ts.Close()
			session := benchInitialize(b, ts.URL+"/mcp")
			var ids atomic.Int64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var body []byte
				for pb.Next() {
					body = append(body[:0], `{"jsonrpc":"2.0","id":`...)
					body = strconv.AppendInt(body, ids.Add(1), 10)
					body = append(body, `,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`...)
					req, _ := http.NewRequest("POST", ts.URL+"/mcp", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					req.Header.Set("Mcp-Session-Id", session)
					req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !bytes.Contains(data, []byte(`"hello"`)) || bytes.Contains(data, []byte(`"isError":true`)) {
						b.Fatalf("bad response %d: %s", resp.StatusCode, data)
					}
				}
			})
		})
	}
}

func benchInitialize(b *testing.B, url string) string {
	b.Helper()
	post := func(body, session string) *http.Response {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`, "")
	session := resp.Header.Get("Mcp-Session-Id")
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
	return session
}
