// Package anthropic is a small client of the Anthropic Messages API
// (POST {base_url}/v1/messages) over net/http: system prompt, messages,
// forced tool use for structured output, streaming (the message_start,
// content_block_start, content_block_delta, content_block_stop,
// message_delta, message_stop, ping and error events), usage, and errors
// mapped to readable messages with domain codes (see package wire).
package anthropic

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

// DefaultBaseURL is Anthropic's API.
const DefaultBaseURL = "https://api.anthropic.com"

// APIVersion is sent as the anthropic-version header.
const APIVersion = "2023-06-01"

const provider = "anthropic"

// MaxResponseBytes bounds a non-streamed response body.
const MaxResponseBytes = 16 << 20

// Client calls the Messages API. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the API root without the version ("https://api.anthropic.com");
	// "" means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as the x-api-key header. Required: without it every
	// call fails with wire.KindAuth, without sending anything.
	APIKey string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	// Timeouts come from the context.
	HTTPClient *http.Client
}

// MessageRequest is the body of POST /v1/messages.
type MessageRequest struct {
	Model string `json:"model"`
	// MaxTokens caps the answer; the API requires it.
	MaxTokens   int       `json:"max_tokens"`
	System      string    `json:"system,omitempty"`
	Messages    []Message `json:"messages"`
	Temperature *float64  `json:"temperature,omitempty"`
	// Stream is set by StreamMessage and cleared by CreateMessage.
	Stream     bool        `json:"stream,omitempty"`
	Tools      []Tool      `json:"tools,omitempty"`
	ToolChoice *ToolChoice `json:"tool_choice,omitempty"`
}

// Message is one turn of the conversation.
type Message struct {
	// Role is "user" or "assistant".
	Role    string         `json:"role"`
	Content []ContentBlock `json:"content"`
}

// TextMessage returns a message with one text block.
func TextMessage(role, text string) Message {
	return Message{Role: role, Content: []ContentBlock{{Type: "text", Text: text}}}
}

