package bench_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/internal/bench"
)

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string `json:"text"`
}

// sdkServer is a go-sdk server behind a real Streamable HTTP handler.
type sdkServer struct {
	url         string
	server      *mcp.Server
	calls       atomic.Int64 // successful echo calls
	initialized atomic.Int64 // notifications/initialized received
}

// newSDKServer serves an "echo" tool and a "fail" tool that always returns
// an error (an isError result), with the given handler options.
func newSDKServer(t *testing.T, opts *mcp.StreamableHTTPOptions) *sdkServer {
	t.Helper()
	s := &sdkServer{}
	s.server = mcp.NewServer(&mcp.Implementation{Name: "bench-test", Version: "v0.0.1"}, &mcp.ServerOptions{
		InitializedHandler: func(context.Context, *mcp.InitializedRequest) { s.initialized.Add(1) },
	})
	mcp.AddTool(s.server, &mcp.Tool{Name: "echo", Description: "Echo the text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
			if in.Text != "hi" {
				return nil, echoOut{}, errors.New("wrong text " + in.Text)
			}
			s.calls.Add(1)
			return nil, echoOut(in), nil
		})
	mcp.AddTool(s.server, &mcp.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, echoOut, error) {
			return nil, echoOut{}, errors.New("boom")
		})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.server }, opts))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

func (s *sdkServer) sessions() int {
	n := 0
	for range s.server.Sessions() {
		n++
	}
	return n
}

func TestRunGoSDK(t *testing.T) {
	const requests, concurrency = 200, 4
	tests := []struct {
		name     string
		opts     *mcp.StreamableHTTPOptions
		protocol string
		stateful bool // sessions are created and must be deleted
	}{
		{name: "stateful SSE", opts: nil, stateful: true},
		{name: "stateful JSON", opts: &mcp.StreamableHTTPOptions{JSONResponse: true}, stateful: true},
		{name: "stateful 2025-06-18", opts: nil, protocol: "2025-06-18", stateful: true},
		{name: "stateless 2026 SSE", opts: &mcp.StreamableHTTPOptions{Stateless: true}, protocol: bench.ProtocolStateless},
		{name: "stateless 2026 JSON", opts: &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}, protocol: bench.ProtocolStateless},
		{name: "stateless legacy handshake", opts: &mcp.StreamableHTTPOptions{Stateless: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSDKServer(t, tt.opts)
			rep, err := bench.Run(t.Context(), bench.Options{
				URL:         srv.url,
				Tool:        "echo",
				Args:        []byte(`{"text": "hi"}`),
				Concurrency: concurrency,
				Requests:    requests,
				Protocol:    tt.protocol,
			})
			if err != nil {
				t.Fatalf("Run: %v\n%v", err, rep)
			}
			if rep.Requests != requests || rep.Errors != 0 || rep.FirstError != "" {
				t.Errorf("Run = %+v, want %d requests and no errors", rep, requests)
			}
			if got := srv.calls.Load(); got != requests {
				t.Errorf("server saw %d successful calls, want %d", got, requests)
			}
			if !(0 < rep.P50 && rep.P50 <= rep.P95 && rep.P95 <= rep.P99 && rep.P99 <= rep.Max) {
				t.Errorf("latencies not ordered: %+v", rep)
			}
			if rep.Duration <= 0 || rep.RPS <= 0 {
				t.Errorf("Duration = %v, RPS = %v, want positive", rep.Duration, rep.RPS)
			}
			if tt.stateful {
				if got := srv.initialized.Load(); got != concurrency {
					t.Errorf("server saw %d notifications/initialized, want %d (one per worker)", got, concurrency)
				}
				if n := srv.sessions(); n != 0 {
					t.Errorf("%d sessions left after Run, want 0 (each worker deletes its own)", n)
				}
			}
		})
	}
}

func TestRunGoSDKErrors(t *testing.T) {
	const requests = 20
	tests := []struct {
		name     string
		opts     *mcp.StreamableHTTPOptions
		protocol string
		tool     string
		want     string // in FirstError
	}{
		{name: "isError result", tool: "fail", want: "tool error: boom"},
		{name: "isError result JSON", opts: &mcp.StreamableHTTPOptions{JSONResponse: true}, tool: "fail", want: "tool error: boom"},
		{name: "unknown tool", tool: "nope", want: `JSON-RPC error -32602: unknown tool "nope"`},
		{name: "unknown tool stateless 2026", opts: &mcp.StreamableHTTPOptions{Stateless: true}, protocol: bench.ProtocolStateless,
			tool: "nope", want: `unknown tool "nope"`},
		{name: "isError result stateless 2026", opts: &mcp.StreamableHTTPOptions{Stateless: true}, protocol: bench.ProtocolStateless,
			tool: "fail", want: "tool error: boom"},
		// go-sdk's stateful handler refuses the 2026 protocol with a
		// JSON-RPC error listing the versions it supports.
		{name: "2026 against stateful server", protocol: bench.ProtocolStateless, tool: "echo",
			want: `HTTP 400 Bad Request: JSON-RPC error -32022: protocol version "2026-07-28" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSDKServer(t, tt.opts)
			rep, err := bench.Run(t.Context(), bench.Options{
				URL:         srv.url,
				Tool:        tt.tool,
				Args:        []byte(`{"text":"hi"}`),
				Concurrency: 2,
				Requests:    requests,
				Protocol:    tt.protocol,
			})
			if err == nil {
				t.Fatalf("Run succeeded, want an error; report:\n%v", rep)
			}
			if rep.Requests != requests || rep.Errors != requests {
				t.Errorf("Requests, Errors = %d, %d, want %d, %d", rep.Requests, rep.Errors, requests, requests)
			}
			if !strings.Contains(rep.FirstError, tt.want) {
				t.Errorf("FirstError = %q, want it to contain %q", rep.FirstError, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
