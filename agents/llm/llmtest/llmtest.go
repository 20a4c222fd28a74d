// Package llmtest provides fake LLM provider servers for tests, in the
// manner of net/http/httptest: a Server answers each request with the next
// scripted Reply and records what it received, and the helpers build
// replies byte for byte as OpenAI's Chat Completions API (and the local
// servers that copy it) and Anthropic's Messages API send them: complete
// responses, SSE streams, error bodies, broken connections.
package llmtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is added to the response. Content-Type defaults to
	// application/json, or text/event-stream when Chunks is set.
	Header map[string]string
	// Body is written in one piece.
	Body string
	// Chunks are written one by one, each flushed, Delay apart (an SSE
	// stream, typically).
	Chunks []string
	// Delay is the pause before each chunk.
	Delay time.Duration
	// Cut drops the connection after Body and Chunks, without ending the
	// response: the client sees the stream break off. With nothing
	// written, the client gets no response at all (a connection reset).
	Cut bool
	// Hang keeps the response open after Body and Chunks until the client
	// goes away (cancels); the server records that in Cancelled.
	Hang bool
}

// Request is a request the server received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// Server is a fake provider API.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	replies   []Reply
	requests  []Request
	cancelled chan struct{}
	once      sync.Once
	done      chan struct{}
}

