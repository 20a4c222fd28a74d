package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents/llm/llmtest"
	"mcptower/agents/llm/openai"
	"mcptower/agents/llm/wire"
	"mcptower/internal/errs"
)

const key = "sk-test-0123456789abcdef1234"

func request() *openai.ChatRequest {
	return &openai.ChatRequest{
		Model: "gpt-4o-mini",
		Messages: []openai.Message{
			{Role: "system", Content: "Be brief."},
			{Role: "user", Content: "Capital of France?"},
		},
		MaxTokens: 50,
	}
}

// TestWireFormat checks every response shape, streamed and not: the text,
// usage and finish reason, or the mapped error with its code, kind and
// readable message.
func TestWireFormat(t *testing.T) {
	type want struct {
		text     string
		usage    *openai.Usage
		finish   string
		chunks   int // onChunk calls (streaming)
		code     errs.Code
		kind     wire.Kind
		msg      string // the whole error message
		retry    time.Duration
		canRetry bool
	}
	answer := []string{"The", " capital", " is", " Paris."}
	tests := []struct {
		name   string
		stream bool
		reply  llmtest.Reply
		want   want
	}{
		{
			name:  "complete",
			reply: llmtest.Reply{Body: llmtest.OpenAIChat("gpt-4o-mini-2024-07-18", "The capital is Paris.", 14, 8)},
			want:  want{text: "The capital is Paris.", usage: &openai.Usage{PromptTokens: 14, CompletionTokens: 8, TotalTokens: 22}, finish: "stop"},
		},
		{
			name:   "streamed",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini-2024-07-18", answer, 14, 8)},
			want:   want{text: "The capital is Paris.", usage: &openai.Usage{PromptTokens: 14, CompletionTokens: 8, TotalTokens: 22}, finish: "stop", chunks: 7},
		},
		{
			name:   "streamed by Ollama",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.OllamaStream("llama3.2", answer, 30, 4)},
			want:   want{text: "The capital is Paris.", usage: &openai.Usage{PromptTokens: 30, CompletionTokens: 4, TotalTokens: 34}, finish: "stop", chunks: 6},
		},
		{
			name:   "streamed request answered in one piece",
			stream: true,
			reply:  llmtest.Reply{Body: llmtest.OpenAIChat("llama3.2", "The capital is Paris.", 30, 7)},
			want:   want{text: "The capital is Paris.", usage: &openai.Usage{PromptTokens: 30, CompletionTokens: 7, TotalTokens: 37}, finish: "stop"},
		},
		{
			name:   "streamed with CRLF, comments and no [DONE]",
			stream: true,
			reply: llmtest.Reply{Chunks: []string{
				": keep-alive\r\n\r\n",
				"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":null}]}\r\n\r\n",
				"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n",
			}},
			want: want{text: "ok", finish: "length", chunks: 2},
		},
		{
			name:  "401",
			reply: llmtest.Reply{Status: 401, Body: llmtest.OpenAIUnauthorized},
			want: want{code: errs.Unauthorized, kind: wire.KindAuth,
				msg: "openai: authentication failed (401): check api_key: Incorrect API key provided: sk-test-****************************1234. You can find your API key at https://platform.openai.com/account/api-keys."},
		},
		{
			name:  "404 model",
			reply: llmtest.Reply{Status: 404, Body: llmtest.OpenAIModelNotFound},
			want: want{code: errs.NotFound, kind: wire.KindModelNotFound,
				msg: "openai: model \"gpt-4o-mini\" not found (404): The model `gpt-nope` does not exist or you do not have access to it."},
		},
		{
			name:  "404 model from Ollama",
			reply: llmtest.Reply{Status: 404, Body: llmtest.OllamaModelNotFound},
			want: want{code: errs.NotFound, kind: wire.KindModelNotFound,
				msg: `openai: model "gpt-4o-mini" not found (404): model "llama9" not found, try pulling it first`},
		},
		{
			name:  "404 wrong URL",
			reply: llmtest.Reply{Status: 404, Body: "404 page not found\n", Header: map[string]string{"Content-Type": "text/plain"}},
			want:  want{code: errs.NotFound, kind: wire.KindEndpointNotFound, msg: "openai: URL/chat/completions not found (404): check base_url"},
		},
		{
			name:  "429 with Retry-After",
			reply: llmtest.Reply{Status: 429, Body: llmtest.OpenAIRateLimited, Header: map[string]string{"Retry-After": "2"}},
			want: want{code: errs.RateLimited, kind: wire.KindRateLimited, retry: 2 * time.Second, canRetry: true,
				msg: "openai: rate limited, retry after 2s: Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more."},
		},
		{
			name:  "429 with retry-after-ms",
			reply: llmtest.Reply{Status: 429, Body: llmtest.OpenAIRateLimited, Header: map[string]string{"Retry-After-Ms": "1500", "Retry-After": "2"}},
			want: want{code: errs.RateLimited, kind: wire.KindRateLimited, retry: 1500 * time.Millisecond, canRetry: true,
				msg: "openai: rate limited, retry after 1.5s: Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more."},
		},
		{
			name:  "429 out of quota",
			reply: llmtest.Reply{Status: 429, Body: llmtest.OpenAIQuota},
			want: want{code: errs.RateLimited, kind: wire.KindQuota,
				msg: "openai: quota exceeded (429): check the account's plan and billing: You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."},
		},
		{
			name:  "500",
			reply: llmtest.Reply{Status: 500, Body: llmtest.OpenAIServerError},
			want: want{code: errs.Unavailable, kind: wire.KindServer, canRetry: true,
				msg: "openai: server error (500): The server had an error while processing your request. Sorry about that!"},
		},
		{
			name:  "502 from a proxy",
			reply: llmtest.Reply{Status: 502, Body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n", Header: map[string]string{"Content-Type": "text/html"}},
			want: want{code: errs.Unavailable, kind: wire.KindServer, canRetry: true,
				msg: "openai: server error (502): <html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html>"},
		},
		{
			name:  "400 context too long",
			reply: llmtest.Reply{Status: 400, Body: llmtest.OpenAIContextTooLong},
			want: want{code: errs.Invalid, kind: wire.KindContextTooLong,
				msg: "openai: context too long: This model's maximum context length is 128000 tokens. However, your messages resulted in 130542 tokens. Please reduce the length of the messages."},
		},
		{
			name:   "malformed chunk",
			stream: true,
			reply: llmtest.Reply{Chunks: []string{
				llmtest.OpenAIStream("gpt-4o-mini", []string{"Hi"}, 1, 1)[1],
				"data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\n\n",
			}},
			want: want{code: errs.Unavailable, kind: wire.KindMalformed, chunks: 1,
				msg: `openai: malformed response: stream chunk is not JSON: {"id":"chatcmpl-x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel`},
		},
		{
			name:   "connection cut mid-stream",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini", answer, 14, 8)[:3], Cut: true},
			want:   want{code: errs.Unavailable, kind: wire.KindStream, chunks: 3, canRetry: true, msg: "openai: response stream interrupted: unexpected EOF"},
		},
		{
			name:   "stream ends without finishing",
			stream: true,
			reply:  llmtest.Reply{Chunks: llmtest.OpenAIStream("gpt-4o-mini", answer, 14, 8)[:3]},
			want: want{code: errs.Unavailable, kind: wire.KindStream, chunks: 3, canRetry: true,
				msg: "openai: response stream interrupted: the stream ended before the answer was complete (no [DONE])"},
		},
		{
			name:   "error chunk mid-stream",
			stream: true,
			reply: llmtest.Reply{Chunks: []string{
				llmtest.OpenAIStream("gpt-4o-mini", []string{"Hi"}, 1, 1)[1],
				llmtest.SSE("", `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`),
			}},
			want: want{code: errs.Unavailable, kind: wire.KindServer, chunks: 1, canRetry: true,
				msg: "openai: server error: The server had an error while processing your request. Sorry about that!"},
		},
		{
			name:  "connection reset",
			reply: llmtest.Reply{Cut: true},
			want:  want{code: errs.Unavailable, kind: wire.KindTransport, canRetry: true, msg: "openai: request to URL failed (is the server running? check base_url): EOF"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := llmtest.NewServer(t, tt.reply)
			c := &openai.Client{BaseURL: srv.URL + "/v1", APIKey: key}
			var out *openai.ChatCompletion
			var err error
			chunks := 0
			if tt.stream {
				out, err = c.StreamChatCompletion(t.Context(), request(), func(*openai.ChatCompletionChunk) error { chunks++; return nil })
			} else {
				out, err = c.CreateChatCompletion(t.Context(), request())
			}
			if tt.want.chunks != chunks {
				t.Errorf("onChunk called %d times, want %d", chunks, tt.want.chunks)
			}
			if tt.want.msg == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				got := want{text: out.Text(), usage: out.Usage, finish: out.Choices[0].FinishReason, chunks: chunks}
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
			msg := strings.ReplaceAll(err.Error(), srv.URL+"/v1", "URL")
			got := want{code: errs.CodeOf(err), kind: we.Kind, msg: msg, retry: we.RetryAfter, canRetry: we.Retryable(), chunks: chunks}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("the error contains the API key: %v", err)
			}
		})
	}
}

