package llm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/agents/llm"
	"mcptower/agents/llm/llmtest"
	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/internal/errs"
)

const apiKey = "sk-test-SECRET-0123456789abcdef"

// env is an engine over a memory store whose logs are kept, for agents
// built from definitions as a config file would give them.
type env struct {
	store  contextstore.Store
	reg    *agents.Registry
	engine *agents.Engine
	logs   *syncBuffer

	mu    sync.Mutex
	waits []time.Duration // retry waits asked for
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := memory.New(contextstore.Options{})
	t.Cleanup(func() { store.Close() })
	logs := &syncBuffer{}
	reg := agents.NewRegistry()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &env{store: store, reg: reg, logs: logs, engine: &agents.Engine{Registry: reg, Store: store, Logger: logger}}
}

// add builds an agent from name, kind llm and options (JSON), registers it
// and records its retry waits instead of sleeping.
func (e *env) add(t *testing.T, name, options string) *llm.Agent {
	t.Helper()
	built, err := agents.Build(t.Context(), &agents.Definition{Name: name, Kind: "llm", Metadata: map[string]string{"audience": "children"}, Options: json.RawMessage(options)})
	if err != nil {
		t.Fatal(err)
	}
	a := built[0].(*llm.Agent)
	llm.SetSleep(a, func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.waits = append(e.waits, d)
		e.mu.Unlock()
		return ctx.Err()
	})
	if err := e.reg.Add(a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) call(t *testing.T, agent, session string, args any, client agents.Client) (*agents.Response, error) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return e.engine.Invoke(t.Context(), agents.Request{Agent: agent, Args: raw, Session: session, Client: client})
}

func options(base string, extra string) string {
	o := fmt.Sprintf(`{"base_url":%q,"api_key":%q,"model":"gpt-4o-mini"`, base, apiKey)
	if extra != "" {
		o += "," + extra
	}
	return o + "}"
}

func text(t *testing.T, r *agents.Result) string {
	t.Helper()
	if r == nil || len(r.Content) != 1 || r.Content[0].Type != "text" {
		t.Fatalf("result = %+v, want one text block", r)
	}
	return r.Content[0].Text
}

