// Package llm provides the "llm" agent kind: a prompt template sent to a
// model behind an OpenAI-compatible Chat Completions API (OpenAI, Ollama,
// vLLM, llama.cpp, LM Studio) or Anthropic's Messages API.
//
// An llm agent renders its system and user templates (text/template, parsed
// and checked when the agent is built) from the call's arguments, the
// session's recent context and the agent's metadata; streams the answer,
// reporting progress to the MCP client; retries rate limits, server errors
// and broken connections with jittered exponential backoff (never once
// output has streamed); and, when it declares an output schema, asks for
// JSON (natively where the provider can), validates it, and gives the model
// one chance to repair an answer that does not match. Tokens and cost (from
// a per-model price table) are reported as the result's Usage.
//
// In a config file:
//
//	agents:
//	  - name: summarize
//	    kind: llm
//	    provider: openai                 # or anthropic
//	    base_url: ${OPENAI_BASE_URL:-http://127.0.0.1:11434/v1}
//	    api_key: ${OPENAI_API_KEY:-}
//	    model: llama3.2
//	    system: You summarize text for {{.Agent.Metadata.audience}}.
//	    prompt: "Summarize:\n{{.Input.text}}"
//	    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
//	    output_schema: {type: object, properties: {summary: {type: string}}, required: [summary]}
//	    prices: {llama3.2: {input: 0, output: 0}}
//
// The same agent from Go: llm.New(agents.Spec{Name: "summarize"}, &llm.Options{...}).
// The kind "sampling" (package agents/sampling) shares the templates and the
// structured output of this package through Prompt.
package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"mcptower/agents"
	"mcptower/agents/llm/wire"
	"mcptower/internal/errs"
)

// Kind is the name of the agent kind this package registers.
const Kind = "llm"

func init() {
	agents.RegisterKind(Kind, agents.KindFunc(New))
}

// Providers.
const (
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
)

// Retry defaults and bounds.
const (
	// DefaultRetries is how many times a failed request is retried when
	// Options.Retries is nil.
	DefaultRetries = 2
	// MaxRetries bounds Options.Retries.
	MaxRetries = 10
	// MaxRetryWait caps one wait between attempts. A provider asking to
	// wait longer (Retry-After) gets no retry: the error says when to try
	// again.
	MaxRetryWait = 30 * time.Second
	// baseBackoff is the first wait without Retry-After; it doubles per
	// attempt up to maxBackoff, with jitter.
	baseBackoff = 500 * time.Millisecond
	maxBackoff  = 8 * time.Second
)

// progressInterval is the least time between two progress notifications
// while an answer streams (the first chunk is always reported).
const progressInterval = 100 * time.Millisecond

// Options configure an llm agent. In a config file they are keys of the
// agent, next to name and kind; unknown keys are errors.
type Options struct {
	// Provider is "openai" (any OpenAI-compatible server; the default) or
	// "anthropic".
	Provider string `json:"provider,omitempty"`
	// BaseURL is the API root: for openai up to and including the version
	// (default https://api.openai.com/v1; Ollama: http://127.0.0.1:11434/v1),
	// for anthropic without it (default https://api.anthropic.com).
	BaseURL string `json:"base_url,omitempty"`
	// APIKey authenticates the agent; optional for local OpenAI-compatible
	// servers. Write it as ${ENV_VAR} in config files. It is never logged.
	APIKey string `json:"api_key,omitempty"`
	// Model names the model. Required.
	Model string `json:"model"`

	PromptOptions

	// Prices are USD per million tokens, by model; the cost of a call is
	// computed from the first of the configured model and the model the
	// provider reports. No entry means no cost.
	Prices map[string]Price `json:"prices,omitempty"`
	// Retries is how many times a request that failed with a rate limit, a
	// server error or a broken connection is sent again; nil means
	// DefaultRetries, 0 none.
	Retries *int `json:"retries,omitempty"`
	// Stream streams answers (and reports progress while they arrive); nil
	// means true.
	Stream *bool `json:"stream,omitempty"`
	// StrictSchema asks OpenAI to enforce the output schema exactly
	// (json_schema strict mode), which accepts only schemas whose objects
	// all have additionalProperties: false and every property required.
	StrictSchema bool `json:"strict_schema,omitempty"`

	// HTTPClient sends the requests; nil means a client that traces each
	// request and propagates traceparent (OpenTelemetry). Go only.
	HTTPClient *http.Client `json:"-"`
}