// ContentBlock is a block of a message: text, or a tool call.
type ContentBlock struct {
	// Type is "text" or "tool_use".
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	// ID, Name and Input describe a tool_use block.
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// Tool is a tool the model may call; mcptower uses one, forced through
// ToolChoice, to get JSON that matches a schema.
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// InputSchema must describe an object.
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolChoice says which tool the model must call.
type ToolChoice struct {
	// Type is "auto", "any", "tool" (with Name) or "none".
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// MessageResponse is a complete (non-streamed, or reassembled) answer.
type MessageResponse struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Role    string         `json:"role"`
	Model   string         `json:"model"`
	Content []ContentBlock `json:"content"`
	// StopReason is "end_turn", "max_tokens", "stop_sequence", "tool_use",
	// "refusal", ...
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Text returns the concatenated text blocks.
func (m *MessageResponse) Text() string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// ToolInput returns the input of the first call of the named tool, or nil.
func (m *MessageResponse) ToolInput(name string) json.RawMessage {
	for _, c := range m.Content {
		if c.Type == "tool_use" && c.Name == name {
			return c.Input
		}
	}
	return nil
}

// Usage counts tokens. Input tokens read from or written to the prompt
// cache are counted separately by the API.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens,omitempty"`
}

// StreamEvent is one event of a streamed answer.
type StreamEvent struct {
	// Type is the event: message_start, content_block_start,
	// content_block_delta, content_block_stop, message_delta,
	// message_stop, ping or error.
	Type string `json:"type"`
	// Message is the (empty) answer of message_start.
	Message *MessageResponse `json:"message,omitempty"`
	// Index is the content block of the content_block_* events.
	Index int `json:"index"`
	// ContentBlock starts a block (content_block_start).
	ContentBlock *ContentBlock `json:"content_block,omitempty"`
	// Delta is the increment of content_block_delta and message_delta.
	Delta *Delta `json:"delta,omitempty"`
	// Usage is the cumulative usage of message_delta.
	Usage *Usage `json:"usage,omitempty"`
	// Error is the failure of an error event.
	Error *ErrorBody `json:"error,omitempty"`
}

// Delta is a content_block_delta's or message_delta's increment.
type Delta struct {
	// Type is "text_delta" or "input_json_delta" (content_block_delta).
	Type        string `json:"type,omitempty"`
	Text        string `json:"text,omitempty"`
	PartialJSON string `json:"partial_json,omitempty"`
	// StopReason ends the message (message_delta).
	StopReason   string  `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// ErrorBody is the "error" object of an error response or event.
type ErrorBody struct {
	// Type is invalid_request_error, authentication_error,
	// permission_error, not_found_error, request_too_large,
	// rate_limit_error, api_error or overloaded_error.
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (c *Client) url() string {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimSuffix(base, "/") + "/v1/messages"
}

// CreateMessage sends req without streaming and returns the answer. Errors
// are *wire.Error values wrapped with their domain code.
func (c *Client) CreateMessage(ctx context.Context, req *MessageRequest) (*MessageResponse, error) {
	r := *req
	r.Stream = false
	resp, err := c.post(ctx, &r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.decodeMessage(resp.Body)
}

func (c *Client) decodeMessage(body io.Reader) (*MessageResponse, error) {
	data, err := io.ReadAll(io.LimitReader(body, MaxResponseBytes+1))
	if err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindStream, Err: err})
	}
	if len(data) > MaxResponseBytes {
		return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: fmt.Sprintf("response larger than %d bytes", MaxResponseBytes)})
	}
	var out MessageResponse
	if err := json.Unmarshal(data, &out); err != nil || (out.Type != "" && out.Type != "message") {
		return nil, c.fail(&wire.Error{Kind: wire.KindMalformed, Message: "not a message: " + wire.PlainText(data), Err: err})
	}
	return &out, nil
}

// StreamMessage sends req with streaming, calls onEvent (if not nil) for
// every event as it arrives, and returns the reassembled answer. An error
// from onEvent stops the stream and is returned as is. A stream that ends
// before message_stop (or a stop reason) is an error of kind
// wire.KindStream; cancelling ctx aborts the request.
func (c *Client) StreamMessage(ctx context.Context, req *MessageRequest, onEvent func(*StreamEvent) error) (*MessageResponse, error) {
	r := *req
	r.Stream = true
	resp, err := c.post(ctx, &r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/json" {
		// A server that does not stream answers in one piece.
		return c.decodeMessage(resp.Body)
	}

	var out *MessageResponse
	var parts []*strings.Builder // text or partial JSON, per content block
	var closed []bool
	sse := wire.NewSSEReader(resp.Body)
	malformed := func(data []byte, err error) error {
		return c.fail(&wire.Error{Kind: wire.KindMalformed, Message: "unexpected stream event: " + wire.PlainText(data), Err: err})
	}
	for done := false; !done; {
		ev, err := sse.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && out != nil && out.StopReason != "" {
				break // closed without message_stop after the stop reason
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the stream ended before message_stop")
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
			return nil, c.fail(&wire.Error{Kind: wire.KindStream, Err: err})
		}
		var se StreamEvent
		if err := json.Unmarshal(ev.Data, &se); err != nil {
			return nil, malformed(ev.Data, err)
		}
		if se.Type == "" {
			se.Type = ev.Name
		}
		switch se.Type {
		case "ping":
		case "error":
			if se.Error == nil {
				return nil, malformed(ev.Data, nil)
			}
			return nil, c.fail(c.bodyError(0, se.Error, r.Model, nil))
		case "message_start":
			if se.Message == nil {
				return nil, malformed(ev.Data, nil)
			}
			out = se.Message
			out.Content = nil
		case "content_block_start", "content_block_delta", "content_block_stop":
			if out == nil || se.Index < 0 || se.Index > len(out.Content) || (se.Type != "content_block_start" && se.Index == len(out.Content)) {
				return nil, malformed(ev.Data, errors.New("content block out of order"))
			}
			switch se.Type {
			case "content_block_start":
				if se.ContentBlock == nil || se.Index != len(out.Content) {
					return nil, malformed(ev.Data, errors.New("content block out of order"))
				}
				b := *se.ContentBlock
				sb := &strings.Builder{}
				if b.Type == "text" {
					sb.WriteString(b.Text)
				}
				out.Content = append(out.Content, b)
				parts = append(parts, sb)
				closed = append(closed, false)
			case "content_block_delta":
				if se.Delta == nil {
					return nil, malformed(ev.Data, nil)
				}
				parts[se.Index].WriteString(se.Delta.Text)
				parts[se.Index].WriteString(se.Delta.PartialJSON)
			case "content_block_stop":
				finishBlock(&out.Content[se.Index], parts[se.Index].String())
				closed[se.Index] = true
			}
		case "message_delta":
			if out == nil {
				return nil, malformed(ev.Data, errors.New("message_delta before message_start"))
			}
			if se.Delta != nil && se.Delta.StopReason != "" {
				out.StopReason = se.Delta.StopReason
				out.StopSequence = se.Delta.StopSequence
			}
			if u := se.Usage; u != nil {
				// Cumulative counts; input counts appear here only in
				// newer API versions.
				out.Usage.OutputTokens = u.OutputTokens
				if u.InputTokens > 0 {
					out.Usage.InputTokens = u.InputTokens
				}
				if u.CacheCreationInputTokens > 0 {
					out.Usage.CacheCreationInputTokens = u.CacheCreationInputTokens
				}
				if u.CacheReadInputTokens > 0 {
					out.Usage.CacheReadInputTokens = u.CacheReadInputTokens
				}
			}
		case "message_stop":
			if out == nil {
				return nil, malformed(ev.Data, errors.New("message_stop before message_start"))
			}
			done = true
		default:
			// New event types may be added; the API says to ignore them.
		}
		if onEvent != nil {
			if err := onEvent(&se); err != nil {
				return nil, err
			}
		}
	}
	// Blocks never stopped (the stream closed early after a stop reason)
	// keep what arrived.
	for i := range out.Content {
		if !closed[i] {
			finishBlock(&out.Content[i], parts[i].String())
		}
	}
	return out, nil
}

// finishBlock stores a block's accumulated text or tool input.
func finishBlock(b *ContentBlock, acc string) {
	switch b.Type {
	case "text":
		b.Text = acc
	case "tool_use":
		if strings.TrimSpace(acc) == "" {
			if len(b.Input) == 0 {
				b.Input = json.RawMessage(`{}`)
			}
			return
		}
		b.Input = json.RawMessage(acc)
	}
}

func (c *Client) post(ctx context.Context, req *MessageRequest) (*http.Response, error) {
	if c.APIKey == "" {
		return nil, c.fail(&wire.Error{Kind: wire.KindAuth, Message: "no api_key configured"})
	}
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
	hreq.Header.Set("Anthropic-Version", APIVersion)
	hreq.Header.Set("X-Api-Key", c.APIKey)
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, c.fail(&wire.Error{Kind: wire.KindTransport, URL: strings.TrimSuffix(u, "/v1/messages"), Err: err})
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data := wire.ReadErrorBody(resp.Body)
	var env struct {
		Type  string     `json:"type"`
		Error *ErrorBody `json:"error"`
	}
	body2 := &ErrorBody{Message: wire.PlainText(data)}
	if json.Unmarshal(data, &env) == nil && env.Error != nil {
		body2 = env.Error
	}
	e := c.bodyError(resp.StatusCode, body2, req.Model, resp.Header)
	if e.Kind == wire.KindEndpointNotFound {
		e.URL = u
	}
	return nil, c.fail(e)
}

// bodyError classifies an error body (from a response, or an error event
// when status is 0).
func (c *Client) bodyError(status int, b *ErrorBody, model string, h http.Header) *wire.Error {
	e := &wire.Error{Status: status, Type: b.Type, Message: wire.Redact(b.Message, c.APIKey), Model: model}
	if h != nil {
		e.RetryAfter = wire.RetryAfter(h, time.Now())
	}
	kind := wire.StatusKind(status)
	switch b.Type {
	case "authentication_error":
		kind = wire.KindAuth
	case "permission_error":
		kind = wire.KindPermission
	case "rate_limit_error":
		kind = wire.KindRateLimited
	case "overloaded_error":
		kind = wire.KindOverloaded
	case "api_error":
		kind = wire.KindServer
	case "request_too_large":
		kind = wire.KindBadRequest
	case "not_found_error":
		kind = wire.KindEndpointNotFound
		if strings.HasPrefix(strings.ToLower(b.Message), "model") {
			kind = wire.KindModelNotFound
		}
	case "invalid_request_error":
		kind = wire.KindBadRequest
	}
	if kind == wire.KindBadRequest && wire.LooksLikeContextTooLong(b.Type, b.Message) {
		kind = wire.KindContextTooLong
	}
	if kind == wire.KindEndpointNotFound && status == 0 {
		kind = wire.KindOther
	}
	e.Kind = kind
	return e
}

func (c *Client) fail(e *wire.Error) error {
	e.Provider = provider
	return e.Wrap()
}