// body decodes a recorded request body.
func body(t *testing.T, r llmtest.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, options, want string
	}{
		{"no model", `{}`, `agent "a" (kind llm): option model is required`},
		{"unknown option", `{"model":"m","temprature":1}`, `agent "a" (kind llm): unknown field "temprature"`},
		{"bad provider", `{"model":"m","provider":"gemini"}`, `agent "a" (kind llm): provider "gemini" is not one of openai, anthropic`},
		{"bad base_url", `{"model":"m","base_url":"localhost:11434"}`, `agent "a" (kind llm): base_url "localhost:11434" is not an http(s) URL`},
		{"negative retries", `{"model":"m","retries":-1}`, `agent "a" (kind llm): retries must be between 0 and 10`},
		{"negative price", `{"model":"m","prices":{"m":{"input":-1,"output":1}}}`, `agent "a" (kind llm): prices[m]: prices must not be negative`},
		{"temperature", `{"model":"m","temperature":3}`, `agent "a" (kind llm): temperature must be between 0 and 2`},
		{"template syntax", `{"model":"m","prompt":"Hello\n{{.Input.name}\n"}`, `agent "a" (kind llm): prompt template, line 2: bad character U+007D '}'`},
		{"undefined function", `{"model":"m","system":"a\nb\n{{shout .Input.x}}"}`, `agent "a" (kind llm): system template, line 3: function "shout" not defined`},
		{"misspelt field", `{"model":"m","prompt":"{{.Agent.Nmae}}"}`, `agent "a" (kind llm): prompt template, line 1: at <.Agent.Nmae>: can't evaluate field Nmae in type llm.AgentInfo`},
		{"misspelt context field", `{"model":"m","prompt":"{{range .Context}}\n{{.Text}}{{end}}"}`, `agent "a" (kind llm): prompt template, line 2: at <.Text>: can't evaluate field Text in type llm.ContextEntry`},
		{"input schema not an object", `{"model":"m","input_schema":{"type":"string"}}`, `agent "a" (kind llm): input_schema must describe an object ("type": "object")`},
		{"input schema not a schema", `{"model":"m","input_schema":[1]}`, `agent "a" (kind llm): input_schema: must be a JSON Schema object`},
		{"output schema broken", `{"model":"m","output_schema":"{\"type\": 5}"}`, `agent "a" (kind llm): output_schema: parse schema: `},
		{"negative context", `{"model":"m","context_entries":-1}`, `agent "a" (kind llm): context_entries must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agents.Build(t.Context(), &agents.Definition{Name: "a", Kind: "llm", Options: json.RawMessage(tt.options)})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("code = %v, want invalid", errs.CodeOf(err))
			}
		})
	}
}

func TestSpec(t *testing.T) {
	built, err := agents.Build(t.Context(), &agents.Definition{Name: "a", Kind: "llm", Options: json.RawMessage(`{"model":"m","input_schema":"{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}","output_schema":{"type":"object"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	s := built[0].Spec()
	if s.Kind != "llm" || s.Description != "Asks the model m (openai)." || string(s.Input.JSON()) != `{"type":"object","properties":{"q":{"type":"string"}}}` || string(s.Output.JSON()) != `{"type":"object"}` {
		t.Errorf("spec = %+v in=%s", s, s.Input.JSON())
	}
	if !s.Hints.ReadOnly || s.Hints.Destructive == nil || *s.Hints.Destructive {
		t.Errorf("hints = %+v", s.Hints)
	}
	built, err = agents.Build(t.Context(), &agents.Definition{Name: "b", Kind: "llm", Options: json.RawMessage(`{"model":"m"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(built[0].Spec().Input.JSON()); got != llm.DefaultInputSchema {
		t.Errorf("default input schema = %s", got)
	}
}

// TestText: without an output schema, the answer is text; the templates see
// the input and the agent's metadata; usage and cost are on the result and
// on the recorded context entry.
func TestText(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini-2024-07-18", []string{"Paris", "."}, 1200, 300)})
	e.add(t, "capital", options(srv.URL, `"system":"You answer {{.Agent.Metadata.audience}} ({{.Agent.Name}}@{{.Agent.Version}}).","prompt":"Capital of {{.Input.country}}?","input_schema":{"type":"object","properties":{"country":{"type":"string"}},"required":["country"]},"prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}},"temperature":0.5,"max_tokens":64`))
	resp, err := e.call(t, "capital", "s1", map[string]any{"country": "France"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, resp.Result); got != "Paris." {
		t.Errorf("answer = %q", got)
	}
	wantUsage := &agents.Usage{InputTokens: 1200, OutputTokens: 300, CostUSD: 0.00036}
	if diff := cmp.Diff(wantUsage, resp.Result.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	req := body(t, srv.Requests()[0])
	wantReq := map[string]any{
		"model": "gpt-4o-mini",
		"messages": []any{
			map[string]any{"role": "system", "content": "You answer children (capital@1.0.0)."},
			map[string]any{"role": "user", "content": "Capital of France?"},
		},
		"max_tokens": 64.0, "temperature": 0.5, "stream": true,
		"stream_options": map[string]any{"include_usage": true},
	}
	if diff := cmp.Diff(wantReq, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	entries, err := e.store.History(t.Context(), "s1", contextstore.HistoryQuery{})
	if err != nil || len(entries) != 1 {
		t.Fatalf("history = %v, %v", entries, err)
	}
	var rec struct {
		Usage   agents.Usage     `json:"usage"`
		Content []agents.Content `json:"content"`
	}
	if err := json.Unmarshal(entries[0].Content, &rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*wantUsage, rec.Usage); diff != "" || rec.Content[0].Text != "Paris." {
		t.Errorf("recorded entry %s (usage -want +got):\n%s", entries[0].Content, diff)
	}
}

// TestContext: .Context holds the session's newest entries, oldest first,
// at most context_entries of them and within context_max_bytes.
func TestContext(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.OpenAIChat("m", "ok", 1, 1)})
	e.add(t, "recall", options(srv.URL, `"stream":false,"context_entries":3,"context_max_bytes":40,"prompt":"{{range .Context}}[{{.Seq}} {{.Role}} {{.JSON}}]{{end}}{{.Input.prompt}}"`))
	for i := 1; i <= 5; i++ {
		content := fmt.Sprintf(`{"note":"n%d"}`, i) // 13 bytes
		if i == 3 {
			content = `{"note":"a long note that does not fit"}`
		}
		if _, err := e.store.Append(t.Context(), "s", contextstore.Entry{Role: "user", Content: json.RawMessage(content)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.call(t, "recall", "s", map[string]any{"prompt": "now"}, nil); err != nil {
		t.Fatal(err)
	}
	// The newest three are 3, 4, 5; 4 and 5 fit in 40 bytes, 3 does not.
	want := `[4 user {"note":"n4"}][5 user {"note":"n5"}]now`
	msgs := body(t, srv.Requests()[0])["messages"].([]any)
	if got := msgs[0].(map[string]any)["content"]; got != want {
		t.Errorf("prompt = %q, want %q", got, want)
	}
}

// TestTemplateRuntimeError: an error while rendering names the agent and
// the line, and is an invalid-arguments error.
func TestTemplateRuntimeError(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.OpenAIChat("m", "ok", 1, 1)})
	e.add(t, "strict", options(srv.URL, `"prompt":"a\n{{index .Input.items 5}}","input_schema":{"type":"object","properties":{"items":{"type":"array"}}}`))
	_, err := e.call(t, "strict", "", map[string]any{"items": []int{1}}, nil)
	if err == nil || !strings.Contains(err.Error(), `agent "strict": prompt template, line 2: at <index .Input.items 5>: error calling index: index out of range: 5`) {
		t.Fatalf("err = %v", err)
	}
	if len(srv.Requests()) != 0 {
		t.Error("the model was called despite the template error")
	}
}

const outputSchema = `{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":0}},"required":["city","population"],"additionalProperties":false}`

// TestStructured: with an output schema, the request asks for JSON
// (response_format), the answer is validated and becomes the structured
// output; code fences are tolerated.
func TestStructured(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.OpenAIChat("m", "```json\n{\"city\": \"Paris\", \"population\": 2102650}\n```", 50, 20)})
	e.add(t, "city", options(srv.URL, `"stream":false,"output_schema":`+outputSchema))
	resp, err := e.call(t, "city", "", map[string]any{"prompt": "Capital of France?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result.Output); got != `{"city":"Paris","population":2102650}` {
		t.Errorf("output = %s", got)
	}
	rf := body(t, srv.Requests()[0])["response_format"]
	want := map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "city", "schema": mustJSON(t, outputSchema)}}
	if diff := cmp.Diff(want, rf); diff != "" {
		t.Errorf("response_format (-want +got):\n%s", diff)
	}
}

func mustJSON(t *testing.T, s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRepair: an answer that breaks the schema is shown to the model with
// the validation error, exactly once; usage covers both requests.
func TestRepair(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t,
		llmtest.Reply{Body: llmtest.OpenAIChat("m", `{"city":"Paris","population":"two million"}`, 50, 20)},
		llmtest.Reply{Body: llmtest.OpenAIChat("m", `{"city":"Paris","population":2000000}`, 90, 15)},
	)
	e.add(t, "city", options(srv.URL, `"stream":false,"output_schema":`+outputSchema+`,"prices":{"m":{"input":1,"output":2}}`))
	resp, err := e.call(t, "city", "", map[string]any{"prompt": "Capital of France?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result.Output); got != `{"city":"Paris","population":2000000}` {
		t.Errorf("output = %s", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	msgs := body(t, reqs[1])["messages"].([]any)
	want := []any{
		map[string]any{"role": "user", "content": "Capital of France?"},
		map[string]any{"role": "assistant", "content": `{"city":"Paris","population":"two million"}`},
		map[string]any{"role": "user", "content": "Your answer does not match the required JSON Schema: /population: want integer, got string. Answer again with only the corrected JSON value."},
	}
	if diff := cmp.Diff(want, msgs); diff != "" {
		t.Errorf("repair request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&agents.Usage{InputTokens: 140, OutputTokens: 35, CostUSD: 0.00021}, resp.Result.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// TestRepairFails: a second bad answer is a readable tool error, not a
// third request.
func TestRepairFails(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t,
		llmtest.Reply{Body: llmtest.OpenAIChat("m", `Paris, about 2 million people`, 50, 20)},
		llmtest.Reply{Body: llmtest.OpenAIChat("m", `{"city":"Paris"}`, 90, 15)},
		llmtest.Reply{Body: llmtest.OpenAIChat("m", `{"city":"Paris","population":1}`, 1, 1)},
	)
	e.add(t, "city", options(srv.URL, `"stream":false,"output_schema":`+outputSchema))
	resp, err := e.call(t, "city", "s", map[string]any{"prompt": "Capital of France?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Result.IsError {
		t.Fatalf("result = %+v, want a tool error", resp.Result)
	}
	want := `the model's answer does not match the output schema, even after one repair attempt: missing required field(s): "population" (answer: {"city":"Paris"})`
	if got := text(t, resp.Result); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if m := body(t, srv.Requests()[1])["messages"].([]any); !strings.Contains(m[2].(map[string]any)["content"].(string), "not valid JSON") {
		t.Errorf("repair message = %v", m[2])
	}
	if u := resp.Result.Usage; u == nil || u.InputTokens != 140 {
		t.Errorf("usage = %+v, want both requests counted", u)
	}
}

// TestAnthropic: text and structured output (a forced tool whose input is
// the answer), streamed, with usage and cost.
func TestAnthropic(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t,
		llmtest.Reply{Chunks: llmtest.AnthropicStream("claude-sonnet-4-5-20250929", []string{"Par", "is"}, 20, 5)},
		llmtest.Reply{Chunks: llmtest.AnthropicToolStream("claude-sonnet-4-5-20250929", "answer", []string{`{"city":"Paris",`, `"population":2102650}`}, 400, 30)},
		llmtest.Reply{Body: llmtest.AnthropicMessage("claude-sonnet-4-5-20250929", "Sure:\n[\"Paris\", \"Lyon\"]", 30, 10)},
	)
	opts := func(extra string) string {
		return fmt.Sprintf(`{"provider":"anthropic","base_url":%q,"api_key":%q,"model":"claude-sonnet-4-5","system":"Be brief.","prices":{"claude-sonnet-4-5-20250929":{"input":3,"output":15}}%s}`, srv.URL, apiKey, extra)
	}
	e.add(t, "claude", opts(""))
	e.add(t, "claude_city", opts(`,"output_schema":`+outputSchema))
	e.add(t, "claude_list", opts(`,"stream":false,"output_schema":{"type":"array","items":{"type":"string"}}`))

	resp, err := e.call(t, "claude", "", map[string]any{"prompt": "Capital of France?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, resp.Result); got != "Paris" {
		t.Errorf("answer = %q", got)
	}
	if diff := cmp.Diff(&agents.Usage{InputTokens: 20, OutputTokens: 5, CostUSD: 0.000135}, resp.Result.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	r0 := srv.Requests()[0]
	if r0.Path != "/v1/messages" || r0.Header.Get("X-Api-Key") != apiKey || r0.Header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("request %s %v", r0.Path, r0.Header)
	}
	if b := body(t, r0); b["system"] != "Be brief." || b["max_tokens"] != 1024.0 || b["stream"] != true {
		t.Errorf("body = %v", b)
	}

	resp, err = e.call(t, "claude_city", "", map[string]any{"prompt": "Capital of France?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result.Output); got != `{"city":"Paris","population":2102650}` {
		t.Errorf("output = %s", got)
	}
	b := body(t, srv.Requests()[1])
	wantTools := []any{map[string]any{"name": "answer", "description": "Give your answer as this tool's input.", "input_schema": mustJSON(t, outputSchema)}}
	if diff := cmp.Diff(wantTools, b["tools"]); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"type": "tool", "name": "answer"}, b["tool_choice"]); diff != "" {
		t.Errorf("tool_choice (-want +got):\n%s", diff)
	}

	// A schema that is not an object cannot be a tool's input: the model is
	// told in the system prompt instead.
	resp, err = e.call(t, "claude_list", "", map[string]any{"prompt": "Two French cities?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result.Output); got != `["Paris","Lyon"]` {
		t.Errorf("output = %s", got)
	}
	b = body(t, srv.Requests()[2])
	if sys, _ := b["system"].(string); !strings.HasPrefix(sys, "Be brief.\n\nAnswer with only a JSON value") || !strings.Contains(sys, `{"type":"array","items":{"type":"string"}}`) || b["tools"] != nil {
		t.Errorf("body = %v", b)
	}
}

// TestRetries covers the retry policy: what is retried, how long it waits
// (Retry-After honoured, capped), and that nothing is retried once output
// has streamed.
func TestRetries(t *testing.T) {
	ok := llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"fine"}, 3, 1)}
	rate := func(after string) llmtest.Reply {
		return llmtest.Reply{Status: 429, Body: llmtest.OpenAIRateLimited, Header: map[string]string{"Retry-After": after}}
	}
	server500 := llmtest.Reply{Status: 500, Body: llmtest.OpenAIServerError}
	tests := []struct {
		name     string
		extra    string
		replies  []llmtest.Reply
		requests int
		waits    []time.Duration // exact waits; nil with backoff set
		backoff  int             // number of jittered waits expected
		err      string          // "" = success
		code     errs.Code
	}{
		{name: "429 then ok", replies: []llmtest.Reply{rate("2"), ok}, requests: 2, waits: []time.Duration{2 * time.Second}},
		{name: "500 then ok", replies: []llmtest.Reply{server500, ok}, requests: 2, backoff: 1},
		{name: "connection reset then ok", replies: []llmtest.Reply{{Cut: true}, ok}, requests: 2, backoff: 1},
		{name: "500 until retries run out", replies: []llmtest.Reply{server500}, requests: 3, backoff: 2,
			err: "openai: server error (500): The server had an error while processing your request. Sorry about that!", code: errs.Unavailable},
		{name: "429 until retries run out", replies: []llmtest.Reply{rate("2")}, requests: 3, waits: []time.Duration{2 * time.Second, 2 * time.Second},
			err: "openai: rate limited, retry after 2s: Rate limit", code: errs.RateLimited},
		{name: "Retry-After beyond the cap", replies: []llmtest.Reply{rate("120"), ok}, requests: 1,
			err: "openai: rate limited, retry after 2m0s", code: errs.RateLimited},
		{name: "no retries", extra: `"retries":0`, replies: []llmtest.Reply{server500, ok}, requests: 1,
			err: "openai: server error (500)", code: errs.Unavailable},
		{name: "401 is not retried", replies: []llmtest.Reply{{Status: 401, Body: llmtest.OpenAIUnauthorized}, ok}, requests: 1,
			err: "openai: authentication failed (401): check api_key", code: errs.Unauthorized},
		{name: "context too long is not retried", replies: []llmtest.Reply{{Status: 400, Body: llmtest.OpenAIContextTooLong}, ok}, requests: 1,
			err: "openai: context too long: This model's maximum context length is 128000 tokens.", code: errs.Invalid},
		{name: "cut after the first token is not retried", replies: []llmtest.Reply{{Chunks: llmtest.OpenAIStream("m", []string{"Par", "is"}, 1, 1)[:2], Cut: true}, ok}, requests: 1,
			err: "openai: response stream interrupted: unexpected EOF", code: errs.Unavailable},
		{name: "cut before the first token is retried", replies: []llmtest.Reply{{Chunks: llmtest.OpenAIStream("m", []string{"Par", "is"}, 1, 1)[:1], Cut: true}, ok}, requests: 2, backoff: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			srv := llmtest.NewServer(t, tt.replies...)
			e.add(t, "a", options(srv.URL, tt.extra))
			resp, err := e.call(t, "a", "", map[string]any{"prompt": "hi"}, nil)
			if n := len(srv.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err == "":
				if got := text(t, resp.Result); got != "fine" {
					t.Errorf("answer = %q", got)
				}
			case err == nil:
				t.Fatalf("no error, want %q", tt.err)
			default:
				if !strings.Contains(err.Error(), tt.err) || errs.CodeOf(err) != tt.code {
					t.Errorf("err = %v (%v), want %q (%v)", err, errs.CodeOf(err), tt.err, tt.code)
				}
			}
			if tt.waits != nil {
				if diff := cmp.Diff(tt.waits, e.waits); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			} else if len(e.waits) != tt.backoff {
				t.Errorf("waits = %v, want %d", e.waits, tt.backoff)
			}
			for i, w := range e.waits {
				if tt.waits == nil && (w < 250*time.Millisecond<<i || w > 500*time.Millisecond<<i) {
					t.Errorf("backoff %d = %v, want within [%v, %v]", i, w, 250*time.Millisecond<<i, 500*time.Millisecond<<i)
				}
			}
			if strings.Contains(e.logs.String(), apiKey) {
				t.Errorf("the API key was logged:\n%s", e.logs.String())
			}
			if err != nil && strings.Contains(err.Error(), apiKey) {
				t.Errorf("the API key is in the error: %v", err)
			}
		})
	}
}

// TestRetryWithinDeadline: no retry waits past the call's deadline.
func TestRetryWithinDeadline(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Status: 429, Body: llmtest.OpenAIRateLimited, Header: map[string]string{"Retry-After": "20"}})
	a := e.add(t, "a", options(srv.URL, ""))
	a.Spec().Timeout = 2 * time.Second
	_, err := e.call(t, "a", "", map[string]any{"prompt": "hi"}, nil)
	if err == nil || !strings.Contains(err.Error(), "rate limited, retry after 20s") || len(srv.Requests()) != 1 || len(e.waits) != 0 {
		t.Fatalf("err = %v, %d requests, waits %v", err, len(srv.Requests()), e.waits)
	}
}

// TestModelNotFound is a tool error (IsError), not a failed call: over MCP
// a failed call with code not_found would read as an unknown tool.
func TestModelNotFound(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Status: 404, Body: llmtest.OllamaModelNotFound})
	e.add(t, "a", options(srv.URL, `"model":"llama9"`))
	resp, err := e.call(t, "a", "", map[string]any{"prompt": "hi"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Result.IsError || text(t, resp.Result) != `openai: model "llama9" not found (404): model "llama9" not found, try pulling it first` {
		t.Errorf("result = %+v", resp.Result)
	}
}

// progressClient records progress notifications.
type progressClient struct {
	agents.NoClient
	mu       sync.Mutex
	progress []float64
	messages []string
}

func (c *progressClient) Progress(_ context.Context, p, _ float64, msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress = append(c.progress, p)
	c.messages = append(c.messages, msg)
	return nil
}

// TestProgress: streamed chunks are reported, with increasing progress.
func TestProgress(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"a", "b", "c"}, 1, 3), Delay: 150 * time.Millisecond})
	e.add(t, "a", options(srv.URL, ""))
	c := &progressClient{}
	if _, err := e.call(t, "a", "", map[string]any{"prompt": "hi"}, c); err != nil {
		t.Fatal(err)
	}
	// One per chunk (150ms apart, more than the throttle); a loaded machine
	// may deliver two chunks at once.
	if len(c.progress) < 2 || c.progress[0] != 1 || c.progress[len(c.progress)-1] > 3 {
		t.Errorf("progress = %v, want 1, 2, 3", c.progress)
	}
	for i := 1; i < len(c.progress); i++ {
		if c.progress[i] <= c.progress[i-1] {
			t.Errorf("progress = %v, want it increasing", c.progress)
		}
	}
	if len(c.messages) > 0 && c.messages[0] != "gpt-4o-mini is answering: 1 chunks received" {
		t.Errorf("message = %q", c.messages[0])
	}
}

// TestCancel: cancelling the call aborts the upstream request.
func TestCancel(t *testing.T) {
	e := newEnv(t)
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"a"}, 1, 1)[:2], Hang: true})
	e.add(t, "a", options(srv.URL, ""))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := e.engine.Invoke(ctx, agents.Request{Agent: "a", Args: json.RawMessage(`{"prompt":"hi"}`)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-srv.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "cancelled") || len(srv.Requests()) != 1 {
		t.Errorf("err = %v, %d requests", err, len(srv.Requests()))
	}
}

func TestExtractJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"  [1,2] \n", `[1,2]`},
		{"```json\n{\"a\":1}\n```", `{"a":1}`},
		{"Here you go:\n```\n{\"a\":1}\n```\nAnything else?", `{"a":1}`},
		{`Sure! {"a":{"b":2}} Hope that helps.`, `{"a":{"b":2}}`},
		{`The list: ["x", "y"].`, `["x", "y"]`},
		{`no json here`, `no json here`},
		{`"a string"`, `"a string"`},
	}
	for _, tt := range tests {
		if got := string(llm.ExtractJSON(tt.in)); got != tt.want {
			t.Errorf("ExtractJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzPrompt: no template source, schema or input makes building or
// rendering panic.
func FuzzPrompt(f *testing.F) {
	f.Add("{{.Input.prompt}}", `{"prompt":"x"}`)
	f.Add("{{range .Context}}{{.JSON}}{{end}}", `{}`)
	f.Add("{{json .Input}} {{.Agent.Metadata.k}}", `{"a":[1,2]}`)
	f.Add("{{template \"x\"}}", `{"a":null}`)
	f.Fuzz(func(t *testing.T, tmpl, args string) {
		spec := &agents.Spec{Name: "f", Kind: "llm"}
		p, err := llm.NewPrompt(spec, &llm.PromptOptions{Prompt: tmpl, System: tmpl})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, _ = p.Render(ctx, &agents.Call{Agent: "f@1.0.0", Args: json.RawMessage(args), Session: "s", Client: agents.NoClient{}})
	})
}
