package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents/llm/llmtest"
	"mcptower/internal/config"
	"mcptower/server"
)

// TestProgram runs the Go example against a fake OpenAI-compatible server.
func TestProgram(t *testing.T) {
	fake := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini-2024-07-18",
		[]string{`{"summary":"Go is a simple language.",`, `"keywords":["go","simple"]}`}, 120, 20)})
	env := map[string]string{"OPENAI_BASE_URL": fake.URL + "/v1", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-4o-mini"}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"Go", "is", "an", "open", "source", "language."}, &out, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := "Go is a simple language.\nkeywords: go, simple\ntokens: 120 in, 20 out; cost: $0.000030\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	req := fake.Requests()[0]
	if req.Path != "/v1/chat/completions" || !strings.Contains(req.Body, `Summarize this text:\n\nGo is an open source language.`) || !strings.Contains(req.Body, `"json_schema"`) {
		t.Errorf("request %s %s", req.Path, req.Body)
	}
	if err := run(t.Context(), nil, io.Discard, func(string) string { return "" }); err == nil {
		t.Error("no usage error without text")
	}
}

// TestConfigValidates: the example config loads and every agent builds, with
// Ollama as the default OpenAI-compatible server, and validate's output
// hides the keys.
func TestConfigValidates(t *testing.T) {
	for _, k := range []string{"OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
	cfg, err := config.Load("mcptower.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var names []string
	opts := map[string]map[string]any{}
	for _, a := range cfg.Agents {
		names = append(names, a.Name+":"+a.Kind)
		var o map[string]any
		if len(a.Options) > 0 {
			if err := json.Unmarshal(a.Options, &o); err != nil {
				t.Fatal(err)
			}
		}
		opts[a.Name] = o
	}
	if diff := cmp.Diff([]string{"summarize:llm", "review:llm", "ask:sampling", "triage:sampling"}, names); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	if got := opts["summarize"]["base_url"]; got != "http://127.0.0.1:11434/v1" {
		t.Errorf("summarize base_url = %v, want the Ollama default", got)
	}
	if got := opts["summarize"]["model"]; got != "llama3.2" {
		t.Errorf("summarize model = %v", got)
	}
	red, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "sk-ant-secret") || !strings.Contains(string(red), config.RedactedText) {
		t.Errorf("redacted config shows the key: %s", red)
	}
}

// TestConfigServed serves the example config with its providers pointed at
// fake servers, and calls every agent over MCP as a host would.
func TestConfigServed(t *testing.T) {
	openai := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OllamaStream("llama3.2", []string{`{"summary":"Short.",`, `"keywords":["k"]}`}, 50, 10)})
	anthropic := llmtest.NewServer(t,
		llmtest.Reply{Chunks: llmtest.AnthropicStream("claude-sonnet-4-5", []string{"Looks ", "good."}, 300, 40)},
		llmtest.Reply{Chunks: llmtest.AnthropicStream("claude-sonnet-4-5", []string{"Still good."}, 400, 30)},
	)
	t.Setenv("OPENAI_BASE_URL", openai.URL+"/v1")
	t.Setenv("OPENAI_MODEL", "")
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("ANTHROPIC_BASE_URL", anthropic.URL)
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-test")
	cfg, err := config.Load("mcptower.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.NewApp(t.Context(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ts := httptest.NewServer(app.Handler())
	defer ts.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			answer := "Paris."
			if strings.Contains(req.Params.SystemPrompt, "JSON Schema") {
				answer = `{"kind":"bug","severity":4}`
			}
			return &mcp.CreateMessageResult{Role: "assistant", Model: "host-model", Content: &mcp.TextContent{Text: answer}}, nil
		},
	})
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	call := func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		args["session_id"] = "example"
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError {
			t.Fatalf("%s: %s", name, res.Content[0].(*mcp.TextContent).Text)
		}
		return res
	}
	if res := call("summarize", map[string]any{"text": "A long text.", "sentences": 1}); !cmp.Equal(res.StructuredContent, map[string]any{"summary": "Short.", "keywords": []any{"k"}}) {
		t.Errorf("summarize = %v", res.StructuredContent)
	}
	if b := openai.Requests()[0].Body; !strings.Contains(b, `"content":"You write summaries for busy engineers."`) || !strings.Contains(b, `at most 1 sentences`) {
		t.Errorf("summarize request = %s", b)
	}
	call("review", map[string]any{"diff": "-a\n+b"})
	if res := call("review", map[string]any{"diff": "-b\n+c"}); res.Content[0].(*mcp.TextContent).Text != "Still good." {
		t.Errorf("review = %v", res.Content[0])
	}
	// The second review saw the session's earlier calls.
	if b := anthropic.Requests()[1].Body; !strings.Contains(b, `Earlier in this session:\n- tool (summarize@1.0.0): {\"input\":`) ||
		!strings.Contains(b, `\n- tool (review@1.0.0): {\"input\":{\"diff\":\"-a\\n+b\"}`) {
		t.Errorf("second review request = %s", b)
	}
	if res := call("ask", map[string]any{"prompt": "Capital of France?"}); res.Content[0].(*mcp.TextContent).Text != "Paris." {
		t.Errorf("ask = %v", res.Content[0])
	}
	if res := call("triage", map[string]any{"report": "It crashes."}); !cmp.Equal(res.StructuredContent, map[string]any{"kind": "bug", "severity": 4.0}) {
		t.Errorf("triage = %v", res.StructuredContent)
	}

	rr, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "context://sessions/example"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Usage map[string]any `json:"usage"`
	}
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &doc); err != nil {
		t.Fatal(err)
	}
	// summarize (no price for llama3.2) and two reviews at $3/$15 per M.
	want := map[string]any{"calls": 3.0, "input_tokens": 750.0, "output_tokens": 80.0, "cost_usd": 0.00315}
	if diff := cmp.Diff(want, doc.Usage); diff != "" {
		t.Errorf("session usage (-want +got):\n%s", diff)
	}
}
