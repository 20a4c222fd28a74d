// Package openai is a small client of the OpenAI Chat Completions API
// (POST {base_url}/chat/completions) over net/http, as spoken by OpenAI and
// by the local servers people run: Ollama, vLLM, llama.cpp's server, LM
// Studio. It covers what mcptower's llm agents need: system and user
// messages, streaming (SSE "data:" chunks ending with "data: [DONE]", usage
// in the last chunk), JSON-schema structured output, and errors mapped to
// readable messages with domain codes (see package wire).
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"mcptower/agents/llm/wire"
)

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// provider names the API in error messages.
const provider = "openai"

// MaxResponseBytes bounds a non-streamed response body.
const MaxResponseBytes = 16 << 20

// Client calls one Chat Completions endpoint. The zero value calls OpenAI
// without a key; a Client is safe for concurrent use.
type Client struct {
	// BaseURL is the API root, up to and including the version
	// ("https://api.openai.com/v1", "http://127.0.0.1:11434/v1"); "" means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>"; "" sends no
	// Authorization header (local servers need none).
	APIKey string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	// Timeouts come from the context.
	HTTPClient *http.Client
}

// ChatRequest is the body of POST /chat/completions.
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	// MaxTokens caps the answer; 0 leaves it to the server.
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	// Stream is set by StreamChatCompletion and cleared by
	// CreateChatCompletion.
	Stream bool `json:"stream,omitempty"`
	// StreamOptions asks for usage in the last chunk; set by
	// StreamChatCompletion.
	StreamOptions  *StreamOptions  `json:"stream_options,omitempty"`
	ResponseFormat *ResponseFormat `json:"response_format,omitempty"`
}

// Message is one message of the conversation.
type Message struct {
	// Role is "system", "user" or "assistant".
	Role    string `json:"role"`
	Content string `json:"content"`
}

// StreamOptions configure a streamed response.
type StreamOptions struct {
	// IncludeUsage adds a last chunk, with no choices, carrying the usage.
	IncludeUsage bool `json:"include_usage"`
}

// ResponseFormat asks for structured output.
type ResponseFormat struct {
	// Type is "json_schema" (with JSONSchema), "json_object" or "text".
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is the schema the answer must match.
type JSONSchema struct {
	// Name identifies the schema: letters, digits, '_' and '-', at most 64.
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	// Strict makes OpenAI enforce the schema exactly; it then only accepts
	// schemas where every object has additionalProperties: false and
	// lists every property as required.
	Strict bool `json:"strict,omitempty"`
}

// ChatCompletion is a complete (non-streamed, or reassembled) response.
type ChatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	Choices           []Choice `json:"choices"`
	// Usage is nil when the server does not report it.
	Usage *Usage `json:"usage,omitempty"`
}

// Text returns the content of the first choice.
func (c *ChatCompletion) Text() string {
	if len(c.Choices) == 0 {
		return ""
	}
	return c.Choices[0].Message.Content
}

// Choice is one answer.
type Choice struct {
	Index   int             `json:"index"`
	Message ResponseMessage `json:"message"`
	// FinishReason is "stop", "length", "content_filter", "tool_calls".
	FinishReason string `json:"finish_reason"`
}

// ResponseMessage is the model's message.
type ResponseMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Refusal is set (and Content empty) when the model declined.
	Refusal string `json:"refusal,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// ChatCompletionChunk is one "data:" event of a streamed response.
type ChatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	// Usage is set on the last chunk when StreamOptions.IncludeUsage.
	Usage *Usage `json:"usage,omitempty"`
	// Error is set when the server fails mid-stream.
	Error *ErrorBody `json:"error,omitempty"`
}

// ChunkChoice is one choice's increment.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the text added by one chunk.
type Delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
	Refusal string `json:"refusal,omitempty"`
}

// ErrorBody is the "error" object of an error response.
type ErrorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param,omitempty"`
	// Code is a string ("model_not_found"), a number or null, depending on
	// the server.
	Code any `json:"code,omitempty"`
}

func (c *Client) url() string {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimSuffix(base, "/") + "/chat/completions"
}

// CreateChatCompletion sends req without streaming and returns the answer.
// Errors are *wire.Error values wrapped with their domain code.
func (c *Client) CreateChatCompletion(ctx context.Context, req *ChatRequest) (*ChatCompletion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	resp, err := c.post(ctx, &r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.decodeCompletion(resp.Body)
}

// isJSON reports whether a response is a JSON document (not an SSE stream).
func isJSON(resp *http.Response) bool {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return ct == "application/json"
}

func (c *Client) decodeCompletion(body io.Reader) (*ChatCompletion, error) {
	data, err := io.ReadAll(io.LimitReader(body, MaxResponseBytes+1))
	if err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindStream, Err: err})
	}
	if len(data) > MaxResponseBytes {
		return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: fmt.Sprintf("response larger than %d bytes", MaxResponseBytes)})
	}
	var out ChatCompletion
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: "not a chat completion: " + wire.PlainText(data), Err: err})
	}
	if len(out.Choices) == 0 {
		return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: "the response has no choices"})
	}
	if r := out.Choices[0].Message.Refusal; r != "" {
		return nil, c.fail(&wire.Error{Kind: wire.KindRefused, Message: r})
	}
	return &out, nil
}

