package sampling_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/server"
)

// connect serves engine over Streamable HTTP and in memory, and connects a
// go-sdk client with opts: over HTTP with the 2026-07-28 protocol
// (sampling through input requests and a retried call) and with
// 2025-11-25 (a server→client sampling request), in memory with 2025-11-25.
func connect(t *testing.T, engine *agents.Engine, opts *mcp.ClientOptions) map[string]*mcp.ClientSession {
	t.Helper()
	srv := server.New(engine, &server.Options{Version: "test", Logger: engine.Logger})
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	out := map[string]*mcp.ClientSession{}
	client := mcp.NewClient(&mcp.Implementation{Name: "sampling-e2e", Version: "1"}, opts)
	add := func(name string, tr mcp.Transport, version string) {
		t.Helper()
		var so *mcp.ClientSessionOptions
		if version != "" {
			so = &mcp.ClientSessionOptions{ProtocolVersion: version}
		}
		cs, err := client.Connect(t.Context(), tr, so)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { cs.Close() })
		out[name] = cs
	}
	add("HTTP 2026-07-28", &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, "")
	add("HTTP 2025-11-25", &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, "2025-11-25")
	ct, st := mcp.NewInMemoryTransports()
	if _, err := srv.Connect(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	add("in-memory 2025-11-25", ct, "2025-11-25")
	return out
}

// TestMCPSampling: the sampling agent asks the go-sdk client's model (its
// CreateMessageHandler), with the structured output repaired once; and a
// client without the sampling capability gets a clear error.
func TestMCPSampling(t *testing.T) {
	schema := `{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`
	engine, _ := newEngine(t,
		def("ask", `{"system":"Be brief.","model_hints":["claude-sonnet"]}`),
		def("ask_json", `{"output_schema":`+schema+`}`),
	)
	var samples atomic.Int64
	handler := func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		samples.Add(1)
		p := req.Params
		last := p.Messages[len(p.Messages)-1].Content.(*mcp.TextContent).Text
		switch {
		case strings.HasPrefix(p.SystemPrompt, "Answer with only a JSON value") && len(p.Messages) == 1:
			return &mcp.CreateMessageResult{Role: "assistant", Model: "client-model", Content: &mcp.TextContent{Text: `"Paris"`}}, nil
		case strings.HasPrefix(p.SystemPrompt, "Answer with only a JSON value"):
			return &mcp.CreateMessageResult{Role: "assistant", Model: "client-model", Content: &mcp.TextContent{Text: `{"answer":"Paris"}`}}, nil
		case p.SystemPrompt != "Be brief." || p.ModelPreferences == nil || p.ModelPreferences.Hints[0].Name != "claude-sonnet":
			return nil, errors.New("unexpected request")
		}
		return &mcp.CreateMessageResult{Role: "assistant", Model: "client-model", Content: &mcp.TextContent{Text: "answer to: " + last}}, nil
	}
	for name, cs := range connect(t, engine, &mcp.ClientOptions{CreateMessageHandler: handler}) {
		t.Run(name, func(t *testing.T) {
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask", Arguments: map[string]any{"prompt": "Capital of France?"}})
			if err != nil {
				t.Fatal(err)
			}
			if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || text != "answer to: Capital of France?" {
				t.Fatalf("result: isError=%v %q", res.IsError, text)
			}
			samples.Store(0)
			res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask_json", Arguments: map[string]any{"prompt": "Capital of France?"}})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := res.StructuredContent.(map[string]any)
			if res.IsError || out["answer"] != "Paris" {
				t.Fatalf("result: isError=%v %v %v", res.IsError, res.StructuredContent, res.Content)
			}
			if n := samples.Load(); n != 2 {
				t.Errorf("the client sampled %d times, want 2 (one repair)", n)
			}
		})
	}

	for name, cs := range connect(t, engine, nil) {
		t.Run(name+" without sampling", func(t *testing.T) {
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask", Arguments: map[string]any{"prompt": "Capital of France?"}})
			// 2026-07-28 clients get the protocol error for a missing
			// capability; 2025-11-25 sessions a tool error.
			var msg string
			if rpc, ok := errors.AsType[*jsonrpc.Error](err); ok {
				msg = rpc.Message
			} else if err != nil {
				t.Fatal(err)
			} else if res.IsError {
				msg = res.Content[0].(*mcp.TextContent).Text
			}
			if !strings.Contains(msg, "does not support sampling") {
				t.Fatalf("err=%v result=%+v; want a clear error about sampling", err, res)
			}
		})
	}
}