// NewServer starts a server that answers the i-th request with replies[i]
// (the last reply answers any further requests). It is closed when the test
// ends.
func NewServer(t testing.TB, replies ...Reply) *Server {
	s := &Server{replies: replies, cancelled: make(chan struct{}), done: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.done)
		s.Close()
	})
	return s
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Cancelled is closed when a client went away while a Hang reply was open.
func (s *Server) Cancelled() <-chan struct{} { return s.cancelled }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	var rep Reply
	switch {
	case len(s.replies) == 0:
		rep = Reply{Status: http.StatusInternalServerError, Body: "llmtest: no reply scripted"}
	case n < len(s.replies):
		rep = s.replies[n]
	default:
		rep = s.replies[len(s.replies)-1]
	}
	s.mu.Unlock()

	if rep.Cut && rep.Body == "" && len(rep.Chunks) == 0 {
		panic(http.ErrAbortHandler) // close the connection, answer nothing
	}
	ct := "application/json"
	if len(rep.Chunks) > 0 {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	flusher, _ := w.(http.Flusher)
	_, _ = io.WriteString(w, rep.Body)
	for _, c := range rep.Chunks {
		if flusher != nil {
			flusher.Flush()
		}
		if rep.Delay > 0 {
			select {
			case <-time.After(rep.Delay):
			case <-r.Context().Done():
				s.markCancelled()
				return
			case <-s.done:
				return
			}
		}
		if _, err := io.WriteString(w, c); err != nil {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	switch {
	case rep.Cut:
		panic(http.ErrAbortHandler)
	case rep.Hang:
		select {
		case <-r.Context().Done():
			s.markCancelled()
		case <-s.done:
		}
	}
}

func (s *Server) markCancelled() {
	s.once.Do(func() { close(s.cancelled) })
}

// SSE formats one Server-Sent Event: "event: NAME" (if name is not empty)
// and "data: DATA", ending with a blank line.
func SSE(name, data string) string {
	if name == "" {
		return "data: " + data + "\n\n"
	}
	return "event: " + name + "\ndata: " + data + "\n\n"
}

// --- OpenAI Chat Completions

// OpenAIChat is a complete chat.completion response answering text.
func OpenAIChat(model, text string, promptTokens, completionTokens int) string {
	return fmt.Sprintf(`{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": %q,
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": %s,
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": %d,
    "completion_tokens": %d,
    "total_tokens": %d,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_06737a9306"
}
`, model, jsonString(text), promptTokens, completionTokens, promptTokens+completionTokens)
}

// OpenAIStream is a streamed answer, as OpenAI sends it with
// stream_options.include_usage: a role chunk, one chunk per piece, a
// finish chunk, a usage chunk with no choices, and "data: [DONE]".
func OpenAIStream(model string, pieces []string, promptTokens, completionTokens int) []string {
	head := `{"id":"chatcmpl-B9N0kVo1Frj1fS0bXpGHJNMaIqk4B","object":"chat.completion.chunk","created":1741570283,"model":"` + model + `","service_tier":"default","system_fingerprint":"fp_06737a9306",`
	chunks := []string{SSE("", head+`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`)}
	for _, p := range pieces {
		chunks = append(chunks, SSE("", head+`"choices":[{"index":0,"delta":{"content":`+jsonString(p)+`},"logprobs":null,"finish_reason":null}],"usage":null}`))
	}
	chunks = append(chunks,
		SSE("", head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`),
		SSE("", head+fmt.Sprintf(`"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`, promptTokens, completionTokens, promptTokens+completionTokens)),
		"data: [DONE]\n\n",
	)
	return chunks
}

// OllamaStream is a streamed answer as Ollama's OpenAI-compatible endpoint
// sends it (role on every chunk, no logprobs, usage only when asked).
func OllamaStream(model string, pieces []string, promptTokens, completionTokens int) []string {
	head := `{"id":"chatcmpl-420","object":"chat.completion.chunk","created":1741570283,"model":"` + model + `","system_fingerprint":"fp_ollama",`
	var chunks []string
	for _, p := range pieces {
		chunks = append(chunks, SSE("", head+`"choices":[{"index":0,"delta":{"role":"assistant","content":`+jsonString(p)+`},"finish_reason":null}]}`))
	}
	chunks = append(chunks,
		SSE("", head+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`),
		SSE("", head+fmt.Sprintf(`"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, promptTokens, completionTokens, promptTokens+completionTokens)),
		"data: [DONE]\n\n",
	)
	return chunks
}

// OpenAI error bodies, as the API sends them.
const (
	OpenAIUnauthorized = `{
    "error": {
        "message": "Incorrect API key provided: sk-test-****************************1234. You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }
}
`
	OpenAIModelNotFound = `{
    "error": {
        "message": "The model ` + "`gpt-nope`" + ` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": null,
        "code": "model_not_found"
    }
}
`
	OllamaModelNotFound = `{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}
`
	OpenAIRateLimited = `{
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "requests",
        "param": null,
        "code": "rate_limit_exceeded"
    }
}
`
	OpenAIQuota = `{
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota",
        "param": null,
        "code": "insufficient_quota"
    }
}
`
	OpenAIServerError = `{
  "error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": null,
    "code": null
  }
}
`
	OpenAIContextTooLong = `{
  "error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130542 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded"
  }
}
`
)

// --- Anthropic Messages

// AnthropicMessage is a complete message answering text.
func AnthropicMessage(model, text string, inputTokens, outputTokens int) string {
	return fmt.Sprintf(`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%s}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":%d,"service_tier":"standard"}}`,
		model, jsonString(text), inputTokens, outputTokens)
}

// AnthropicToolMessage is a complete message whose answer is a call of
// tool with input (JSON).
func AnthropicToolMessage(model, tool, input string, inputTokens, outputTokens int) string {
	return fmt.Sprintf(`{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":%q,"content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":%q,"input":%s}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":%d,"service_tier":"standard"}}`,
		model, tool, input, inputTokens, outputTokens)
}

func anthropicStart(model string, inputTokens int) string {
	return SSE("message_start", `{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"`+model+`","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`+fmt.Sprint(inputTokens)+`,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}`)
}

// AnthropicStream is a streamed text answer with every event type the API
// sends: message_start, content_block_start, ping, content_block_delta
// (text_delta) per piece, content_block_stop, message_delta (stop reason,
// usage), message_stop.
func AnthropicStream(model string, pieces []string, inputTokens, outputTokens int) []string {
	chunks := []string{
		anthropicStart(model, inputTokens),
		SSE("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		SSE("ping", `{"type": "ping"}`),
	}
	for _, p := range pieces {
		chunks = append(chunks, SSE("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+jsonString(p)+`}}`))
	}
	return append(chunks,
		SSE("content_block_stop", `{"type":"content_block_stop","index":0}`),
		SSE("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":`+fmt.Sprint(outputTokens)+`}}`),
		SSE("message_stop", `{"type":"message_stop"}`),
	)
}

// AnthropicToolStream is a streamed call of tool whose input arrives as
// input_json_delta pieces (concatenated, they are the input's JSON).
func AnthropicToolStream(model, tool string, pieces []string, inputTokens, outputTokens int) []string {
	chunks := []string{
		anthropicStart(model, inputTokens),
		SSE("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"`+tool+`","input":{}}}`),
		SSE("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}`),
	}
	for _, p := range pieces {
		chunks = append(chunks, SSE("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":`+jsonString(p)+`}}`))
	}
	return append(chunks,
		SSE("content_block_stop", `{"type":"content_block_stop","index":0}`),
		SSE("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":`+fmt.Sprint(outputTokens)+`}}`),
		SSE("message_stop", `{"type":"message_stop"}`),
	)
}

// Anthropic error bodies, as the API sends them.
const (
	AnthropicUnauthorized   = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`
	AnthropicModelNotFound  = `{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"},"request_id":"req_011CSHoLd8ZZwKqKkvDGmhv5"}`
	AnthropicRateLimited    = `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (3d8c5c8e-0000-0000-0000-000000000000) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."},"request_id":"req_011CSHoPz3mgUT8R9WbCrM8W"}`
	AnthropicServerError    = `{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_011CSHoTe5oPR64ZgXC9RSxp"}`
	AnthropicOverloaded     = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":null}`
	AnthropicContextTooLong = `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_011CSHoXQ7y3nbqg3y4FFS1g"}`
)

// AnthropicErrorEvent is the error event the API sends mid-stream.
func AnthropicErrorEvent(typ, message string) string {
	return SSE("error", `{"type": "error", "error": {"type": "`+typ+`", "message": `+jsonString(message)+`}}`)
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
