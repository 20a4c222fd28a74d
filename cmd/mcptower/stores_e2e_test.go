package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/contextstore"
	"mcptower/contextstore/postgres"
	"mcptower/contextstore/redis"
	"mcptower/internal/faultproxy"
	"mcptower/internal/testservice"
)

// networkStore is a store backend the server can run on, for the tests
// below: where its server is, and how to make a URL of a store of its own.
type networkStore struct {
	svc *testservice.Service
	// url returns a store URL on host (host:port) unique to t, and drops
	// that store's data when t ends.
	url func(t *testing.T, host string) string
}

func storeBackends() map[string]networkStore {
	return map[string]networkStore{
		"Redis":    {testservice.Redis, redisStoreURL},
		"Postgres": {testservice.Postgres, postgresStoreURL},
	}
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// withHost returns base with its host replaced (if host is set) and the
// query parameter k=v added.
func withHost(t *testing.T, base, host, k, v string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		u.Host = host
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func redisStoreURL(t *testing.T, host string) string {
	base := testservice.Redis.URL(t)
	prefix := uniqueName("mcptower-e2e:") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := redis.Open(ctx, withHost(t, base, "", "prefix", prefix), contextstore.Options{})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer s.Close()
		if err := s.Drop(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return withHost(t, base, host, "prefix", prefix)
}

func postgresStoreURL(t *testing.T, host string) string {
	base := testservice.Postgres.URL(t)
	schema := uniqueName("mcptower_e2e_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := postgres.Open(ctx, withHost(t, base, "", "schema", schema), contextstore.Options{})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer s.Close()
		if err := s.Drop(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return withHost(t, base, host, "schema", schema)
}

// TestE2EStoreBackends runs the foundation's end-to-end scenario on a
// server whose context store is Redis, then PostgreSQL.
func TestE2EStoreBackends(t *testing.T) {
	for name, b := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			b.svc.URL(t) // skip (or fail under CI=true) if absent
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			p := startHTTP(t, testEnvVars(t), "--store", b.url(t, ""))
			cs := connectHTTP(t, ctx, p.url, nil)
			exerciseClient(t, ctx, cs)
			if code, body := getReady(t, p); code != http.StatusOK {
				t.Errorf("/readyz = %d %s, want 200", code, body)
			}
			cs.Close()
			p.stop(t)
		})
	}
}

// TestE2EStoreFault runs the server with its store behind a TCP proxy and
// cuts the proxy: a tool call that needs the store fails with an isError
// result whose error code is "unavailable", /readyz answers 503, and once
// the proxy is restored both recover without a restart.
func TestE2EStoreFault(t *testing.T) {
	for name, b := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			addr := b.svc.Addr(t)
			proxy, err := faultproxy.Start(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			p := startHTTP(t, testEnvVars(t), "--store", b.url(t, proxy.Addr()))
			cs := connectHTTP(t, ctx, p.url, nil)
			session := uniqueName("fault-")
			appendNote := func(note string) *mcp.CallToolResult {
				t.Helper()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "context_append",
					Arguments: map[string]any{"content": note, "session_id": session}})
				if err != nil {
					t.Fatalf("tools/call: %v", err)
				}
				return res
			}
			if res := appendNote("before the cut"); res.IsError {
				t.Fatalf("append before the cut failed: %v", res.Content)
			}

			proxy.Cut()
			res := appendNote("during the cut")
			if !res.IsError {
				t.Errorf("append during the cut succeeded: %v", res.Content)
			}
			if code := res.Meta["mcptower/error_code"]; code != "unavailable" {
				t.Errorf("append during the cut: error code %v, want unavailable; content %s", code, textOf(res))
			}
			t.Logf("during the cut: %s", textOf(res))
			if code, body := getReady(t, p); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz during the cut = %d %s, want 503", code, body)
			}

			proxy.Restore()
			restored := time.Now()
			deadline := restored.Add(30 * time.Second)
			for {
				code, body := getReady(t, p)
				if code == http.StatusOK {
					t.Logf("/readyz answered 200 %v after the restore", time.Since(restored).Round(time.Millisecond))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz still %d %s 30s after the restore\n%s", code, body, p.stderr.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			if res := appendNote("after the restore"); res.IsError {
				t.Fatalf("append after the restore failed: %s", textOf(res))
			}
			rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "context://sessions/" + session})
			if err != nil {
				t.Fatal(err)
			}
			text := rr.Contents[0].Text
			for _, note := range []string{"before the cut", "after the restore"} {
				if !strings.Contains(text, `"content":"`+note+`"`) {
					t.Errorf("session lacks %q after the fault: %s", note, text)
				}
			}
			cs.Close()
			p.stop(t)
		})
	}
}

// getReady returns the status and body of the server's /readyz.
func getReady(t *testing.T, p *serverProc) (int, string) {
	t.Helper()
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/readyz"
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	if len(parts) == 0 {
		b, _ := json.Marshal(res.Content)
		return string(b)
	}
	return strings.Join(parts, " ")
}