// Price is what a model costs, in USD per million tokens.
type Price struct {
	Input  float64 `json:"input"`
	Output float64 `json:"output"`
}

// Agent is an llm agent. It is safe for concurrent use.
type Agent struct {
	spec        agents.Spec
	prompt      *Prompt
	provider    provider
	model       string
	prices      map[string]Price
	retries     int
	stream      bool
	maxTokens   int
	temperature *float64
	schemaName  string

	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ agents.Agent = (*Agent)(nil)

var no = false

// New builds an llm agent named by spec (Name is required; Kind defaults to
// "llm", the description to one naming the model). spec.Input and
// spec.Output are set from o's schemas.
func New(spec agents.Spec, o *Options) (*Agent, error) {
	if o == nil {
		o = &Options{}
	}
	if spec.Kind == "" {
		spec.Kind = Kind
	}
	fail := func(format string, args ...any) error {
		return errs.E(errs.Invalid, "agent %q (kind %s): "+format, append([]any{spec.Name, spec.Kind}, args...)...)
	}
	providerName := o.Provider
	if providerName == "" {
		providerName = ProviderOpenAI
	}
	if o.Model == "" {
		return nil, fail("option model is required")
	}
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fail("base_url %q is not an http(s) URL", o.BaseURL)
		}
	}
	a := &Agent{
		model:       o.Model,
		prices:      o.Prices,
		retries:     DefaultRetries,
		stream:      o.Stream == nil || *o.Stream,
		maxTokens:   o.MaxTokens,
		temperature: o.Temperature,
		schemaName:  schemaName(spec.Name),
		sleep:       sleep,
	}
	if o.Retries != nil {
		if *o.Retries < 0 || *o.Retries > MaxRetries {
			return nil, fail("retries must be between 0 and %d", MaxRetries)
		}
		a.retries = *o.Retries
	}
	for model, p := range o.Prices {
		if p.Input < 0 || p.Output < 0 || math.IsNaN(p.Input) || math.IsNaN(p.Output) {
			return nil, fail("prices[%s]: prices must not be negative", model)
		}
	}
	if o.Temperature != nil && (*o.Temperature < 0 || *o.Temperature > 2) {
		return nil, fail("temperature must be between 0 and 2")
	}
	switch providerName {
	case ProviderOpenAI:
		a.provider = newOpenAI(o)
	case ProviderAnthropic:
		a.provider = newAnthropic(o)
	default:
		return nil, fail("provider %q is not one of %s, %s", o.Provider, ProviderOpenAI, ProviderAnthropic)
	}
	if spec.Description == "" {
		spec.Description = fmt.Sprintf("Asks the model %s (%s).", o.Model, providerName)
	}
	if spec.Hints == (agents.Hints{}) {
		spec.Hints = agents.Hints{ReadOnly: true, Destructive: &no}
	}
	a.spec = spec
	var err error
	if a.prompt, err = NewPrompt(&a.spec, &o.PromptOptions); err != nil {
		return nil, err
	}
	return a, nil
}

// Spec describes the agent.
func (a *Agent) Spec() *agents.Spec { return &a.spec }

