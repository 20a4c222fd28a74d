package server_test

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
)

type askIn struct {
	Question string `json:"question"`
}

type askOut struct {
	Answer string `json:"answer"`
	Model  string `json:"model"`
	Name   string `json:"name"`
}

// askAgent samples the client's model, then elicits a name: two input
// requests, so a 2026 client needs two rounds (state carried between them).
func askAgent(t testing.TB, runs *atomic.Int64) agents.Agent {
	a, err := agents.Typed(agents.Spec{Name: "ask_twice"}, func(ctx context.Context, call *agents.Call, in askIn) (askOut, error) {
		runs.Add(1)
		res, err := call.Client.Sample(ctx, &agents.SampleRequest{Messages: []agents.Message{{Role: "user", Content: agents.Text(in.Question)}}, MaxTokens: 50})
		if err != nil {
			return askOut{}, err
		}
		el, err := call.Client.Elicit(ctx, &agents.ElicitRequest{Message: "Your name?", Schema: []byte(`{"type":"object","properties":{"name":{"type":"string"}}}`)})
		if err != nil {
			return askOut{}, err
		}
		name, _ := el.Content["name"].(string)
		return askOut{Answer: res.Content.Text, Model: res.Model, Name: name}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func samplingClient(sample, elicit bool) *mcp.Client {
	opts := &mcp.ClientOptions{}
	if sample {
		opts.CreateMessageHandler = func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			q := req.Params.Messages[0].Content.(*mcp.TextContent).Text
			return &mcp.CreateMessageResult{Role: "assistant", Model: "client-model", Content: &mcp.TextContent{Text: "echo: " + q}}, nil
		}
	}
	if elicit {
		opts.ElicitationHandler = func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		}
	}
	return mcp.NewClient(&mcp.Implementation{Name: "sampler", Version: "1"}, opts)
}

// TestSamplingAndElicitation runs an agent that asks the client's model and
// the user, over a 2025-11-25 session (server→client requests) and over
// HTTP with the go-sdk client's 2026-07-28 multi-round-trip; and checks the
// clear error for a client without the capability.
func TestSamplingAndElicitation(t *testing.T) {
	env := newTestEnv(t, nil)
	var runs atomic.Int64
	if err := env.reg.Add(askAgent(t, &runs)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()

	// The go-sdk client speaks 2026-07-28: it retries the call once per
	// input request (three runs). The 2025-11-25 path, answered in-line, is
	// in testdata/golden/sampling.txtar.
	wantRuns := map[string]int64{"in-memory": 3, "streamable HTTP": 3}
	connect := map[string]func(c *mcp.Client) (*mcp.ClientSession, error){
		"in-memory": func(c *mcp.Client) (*mcp.ClientSession, error) {
			ct, st := mcp.NewInMemoryTransports()
			if _, err := env.srv.Connect(t.Context(), st); err != nil {
				return nil, err
			}
			return c.Connect(t.Context(), ct, nil)
		},
		"streamable HTTP": func(c *mcp.Client) (*mcp.ClientSession, error) {
			return c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, nil)
		},
	}
	for name, conn := range connect {
		t.Run(name, func(t *testing.T) {
			cs, err := conn(samplingClient(true, true))
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			runs.Store(0)
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask_twice", Arguments: map[string]any{"question": "2+2?"}})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := res.StructuredContent.(map[string]any)
			if res.IsError || out["answer"] != "echo: 2+2?" || out["model"] != "client-model" || out["name"] != "Ada" {
				t.Fatalf("result = %+v %v", out, res.Content)
			}
			if got := runs.Load(); got != wantRuns[name] {
				t.Errorf("agent ran %d times, want %d", got, wantRuns[name])
			}

			cs2, err := conn(samplingClient(false, false))
			if err != nil {
				t.Fatal(err)
			}
			defer cs2.Close()
			// A 2026-07-28 client without the capability gets the SEP-2575
			// protocol error -32021 (2025-11-25 sessions get a tool error:
			// testdata/golden/sampling_unsupported.txtar).
			_, err = cs2.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask_twice", Arguments: map[string]any{"question": "2+2?"}})
			var rpcErr *jsonrpc.Error
			if !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeMissingRequiredClientCapabilities || !strings.Contains(rpcErr.Message, "does not support sampling") {
				t.Fatalf("client without sampling: got %v, want JSON-RPC error -32021", err)
			}
			if !strings.Contains(string(rpcErr.Data), `"sampling":{}`) {
				t.Errorf("error data %s does not name the sampling capability", rpcErr.Data)
			}
		})
	}
}