// StreamChatCompletion sends req with streaming, calls onChunk (if not nil)
// for every chunk as it arrives, and returns the reassembled answer. An
// error from onChunk stops the stream and is returned as is. A stream that
// ends without "data: [DONE]" (or a finish reason) is an error of kind
// wire.KindStream; cancelling ctx aborts the request.
func (c *Client) StreamChatCompletion(ctx context.Context, req *ChatRequest, onChunk func(*ChatCompletionChunk) error) (*ChatCompletion, error) {
	r := *req
	r.Stream = true
	if r.StreamOptions == nil {
		r.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	resp, err := c.post(ctx, &r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if isJSON(resp) {
		// A server that does not stream answers in one piece.
		return c.decodeCompletion(resp.Body)
	}

	out := &ChatCompletion{Object: "chat.completion"}
	var text, refusal strings.Builder
	finished := false
	sse := wire.NewSSEReader(resp.Body)
	for {
		ev, err := sse.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && finished {
				break // some servers close without [DONE] after the finish reason
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the stream ended before the answer was complete (no [DONE])")
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
			return nil, c.fail(&wire.Error{Kind: wire.KindStream, Err: err})
		}
		data := bytes.TrimSpace(ev.Data)
		if string(data) == "[DONE]" {
			break
		}
		var chunk ChatCompletionChunk
		if err := json.Unmarshal(data, &chunk); err != nil {
			return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: "stream chunk is not JSON: " + wire.PlainText(data), Err: err})
		}
		if chunk.Error != nil {
			return nil, c.fail(c.bodyError(0, chunk.Error, r.Model, nil))
		}
		if out.ID == "" {
			out.ID, out.Created, out.Model, out.SystemFingerprint = chunk.ID, chunk.Created, chunk.Model, chunk.SystemFingerprint
		}
		if chunk.Usage != nil {
			out.Usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue // mcptower asks for one choice
			}
			text.WriteString(ch.Delta.Content)
			refusal.WriteString(ch.Delta.Refusal)
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				finished = true
				if len(out.Choices) == 0 {
					out.Choices = []Choice{{}}
				}
				out.Choices[0].FinishReason = *ch.FinishReason
			}
		}
		if onChunk != nil {
			if err := onChunk(&chunk); err != nil {
				return nil, err
			}
		}
	}
	if len(out.Choices) == 0 {
		out.Choices = []Choice{{}}
	}
	out.Choices[0].Message = ResponseMessage{Role: "assistant", Content: text.String(), Refusal: refusal.String()}
	if refusal.Len() > 0 {
		return nil, c.fail(&wire.Error{Kind: wire.KindRefused, Message: refusal.String()})
	}
	return out, nil
}

// post sends the request and returns a 2xx response; anything else is a
// mapped error.
func (c *Client) post(ctx context.Context, req *ChatRequest) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", provider, err)
	}
	u := c.url()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindTransport, Message: "invalid base_url", Err: err})
	}
	hreq.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindTransport, URL: strings.TrimSuffix(u, "/chat/completions"), Err: err})
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.fail(c.responseError(resp, req.Model, u))
}

// responseError maps an error response.
func (c *Client) responseError(resp *http.Response, model, u string) *wire.Error {
	data := wire.ReadErrorBody(resp.Body)
	// {"error": {...}} from OpenAI, vLLM, llama.cpp, LM Studio; Ollama's
	// native errors and some proxies send {"error": "message"}.
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	var body *ErrorBody
	if json.Unmarshal(data, &env) == nil && len(env.Error) > 0 {
		var eb ErrorBody
		var s string
		switch {
		case json.Unmarshal(env.Error, &eb) == nil:
			body = &eb
		case json.Unmarshal(env.Error, &s) == nil:
			body = &ErrorBody{Message: s}
		}
	}
	if body == nil {
		body = &ErrorBody{Message: wire.PlainText(data)}
	}
	e := c.bodyError(resp.StatusCode, body, model, resp.Header)
	if e.Kind == wire.KindEndpointNotFound {
		e.URL = u
		if e.Message == "404 page not found" { // Go servers' default
			e.Message = ""
		}
	}
	return e
}

// bodyError classifies an error body (from a response, or a mid-stream
// error chunk when status is 0).
func (c *Client) bodyError(status int, b *ErrorBody, model string, h http.Header) *wire.Error {
	code := ""
	switch v := b.Code.(type) {
	case string:
		code = v
	case float64:
		code = fmt.Sprint(v)
	}
	typ := code
	if typ == "" {
		typ = b.Type
	}
	e := &wire.Error{Status: status, Type: typ, Message: wire.Redact(b.Message, c.APIKey), Model: model}
	if h != nil {
		e.RetryAfter = wire.RetryAfter(h, time.Now())
	}
	kind := wire.StatusKind(status)
	msg := strings.ToLower(b.Message)
	switch {
	case code == "insufficient_quota":
		kind = wire.KindQuota
	case code == "model_not_found" || (status == http.StatusNotFound && strings.Contains(msg, "model")):
		kind = wire.KindModelNotFound
	case (status == 0 || kind == wire.KindBadRequest) && wire.LooksLikeContextTooLong(code, b.Message):
		kind = wire.KindContextTooLong
	case status == 0 && (b.Type == "server_error" || b.Type == "api_error"):
		kind = wire.KindServer
	case status == 0:
		kind = wire.KindOther
	}
	e.Kind = kind
	return e
}

func (c *Client) fail(e *wire.Error) error {
	e.Provider = provider
	return e.Wrap()
}
