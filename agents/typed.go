package agents

import (
	"context"
	"encoding/json"
	"fmt"

	"mcptower/internal/errs"
	"mcptower/schemas"
)

// TypedFunc is the Go function behind a Typed agent.
type TypedFunc[In, Out any] func(ctx context.Context, call *Call, in In) (Out, error)

type typed[In, Out any] struct {
	spec Spec
	fn   TypedFunc[In, Out]
}

// Typed builds an Agent from a Go function. Unless spec already has them, the
// input and output schemas are generated from In and Out once, here. In must
// be a struct (MCP tool arguments are objects).
func Typed[In, Out any](spec Spec, fn TypedFunc[In, Out]) (Agent, error) {
	if fn == nil {
		return nil, fmt.Errorf("typed agent %q: nil function", spec.Name)
	}
	if spec.Input == nil {
		in, err := schemas.For[In]()
		if err != nil {
			return nil, fmt.Errorf("typed agent %q: input: %w", spec.Name, err)
		}
		spec.Input = in
	}
	if !spec.Input.IsObject() {
		return nil, fmt.Errorf("typed agent %q: input type must be a struct (an object schema), got %s", spec.Name, spec.Input.JSON())
	}
	if spec.Output == nil {
		out, err := schemas.For[Out]()
		if err != nil {
			return nil, fmt.Errorf("typed agent %q: output: %w", spec.Name, err)
		}
		spec.Output = out
	}
	if spec.Kind == "" {
		spec.Kind = "go"
	}
	if err := normalizeSpec(&spec); err != nil {
		return nil, err
	}
	return &typed[In, Out]{spec: spec, fn: fn}, nil
}

// MustTyped is Typed that panics, for agents defined in package variables.
func MustTyped[In, Out any](spec Spec, fn TypedFunc[In, Out]) Agent {
	a, err := Typed(spec, fn)
	if err != nil {
		panic(err)
	}
	return a
}

func (t *typed[In, Out]) Spec() *Spec { return &t.spec }

func (t *typed[In, Out]) Invoke(ctx context.Context, call *Call) (*Result, error) {
	var in In
	if len(call.Args) > 0 {
		if err := json.Unmarshal(call.Args, &in); err != nil {
			return nil, errs.E(errs.Invalid, "arguments: %w", err)
		}
	}
	out, err := t.fn(ctx, call, in)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return &Result{Output: data}, nil
}

// FuncAgent is the Go function behind an agent built with Func.
type FuncAgent func(ctx context.Context, call *Call) (*Result, error)

type funcAgent struct {
	spec Spec
	fn   FuncAgent
}

// Func builds an Agent from a function that returns a whole Result — content
// blocks (text, images, audio, resources) rather than a typed value. Without
// spec.Input any JSON object is accepted (call.Args holds it); without
// spec.Output the result carries no structured output.
func Func(spec Spec, fn FuncAgent) (Agent, error) {
	if fn == nil {
		return nil, fmt.Errorf("agent %q: nil function", spec.Name)
	}
	if spec.Kind == "" {
		spec.Kind = "go"
	}
	if err := normalizeSpec(&spec); err != nil {
		return nil, err
	}
	return &funcAgent{spec: spec, fn: fn}, nil
}

func (f *funcAgent) Spec() *Spec { return &f.spec }

func (f *funcAgent) Invoke(ctx context.Context, call *Call) (*Result, error) {
	return f.fn(ctx, call)
}
