package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents/llm/llmtest"
	"mcptower/contextstore"
	"mcptower/schemas"
	"mcptower/server"
)

// protocols are the MCP versions the end-to-end tests speak: the stateless
// 2026-07-28 and the session-based 2025-11-25.
var protocols = []string{"2026-07-28", "2025-11-25"}

// mcpClient serves e's engine over Streamable HTTP and connects a go-sdk
// client with opts, speaking protocol version ("" for the newest).
func (e *env) mcpClient(t *testing.T, opts *mcp.ClientOptions, version ...string) *mcp.ClientSession {
	t.Helper()
	srv := server.New(e.engine, &server.Options{Logger: e.engine.Logger, Version: "test"})
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	client := mcp.NewClient(&mcp.Implementation{Name: "llm-e2e", Version: "1"}, opts)
	var so *mcp.ClientSessionOptions
	if len(version) > 0 {
		so = &mcp.ClientSessionOptions{ProtocolVersion: version[0]}
	}
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

const cityTemplate = `"system":"You know geography. Reply in JSON.","prompt":"Which is the largest city of {{.Input.country}}{{with .Input.region}}, in {{.}}{{end}}?","input_schema":{"type":"object","properties":{"country":{"type":"string"},"region":{"type":"string"}},"required":["country"]}`

// TestMCPStructured: an llm agent with a template and an output schema,
// called over MCP, returns structuredContent that validates, with its usage
// in _meta.
func TestMCPStructured(t *testing.T) {
	e := newEnv(t)
	fake := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini-2024-07-18", []string{`{"city":`, `"Lyon",`, `"population":522250}`}, 40, 12)})
	e.add(t, "largest_city", options(fake.URL, cityTemplate+`,"output_schema":`+outputSchema+`,"prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}}`))
	cs := e.mcpClient(t, nil)

	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].OutputSchema == nil {
		t.Fatalf("tools = %+v", tools.Tools)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "largest_city", Arguments: map[string]any{"country": "France", "region": "Auvergne-Rhône-Alpes"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content[0].(*mcp.TextContent).Text)
	}
	schema, err := schemas.Parse([]byte(outputSchema))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(res.StructuredContent); err != nil {
		t.Errorf("structuredContent %v breaks the schema: %v", res.StructuredContent, err)
	}
	if diff := cmp.Diff(map[string]any{"city": "Lyon", "population": 522250.0}, res.StructuredContent); diff != "" {
		t.Errorf("structuredContent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"input_tokens": 40.0, "output_tokens": 12.0, "cost_usd": 0.0000132}, res.Meta[server.MetaUsage]); diff != "" {
		t.Errorf("_meta usage (-want +got):\n%s", diff)
	}
	msgs := body(t, fake.Requests()[0])["messages"].([]any)
	if got := msgs[1].(map[string]any)["content"]; got != "Which is the largest city of France, in Auvergne-Rhône-Alpes?" {
		t.Errorf("rendered prompt = %q", got)
	}
}

// TestMCPRepair: a schema-violating answer triggers exactly one repair
// round; the client gets the repaired answer.
func TestMCPRepair(t *testing.T) {
	e := newEnv(t)
	fake := llmtest.NewServer(t,
		llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{`{"city":"Lyon","population":-5}`}, 40, 12)},
		llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{`{"city":"Lyon","population":522250}`}, 80, 12)},
		llmtest.Reply{Status: 500, Body: llmtest.OpenAIServerError},
	)
	e.add(t, "largest_city", options(fake.URL, cityTemplate+`,"output_schema":`+outputSchema))
	cs := e.mcpClient(t, nil)
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "largest_city", Arguments: map[string]any{"country": "France"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content[0].(*mcp.TextContent).Text)
	}
	if diff := cmp.Diff(map[string]any{"city": "Lyon", "population": 522250.0}, res.StructuredContent); diff != "" {
		t.Errorf("structuredContent (-want +got):\n%s", diff)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the fake server got %d requests, want 2 (one repair round)", len(reqs))
	}
	msgs := body(t, reqs[1])["messages"].([]any)
	if got := msgs[len(msgs)-1].(map[string]any)["content"].(string); !strings.Contains(got, "/population: -5 is less than the minimum 0") {
		t.Errorf("repair message = %q", got)
	}
}

