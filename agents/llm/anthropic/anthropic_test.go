package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents/llm/anthropic"
	"mcptower/agents/llm/llmtest"
	"mcptower/agents/llm/wire"
	"mcptower/internal/errs"
)

const key = "sk-ant-api03-test0123456789"

func request() *anthropic.MessageRequest {
	return &anthropic.MessageRequest{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 100,
		System:    "Be brief.",
		Messages:  []anthropic.Message{anthropic.TextMessage("user", "Capital of France?")},
	}
}

// TestWireFormat checks every response shape, streamed and not: the text
// (or tool input), usage and stop reason, or the mapped error with its
// code, kind and readable message.
func TestWireFormat(t *testing.T) {
	type want struct {
		text     string
		tool     string
		usage    anthropic.Usage
		stop     string
		events   int // onEvent calls (streaming)
		code     errs.Code
		kind     wire.Kind
		msg      string
		retry    time.Duration
		canRetry bool
	}
	answer := []string{"The", " capital", " is", " Paris."}
	model := "claude-sonnet-4-5-20250929"
	tests := []struct {
		name   string
		stream bool
		reply  llmtest.Reply
		want   want
	}{
		{
			name:  "complete",
			reply: llmtest.Reply{Body: llmtest.AnthropicMessage(model, "The capital is Paris.", 12, 8)},
			want:  want{text: "The capital is Paris.", usage: anthropic.Usage{InputTokens: 12, OutputTokens: 8}, stop: "end_turn"},
		},
		{
			name:  "complete tool call",
			reply: llmtest.Reply{Body: llmtest.AnthropicToolMessage(model, "answer", `{"city":"Paris"}`, 400, 20)},
			want:  want{tool: `{"city":"Paris"}`, usage: anthropic.Usage{InputTokens: 400, OutputTokens: 20}, stop: "tool_use"},
		},
		{
			name:   "streamed",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.AnthropicStream(model, answer, 25, 15)},
			want:   want{text: "The capital is Paris.", usage: anthropic.Usage{InputTokens: 25, OutputTokens: 15}, stop: "end_turn", events: 10},
		},
		{
			name:   "streamed request answered in one piece",
			stream: true,
			reply:  llmtest.Reply{Body: llmtest.AnthropicMessage(model, "The capital is Paris.", 12, 8)},
			want:   want{text: "The capital is Paris.", usage: anthropic.Usage{InputTokens: 12, OutputTokens: 8}, stop: "end_turn"},
		},
		{
			name:   "streamed tool call",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.AnthropicToolStream(model, "answer", []string{`{"city":`, ` "Par`, `is"}`}, 410, 22)},
			want:   want{tool: `{"city": "Paris"}`, usage: anthropic.Usage{InputTokens: 410, OutputTokens: 22}, stop: "tool_use", events: 9},
		},
		{
			name:  "401",
			reply: llmtest.Reply{Status: 401, Body: llmtest.AnthropicUnauthorized},
			want:  want{code: errs.Unauthorized, kind: wire.KindAuth, msg: "anthropic: authentication failed (401): check api_key: invalid x-api-key"},
		},
		{
			name:  "404 model",
			reply: llmtest.Reply{Status: 404, Body: llmtest.AnthropicModelNotFound},
			want:  want{code: errs.NotFound, kind: wire.KindModelNotFound, msg: `anthropic: model "claude-sonnet-4-5" not found (404): model: claude-nope`},
		},
		{
			name:  "404 wrong URL",
			reply: llmtest.Reply{Status: 404, Body: `{"type":"error","error":{"type":"not_found_error","message":"Not Found"},"request_id":"req_1"}`},
			want:  want{code: errs.NotFound, kind: wire.KindEndpointNotFound, msg: "anthropic: URL/v1/messages not found (404): check base_url: Not Found"},
		},
		{
			name:  "429 with Retry-After",
			reply: llmtest.Reply{Status: 429, Body: llmtest.AnthropicRateLimited, Header: map[string]string{"Retry-After": "2"}},
			want: want{code: errs.RateLimited, kind: wire.KindRateLimited, retry: 2 * time.Second, canRetry: true,
				msg: "anthropic: rate limited, retry after 2s: This request would exceed the rate limit for your organization (3d8c5c8e-0000-0000-0000-000000000000) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."},
		},
		{
			name:  "500",
			reply: llmtest.Reply{Status: 500, Body: llmtest.AnthropicServerError},
			want:  want{code: errs.Unavailable, kind: wire.KindServer, canRetry: true, msg: "anthropic: server error (500): Internal server error"},
		},
		{
			name:  "529 overloaded",
			reply: llmtest.Reply{Status: 529, Body: llmtest.AnthropicOverloaded},
			want:  want{code: errs.Unavailable, kind: wire.KindOverloaded, canRetry: true, msg: "anthropic: overloaded (529), try again later: Overloaded"},
		},
		{
			name:  "400 context too long",
			reply: llmtest.Reply{Status: 400, Body: llmtest.AnthropicContextTooLong},
			want:  want{code: errs.Invalid, kind: wire.KindContextTooLong, msg: "anthropic: context too long: prompt is too long: 208310 tokens > 200000 maximum"},
		},
		{
			name:  "400 other",
			reply: llmtest.Reply{Status: 400, Body: `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"}`},
			want:  want{code: errs.Invalid, kind: wire.KindBadRequest, msg: "anthropic: bad request (400): max_tokens: Field required"},
		},
		{
			name:   "error event mid-stream",
			stream: true,
			reply:  llmtest.Reply{Chunks: append(llmtest.AnthropicStream(model, answer, 25, 15)[:4], llmtest.AnthropicErrorEvent("overloaded_error", "Overloaded"))},
			want:   want{code: errs.Unavailable, kind: wire.KindOverloaded, canRetry: true, events: 4, msg: "anthropic: overloaded, try again later: Overloaded"},
		},
		{
			name:   "malformed event",
			stream: true,
			reply:  llmtest.Reply{Chunks: append(llmtest.AnthropicStream(model, answer, 25, 15)[:2], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\n\n")},
			want: want{code: errs.Unavailable, kind: wire.KindMalformed, events: 2,
				msg: `anthropic: malformed response: unexpected stream event: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel`},
		},
		{
			name:   "delta before its block",
			stream: true,
			reply:  llmtest.Reply{Chunks: append(llmtest.AnthropicStream(model, answer, 25, 15)[:1], llmtest.AnthropicStream(model, answer, 25, 15)[3])},
			want: want{code: errs.Unavailable, kind: wire.KindMalformed, events: 1,
				msg: `anthropic: malformed response: unexpected stream event: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The"}}`},
		},
		{
			name:   "connection cut mid-stream",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.AnthropicStream(model, answer, 25, 15)[:5], Cut: true},
			want:   want{code: errs.Unavailable, kind: wire.KindStream, canRetry: true, events: 5, msg: "anthropic: response stream interrupted: unexpected EOF"},
		},
		{
			name:   "stream ends before message_stop",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.AnthropicStream(model, answer, 25, 15)[:5]},
			want:   want{code: errs.Unavailable, kind: wire.KindStream, canRetry: true, events: 5, msg: "anthropic: response stream interrupted: the stream ended before message_stop"},
		},
		{
			name:   "stream ends after the stop reason",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.AnthropicStream(model, answer, 25, 15)[:9]},
			want:   want{text: "The capital is Paris.", usage: anthropic.Usage{InputTokens: 25, OutputTokens: 15}, stop: "end_turn", events: 9},
		},
		{
			name:  "connection reset",
			reply: llmtest.Reply{Cut: true},
			want:  want{code: errs.Unavailable, kind: wire.KindTransport, canRetry: true, msg: "anthropic: request to URL failed (is the server running? check base_url): EOF"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := llmtest.NewServer(t, tt.reply)
			c := &anthropic.Client{BaseURL: srv.URL, APIKey: key}
			var out *anthropic.MessageResponse
			var err error
			events := 0
			if tt.stream {
				out, err = c.StreamMessage(t.Context(), request(), func(*anthropic.StreamEvent) error { events++; return nil })
			} else {
				out, err = c.CreateMessage(t.Context(), request())
			}
			if tt.want.msg == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				got := want{text: out.Text(), tool: string(out.ToolInput("answer")), usage: out.Usage, stop: out.StopReason, events: events}
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; answer %q", out.Text())
			}
			we, ok := errors.AsType[*wire.Error](err)
			if !ok {
				t.Fatalf("err = %T %v, want a *wire.Error", err, err)
			}
			msg := strings.ReplaceAll(err.Error(), srv.URL, "URL")
			got := want{code: errs.CodeOf(err), kind: we.Kind, msg: msg, retry: we.RetryAfter, canRetry: we.Retryable(), events: events}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("the error contains the API key: %v", err)
			}
		})
	}
}

