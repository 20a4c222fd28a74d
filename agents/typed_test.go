package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/schemas"
)

func mustParse(t testing.TB, raw string) *schemas.Schema {
	t.Helper()
	s, err := schemas.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type addInput struct {
	A int `json:"a" jsonschema_description:"First term"`
	B int `json:"b,omitempty"`
}

type addOutput struct {
	Sum int `json:"sum"`
}

func add(_ context.Context, _ *agents.Call, in addInput) (addOutput, error) {
	return addOutput{Sum: in.A + in.B}, nil
}

func TestTypedGeneratesSchemas(t *testing.T) {
	a, err := agents.Typed(agents.Spec{Name: "add", Description: "Adds"}, add)
	if err != nil {
		t.Fatal(err)
	}
	s := a.Spec()
	if s.Version != agents.DefaultVersion || s.Kind != "go" || s.Description != "Adds" {
		t.Errorf("spec = %+v, want default version, kind go and the given description", s)
	}
	if s.Input == nil || s.Output == nil {
		t.Fatalf("schemas not generated: input %v, output %v", s.Input, s.Output)
	}
	if s.Input != schemas.MustFor[addInput]() || s.Output != schemas.MustFor[addOutput]() {
		t.Errorf("Typed did not use the cached schemas of In and Out")
	}
	if !s.Input.IsObject() || !s.Input.HasProperty("a") || !s.Input.HasProperty("b") || !s.Output.HasProperty("sum") {
		t.Errorf("schemas do not describe the types:\nin  %s\nout %s", s.Input.JSON(), s.Output.JSON())
	}
	if !strings.Contains(string(s.Input.JSON()), `"required":["a"]`) || !strings.Contains(string(s.Input.JSON()), "First term") {
		t.Errorf("input schema %s lacks required a or its description", s.Input.JSON())
	}
	if a.Spec() != s {
		t.Errorf("Spec returns a different *Spec on each call")
	}

	res, err := a.Invoke(context.Background(), &agents.Call{Args: json.RawMessage(`{"a":2,"b":40}`)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"sum":42}`, string(res.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	// Empty args decode as the zero In.
	res, err = a.Invoke(context.Background(), &agents.Call{})
	if err != nil || string(res.Output) != `{"sum":0}` {
		t.Errorf("Invoke(no args) = %s, %v", res.Output, err)
	}
	// Args that do not fit In are Invalid (the engine validates first, but
	// Typed agents may be invoked directly).
	if _, err := a.Invoke(context.Background(), &agents.Call{Args: json.RawMessage(`{"a":"x"}`)}); agents.CodeOf(err) != agents.CodeInvalid {
		t.Errorf("Invoke(bad args) = %v, want Invalid", err)
	}
}

func TestTypedKeepsGivenSpec(t *testing.T) {
	in := mustParse(t, `{"type":"object","properties":{"a":{"type":"integer"}}}`)
	a, err := agents.Typed(agents.Spec{Name: "add", Version: "3.0.0", Kind: "custom", Input: in, Output: schemas.Any}, add)
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Spec(); s.Input != in || s.Output != schemas.Any || s.Version != "3.0.0" || s.Kind != "custom" {
		t.Errorf("spec = %+v, want the given schemas, version and kind kept", s)
	}
}

func TestTypedFunctionError(t *testing.T) {
	boom := errors.New("boom")
	a := agents.MustTyped(agents.Spec{Name: "fail"}, func(context.Context, *agents.Call, addInput) (addOutput, error) {
		return addOutput{}, boom
	})
	if _, err := a.Invoke(context.Background(), &agents.Call{Args: json.RawMessage(`{"a":1}`)}); !errors.Is(err, boom) {
		t.Errorf("Invoke = %v, want the function's error", err)
	}
}

func TestTypedRejects(t *testing.T) {
	noop := func(context.Context, *agents.Call, string) (string, error) { return "", nil }
	if _, err := agents.Typed(agents.Spec{Name: "s"}, noop); err == nil || !strings.Contains(err.Error(), "struct") {
		t.Errorf("Typed with In=string = %v, want an error saying In must be a struct", err)
	}
	if _, err := agents.Typed(agents.Spec{Name: "sl"}, func(context.Context, *agents.Call, []int) (int, error) { return 0, nil }); err == nil {
		t.Errorf("Typed with In=[]int succeeded")
	}
	if _, err := agents.Typed(agents.Spec{Name: "any"}, func(context.Context, *agents.Call, any) (int, error) { return 0, nil }); err == nil {
		t.Errorf("Typed with In=any succeeded")
	}
	if _, err := agents.Typed[addInput, addOutput](agents.Spec{Name: "nilfn"}, nil); err == nil || !strings.Contains(err.Error(), "nil function") {
		t.Errorf("Typed(nil fn) = %v, want a nil-function error", err)
	}
	if _, err := agents.Typed(agents.Spec{Name: "bad name"}, add); agents.CodeOf(err) != agents.CodeInvalid {
		t.Errorf("Typed(bad name) = %v, want Invalid", err)
	}
	if _, err := agents.Typed(agents.Spec{Name: "add", Version: "x"}, add); agents.CodeOf(err) != agents.CodeInvalid {
		t.Errorf("Typed(bad version) = %v, want Invalid", err)
	}
	// A pointer to a struct is fine: its schema is the struct's.
	if _, err := agents.Typed(agents.Spec{Name: "ptr"}, func(context.Context, *agents.Call, *addInput) (addOutput, error) { return addOutput{}, nil }); err != nil {
		t.Errorf("Typed with In=*struct: %v", err)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("MustTyped with In=string did not panic")
		}
	}()
	agents.MustTyped(agents.Spec{Name: "s"}, noop)
}