// TestMCPProgress: while the model streams, progress notifications reach
// a client that gave a progress token, before the result.
func TestMCPProgress(t *testing.T) {
	for _, version := range protocols {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t)
			fake := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"one ", "two ", "three"}, 5, 3), Delay: 150 * time.Millisecond})
			e.add(t, "counter", options(fake.URL, ""))
			var mu sync.Mutex
			var got []*mcp.ProgressNotificationParams
			var first time.Time
			cs := e.mcpClient(t, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
				mu.Lock()
				defer mu.Unlock()
				if first.IsZero() {
					first = time.Now()
				}
				got = append(got, req.Params)
			}}, version)
			params := &mcp.CallToolParams{Name: "counter", Arguments: map[string]any{"prompt": "count"}}
			params.SetProgressToken("tok-1")
			res, err := cs.CallTool(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError || res.Content[0].(*mcp.TextContent).Text != "one two three" {
				t.Fatalf("result = %+v", res.Content[0])
			}
			returned := time.Now()
			mu.Lock()
			defer mu.Unlock()
			// One per streamed chunk (they are 150ms apart, more than the
			// throttle); a loaded machine may deliver two at once.
			if len(got) < 2 || len(got) > 3 {
				t.Fatalf("%d progress notifications before the result, want 3: %+v", len(got), got)
			}
			if returned.Sub(first) < 300*time.Millisecond {
				t.Errorf("the first notification came %v before the result; want it while the answer streamed", returned.Sub(first))
			}
			prev := 0.0
			for i, p := range got {
				if p.ProgressToken != "tok-1" || p.Progress <= prev || p.Progress > 3 || !strings.Contains(p.Message, "gpt-4o-mini is answering") {
					t.Errorf("notification %d = %+v", i, p)
				}
				prev = p.Progress
			}
		})
	}
}

// TestMCPCancel: cancelling the call at the client aborts the upstream
// request, which the fake server observes.
func TestMCPCancel(t *testing.T) {
	for _, version := range protocols {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t)
			fake := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"thinking"}, 1, 1)[:2], Hang: true})
			e.add(t, "slow", options(fake.URL, ""))
			cs := e.mcpClient(t, nil, version)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"prompt": "take your time"}})
				done <- err
			}()
			deadline := time.Now().Add(5 * time.Second)
			for len(fake.Requests()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			select {
			case <-fake.Cancelled():
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream request was not cancelled")
			}
			if err := <-done; err == nil {
				t.Error("CallTool succeeded after cancel")
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d upstream requests, want 1 (no retry after cancel)", n)
			}
		})
	}
}

// TestMCPSessionUsage: three calls in one session; the session resource
// sums their tokens and cost, including a call older than the entries it
// lists.
func TestMCPSessionUsage(t *testing.T) {
	e := newEnv(t)
	fake := llmtest.NewServer(t,
		llmtest.Reply{Body: llmtest.OpenAIChat("gpt-4o-mini", "a", 1000, 100)},
		llmtest.Reply{Body: llmtest.OpenAIChat("gpt-4o-mini", "b", 2000, 200)},
		llmtest.Reply{Body: llmtest.OpenAIChat("gpt-4o-mini", "c", 3000, 300)},
	)
	e.add(t, "priced", options(fake.URL, `"stream":false,"prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}}`))
	cs := e.mcpClient(t, nil)
	const session = "usage-session"
	call := func() {
		t.Helper()
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "priced", Arguments: map[string]any{"prompt": "hi", "session_id": session}})
		if err != nil || res.IsError {
			t.Fatalf("call: %v %+v", err, res)
		}
	}
	call()
	// Notes push the first call out of the entries the resource lists.
	for i := range 250 {
		if _, err := e.store.Append(t.Context(), session, contextstore.Entry{Role: "user", Content: json.RawMessage(fmt.Sprintf(`{"note":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	call()

	rr, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "context://sessions/" + session})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Entries   []json.RawMessage `json:"entries"`
		Truncated bool              `json:"truncated"`
		Usage     map[string]any    `json:"usage"`
	}
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Truncated {
		t.Error("the document lists every entry; the test means to check usage beyond them")
	}
	// 6000 input tokens at $0.15/M + 600 output tokens at $0.60/M.
	want := map[string]any{"calls": 3.0, "input_tokens": 6000.0, "output_tokens": 600.0, "cost_usd": 0.00126}
	if diff := cmp.Diff(want, doc.Usage); diff != "" {
		t.Errorf("session usage (-want +got):\n%s", diff)
	}

	// The entries themselves carry each call's usage.
	entries, err := e.store.History(t.Context(), session, contextstore.HistoryQuery{Last: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Usage map[string]any `json:"usage"`
	}
	if err := json.Unmarshal(entries[0].Content, &rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"input_tokens": 3000.0, "output_tokens": 300.0, "cost_usd": 0.00063}, rec.Usage); diff != "" {
		t.Errorf("recorded usage (-want +got):\n%s", diff)
	}
}