// TestRequest checks what is sent: the endpoint, the headers, and the body
// of a streamed request with structured output.
func TestRequest(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{`{"a":1}`}, 1, 1)})
	c := &openai.Client{BaseURL: srv.URL + "/v1/", APIKey: key}
	req := request()
	temp := 0.2
	req.Temperature = &temp
	req.ResponseFormat = &openai.ResponseFormat{Type: "json_schema", JSONSchema: &openai.JSONSchema{Name: "answer", Schema: json.RawMessage(`{"type":"object"}`), Strict: true}}
	if _, err := c.StreamChatCompletion(t.Context(), req, nil); err != nil {
		t.Fatal(err)
	}
	if req.Stream || req.StreamOptions != nil {
		t.Error("StreamChatCompletion modified the caller's request")
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.Path != "/v1/chat/completions" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+key {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	want := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"}],"max_tokens":50,"temperature":0.2,"stream":true,"stream_options":{"include_usage":true},"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}}}`
	if r.Body != want {
		t.Errorf("body:\n got %s\nwant %s", r.Body, want)
	}

	// Without a key (a local server), no Authorization header at all.
	srv2 := llmtest.NewServer(t, llmtest.Reply{Body: llmtest.OpenAIChat("m", "hi", 1, 1)})
	if _, err := (&openai.Client{BaseURL: srv2.URL}).CreateChatCompletion(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
	r = srv2.Requests()[0]
	if _, ok := r.Header["Authorization"]; ok {
		t.Error("Authorization sent without a key")
	}
	if strings.Contains(r.Body, `"stream"`) {
		t.Errorf("non-streamed body mentions stream: %s", r.Body)
	}
}

// TestCancel checks that cancelling the context aborts the upstream request
// mid-stream, and that the server sees it.
func TestCancel(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Reply{Chunks: llmtest.OpenAIStream("m", []string{"Hello"}, 1, 1)[:2], Hang: true})
	c := &openai.Client{BaseURL: srv.URL}
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.StreamChatCompletion(ctx, request(), func(ch *openai.ChatCompletionChunk) error {
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content == "Hello" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if we, ok := errors.AsType[*wire.Error](err); !ok || we.Retryable() {
		t.Errorf("a cancelled call must not be retryable: %v", err)
	}
	select {
	case <-srv.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the request cancelled")
	}
}

// TestRefusal: a model refusing (structured outputs) is an error saying so.
func TestRefusal(t *testing.T) {
	body := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I cannot assist with that request."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`
	srv := llmtest.NewServer(t, llmtest.Reply{Body: body})
	_, err := (&openai.Client{BaseURL: srv.URL}).CreateChatCompletion(t.Context(), request())
	if err == nil || err.Error() != "openai: the model refused to answer: I'm sorry, I cannot assist with that request." || errs.CodeOf(err) != errs.Invalid {
		t.Fatalf("err = %v (%v)", err, errs.CodeOf(err))
	}
}