// TestRequest checks what is sent: the endpoint, the headers (x-api-key,
// anthropic-version) and the body with a forced tool.
func TestRequest(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.AnthropicStream("m", []string{"ok"}, 1, 1)})
	c := &anthropic.Client{BaseURL: srv.URL + "/", APIKey: key}
	req := request()
	req.Tools = []anthropic.Tool{{Name: "answer", InputSchema: json.RawMessage(`{"type":"object"}`)}}
	req.ToolChoice = &anthropic.ToolChoice{Type: "tool", Name: "answer"}
	if _, err := c.StreamMessage(t.Context(), req, nil); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.Path != "/v1/messages" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}
	for h, want := range map[string]string{"X-Api-Key": key, "Anthropic-Version": "2023-06-01", "Content-Type": "application/json"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if _, ok := r.Header["Authorization"]; ok {
		t.Error("Authorization header sent to Anthropic")
	}
	want := `{"model":"claude-sonnet-4-5","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Capital of France?"}]}],"stream":true,"tools":[{"name":"answer","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"answer"}}`
	if r.Body != want {
		t.Errorf("body:\n got %s\nwant %s", r.Body, want)
	}
}

// TestNoKey: without an API key nothing is sent.
func TestNoKey(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.AnthropicMessage("m", "hi", 1, 1)})
	_, err := (&anthropic.Client{BaseURL: srv.URL}).CreateMessage(t.Context(), request())
	if err == nil || err.Error() != "anthropic: authentication failed: check api_key: no api_key configured" || errs.CodeOf(err) != errs.Unauthorized {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent without a key", n)
	}
}

// TestCancel checks that cancelling the context aborts the upstream request
// mid-stream, and that the server sees it.
func TestCancel(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.AnthropicStream("m", []string{"Hello"}, 1, 1)[:4], Hang: true})
	c := &anthropic.Client{BaseURL: srv.URL, APIKey: key}
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.StreamMessage(ctx, request(), func(ev *anthropic.StreamEvent) error {
		if ev.Type == "content_block_delta" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-srv.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the request cancelled")
	}
}