// Invoke renders the prompt, asks the model (repairing a structured answer
// once) and returns its answer with the tokens and cost of every request.
// A model that does not exist is reported as a tool error (IsError), so a
// host does not mistake it for an unknown tool.
func (a *Agent) Invoke(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	var usage agents.Usage
	haveUsage := false
	progress := a.progress(ctx, call)
	res, err := a.prompt.Run(ctx, call, func(ctx context.Context, system string, turns []Turn) (string, error) {
		resp, err := a.complete(ctx, call, &request{
			Model:           a.model,
			System:          system,
			Turns:           turns,
			MaxTokens:       a.maxTokens,
			Temperature:     a.temperature,
			Output:          a.prompt.Output(),
			SchemaName:      a.schemaName,
			JSONInstruction: a.prompt.JSONInstruction(),
			Stream:          a.stream,
		}, progress)
		if err != nil {
			return "", err
		}
		if resp.HasUsage {
			haveUsage = true
			usage.InputTokens += resp.InputTokens
			usage.OutputTokens += resp.OutputTokens
			usage.CostUSD += a.cost(resp)
		}
		return resp.Text, nil
	})
	var u *agents.Usage
	if haveUsage {
		usage.CostUSD = math.Round(usage.CostUSD*1e9) / 1e9
		u = &usage
	}
	if err != nil {
		if ctx.Err() == nil && errs.CodeOf(err) == errs.NotFound {
			return &agents.Result{IsError: true, Content: []agents.Content{agents.Text(err.Error())}, Usage: u}, nil
		}
		return nil, err
	}
	res.Usage = u
	return res, nil
}

// cost prices one response.
func (a *Agent) cost(r *response) float64 {
	p, ok := a.prices[a.model]
	if !ok {
		p, ok = a.prices[r.Model]
	}
	if !ok {
		return 0
	}
	return (float64(r.InputTokens)*p.Input + float64(r.OutputTokens)*p.Output) / 1e6
}

// progress returns the callback that reports streamed chunks to the
// client, at most every progressInterval; progress only increases, across
// retries and the repair round.
func (a *Agent) progress(ctx context.Context, call *agents.Call) func(string) {
	chunks := 0
	var last time.Time
	return func(delta string) {
		if delta == "" {
			return
		}
		chunks++
		now := time.Now()
		if chunks > 1 && now.Sub(last) < progressInterval {
			return
		}
		last = now
		msg := fmt.Sprintf("%s is answering: %d chunks received", a.model, chunks)
		if err := call.Client.Progress(ctx, float64(chunks), 0, msg); err != nil && call.Logger != nil {
			call.Logger.LogAttrs(ctx, slog.LevelDebug, "progress notification failed", slog.String("agent", call.Agent), slog.String("error", err.Error()))
		}
	}
}

// complete sends req, retrying what may succeed on a second try: rate
// limits (after Retry-After, if the provider says), server errors and
// broken connections, unless output has already streamed (the caller has
// seen it) or the wait would outlast the call.
func (a *Agent) complete(ctx context.Context, call *agents.Call, req *request, onText func(string)) (*response, error) {
	for attempt := 0; ; attempt++ {
		streamed := false
		resp, err := a.provider.complete(ctx, req, func(s string) {
			if s != "" {
				streamed = true
			}
			onText(s)
		})
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		we, ok := errors.AsType[*wire.Error](err)
		if !ok || !we.Retryable() || streamed || attempt >= a.retries {
			return nil, err
		}
		wait := backoff(attempt)
		if we.RetryAfter > 0 {
			wait = we.RetryAfter
		}
		if wait > MaxRetryWait {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, err
		}
		if call.Logger != nil {
			call.Logger.LogAttrs(ctx, slog.LevelWarn, "model request failed; retrying",
				slog.String("agent", call.Agent), slog.String("session", call.Session),
				slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.String("error", err.Error()))
		}
		if err := a.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// backoff is the jittered exponential wait before retry attempt+1: between
// half and all of baseBackoff·2^attempt, capped at maxBackoff.
func backoff(attempt int) time.Duration {
	d := baseBackoff << min(attempt, 10)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var notSchemaName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// schemaName is the name OpenAI's response_format requires:
// ^[a-zA-Z0-9_-]{1,64}$.
func schemaName(agent string) string {
	s := notSchemaName.ReplaceAllString(agent, "_")
	if s == "" {
		s = "output"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
