package llm

import (
	"context"
	"net/http"

	"mcptower/agents/llm/anthropic"
	"mcptower/agents/llm/openai"
	"mcptower/internal/observe"
	"mcptower/schemas"
)

// request is one model request, in provider-neutral terms.
type request struct {
	Model       string
	System      string
	Turns       []Turn
	MaxTokens   int
	Temperature *float64
	// Output asks for JSON that matches it; nil asks for text.
	Output *schemas.Schema
	// SchemaName names Output where the provider wants a name.
	SchemaName string
	// JSONInstruction is added to the system prompt where the provider
	// cannot enforce Output natively.
	JSONInstruction string
	Stream          bool
}

// response is a model's answer.
type response struct {
	// Text is the answer; with Output, its JSON text.
	Text  string
	Model string
	// HasUsage says the provider reported the token counts.
	HasUsage                  bool
	InputTokens, OutputTokens int64
}

// provider speaks one API. complete calls onText with each streamed piece
// of the answer.
type provider interface {
	complete(ctx context.Context, req *request, onText func(string)) (*response, error)
}

type openaiProvider struct {
	client *openai.Client
	strict bool
}

// httpClient is o.HTTPClient, or a client whose requests are traced and
// carry the caller's traceparent to the provider.
func httpClient(o *Options) *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return tracedClient
}

var tracedClient = observe.HTTPClient(0)

func newOpenAI(o *Options) *openaiProvider {
	return &openaiProvider{client: &openai.Client{BaseURL: o.BaseURL, APIKey: o.APIKey, HTTPClient: httpClient(o)}, strict: o.StrictSchema}
}

func (p *openaiProvider) complete(ctx context.Context, req *request, onText func(string)) (*response, error) {
	r := &openai.ChatRequest{Model: req.Model, MaxTokens: req.MaxTokens, Temperature: req.Temperature}
	if req.System != "" {
		r.Messages = append(r.Messages, openai.Message{Role: "system", Content: req.System})
	}
	for _, t := range req.Turns {
		r.Messages = append(r.Messages, openai.Message{Role: t.Role, Content: t.Text})
	}
	if req.Output != nil {
		r.ResponseFormat = &openai.ResponseFormat{Type: "json_schema", JSONSchema: &openai.JSONSchema{
			Name:   req.SchemaName,
			Schema: req.Output.JSON(),
			Strict: p.strict,
		}}
	}
	var out *openai.ChatCompletion
	var err error
	if req.Stream {
		out, err = p.client.StreamChatCompletion(ctx, r, func(c *openai.ChatCompletionChunk) error {
			for _, ch := range c.Choices {
				if ch.Index == 0 {
					onText(ch.Delta.Content)
				}
			}
			return nil
		})
	} else {
		out, err = p.client.CreateChatCompletion(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	resp := &response{Text: out.Text(), Model: out.Model}
	if u := out.Usage; u != nil {
		resp.HasUsage, resp.InputTokens, resp.OutputTokens = true, u.PromptTokens, u.CompletionTokens
	}
	return resp, nil
}

// answerTool is the tool an Anthropic model is made to call to answer with
// structured output: its input is the answer.
const answerTool = "answer"

type anthropicProvider struct {
	client *anthropic.Client
}

func newAnthropic(o *Options) *anthropicProvider {
	return &anthropicProvider{client: &anthropic.Client{BaseURL: o.BaseURL, APIKey: o.APIKey, HTTPClient: httpClient(o)}}
}

func (p *anthropicProvider) complete(ctx context.Context, req *request, onText func(string)) (*response, error) {
	r := &anthropic.MessageRequest{Model: req.Model, MaxTokens: req.MaxTokens, System: req.System, Temperature: req.Temperature}
	if r.MaxTokens == 0 {
		r.MaxTokens = DefaultMaxTokens
	}
	for _, t := range req.Turns {
		r.Messages = append(r.Messages, anthropic.TextMessage(t.Role, t.Text))
	}
	useTool := false
	if req.Output != nil {
		// A forced tool call whose input schema is the output schema is
		// Anthropic's way to get JSON that matches a schema; tool inputs
		// must be objects, so other schemas are asked for in the prompt.
		if req.Output.IsObject() {
			useTool = true
			r.Tools = []anthropic.Tool{{Name: answerTool, Description: "Give your answer as this tool's input.", InputSchema: req.Output.JSON()}}
			r.ToolChoice = &anthropic.ToolChoice{Type: "tool", Name: answerTool}
		} else if req.JSONInstruction != "" {
			r.System = joinNonEmpty(r.System, req.JSONInstruction)
		}
	}
	var out *anthropic.MessageResponse
	var err error
	if req.Stream {
		out, err = p.client.StreamMessage(ctx, r, func(ev *anthropic.StreamEvent) error {
			if ev.Type == "content_block_delta" && ev.Delta != nil {
				onText(ev.Delta.Text + ev.Delta.PartialJSON)
			}
			return nil
		})
	} else {
		out, err = p.client.CreateMessage(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	resp := &response{Text: out.Text(), Model: out.Model, HasUsage: true,
		InputTokens:  out.Usage.InputTokens + out.Usage.CacheCreationInputTokens + out.Usage.CacheReadInputTokens,
		OutputTokens: out.Usage.OutputTokens,
	}
	if useTool {
		if in := out.ToolInput(answerTool); in != nil {
			resp.Text = string(in)
		}
	}
	return resp, nil
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}
