// Package sampling provides the "sampling" agent kind: an agent whose model
// is the connected MCP client's own, reached through sampling/createMessage
// (2025-11-25 sessions) or an input request (2026-07-28 stateless clients).
// It needs no API key, which makes it mcptower's default agent ("ask").
//
// Its options are the templates, schemas and context of package llm
// (system, prompt, input_schema, output_schema, temperature, max_tokens,
// context_entries, context_max_bytes) plus model_hints. With an output
// schema the model is told to answer with JSON matching it, and one repair
// round is allowed, as for llm agents. A client that cannot sample gets a
// tool error saying so.
package sampling

import (
	"context"

	"mcptower/agents"
	"mcptower/agents/llm"
	"mcptower/internal/errs"
)

// Kind is the name of the agent kind this package registers.
const Kind = "sampling"

func init() {
	agents.RegisterKind(Kind, agents.KindFunc(New))
}

// Options configure a sampling agent. In a config file they are keys of the
// agent, next to name and kind; unknown keys are errors.
type Options struct {
	llm.PromptOptions
	// ModelHints name models the client should prefer, best first
	// ("claude-sonnet", "gpt-4o"); the client decides.
	ModelHints []string `json:"model_hints,omitempty"`
}

// Agent is a sampling agent. It is safe for concurrent use, and
// deterministic up to its Sample calls, as stateless clients require.
type Agent struct {
	spec   agents.Spec
	prompt *llm.Prompt
	opts   Options
}

var _ agents.Agent = (*Agent)(nil)

var no = false

// New builds a sampling agent named by spec (Name is required; Kind
// defaults to "sampling"). spec.Input and spec.Output are set from o's
// schemas.
func New(spec agents.Spec, o *Options) (*Agent, error) {
	if o == nil {
		o = &Options{}
	}
	if spec.Kind == "" {
		spec.Kind = Kind
	}
	if o.Temperature != nil && (*o.Temperature < 0 || *o.Temperature > 2) {
		return nil, errs.E(errs.Invalid, "agent %q (kind %s): temperature must be between 0 and 2", spec.Name, spec.Kind)
	}
	if spec.Description == "" {
		spec.Description = "Asks the connected client's own model (MCP sampling) and returns its answer."
	}
	if spec.Hints == (agents.Hints{}) {
		spec.Hints = agents.Hints{ReadOnly: true, Destructive: &no}
	}
	a := &Agent{spec: spec, opts: *o}
	var err error
	if a.prompt, err = llm.NewPrompt(&a.spec, &a.opts.PromptOptions); err != nil {
		return nil, err
	}
	return a, nil
}

// Spec describes the agent.
func (a *Agent) Spec() *agents.Spec { return &a.spec }

// Invoke renders the prompt and asks the client's model. Errors from the
// client, an *agents.InputRequired included, are returned unchanged.
func (a *Agent) Invoke(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	maxTokens := a.opts.MaxTokens
	if maxTokens == 0 {
		maxTokens = llm.DefaultMaxTokens
	}
	var temperature float64
	if a.opts.Temperature != nil {
		temperature = *a.opts.Temperature
	}
	return a.prompt.Run(ctx, call, func(ctx context.Context, system string, turns []llm.Turn) (string, error) {
		req := &agents.SampleRequest{
			SystemPrompt: system,
			MaxTokens:    maxTokens,
			Temperature:  temperature,
			ModelHints:   a.opts.ModelHints,
		}
		if ins := a.prompt.JSONInstruction(); ins != "" {
			if req.SystemPrompt != "" {
				req.SystemPrompt += "\n\n"
			}
			req.SystemPrompt += ins
		}
		for _, t := range turns {
			req.Messages = append(req.Messages, agents.Message{Role: t.Role, Content: agents.Text(t.Text)})
		}
		res, err := call.Client.Sample(ctx, req)
		if err != nil {
			return "", err
		}
		if res.Content.Type != "text" {
			return "", errs.E(errs.Unavailable, "the client's model answered with %s content; %s needs text", res.Content.Type, a.spec.Name)
		}
		return res.Content.Text, nil
	})
}
