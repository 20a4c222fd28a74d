package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// testKindOptions are the options of the kinds registered below.
type testKindOptions struct {
	Greeting string `json:"greeting"`
	Count    int    `json:"count,omitempty"`
}

// Test kinds are registered once per test binary, as real kinds are.
func init() {
	agents.RegisterKind("agents_test_greeter", func(_ context.Context, def *agents.Definition) ([]agents.Agent, error) {
		var opts testKindOptions
		if err := def.DecodeOptions(&opts); err != nil {
			return nil, err
		}
		n := max(opts.Count, 1)
		out := make([]agents.Agent, n)
		for i := range out {
			a := &fakeAgent{spec: agents.Spec{Version: "1.0.0", Description: opts.Greeting}}
			def.ApplyTo(&a.spec)
			if i > 0 {
				a.spec.Name = fmt.Sprintf("%s_%d", def.Name, i)
			}
			out[i] = a
		}
		return out, nil
	})
	agents.RegisterKind("agents_test_broken", func(_ context.Context, def *agents.Definition) ([]agents.Agent, error) {
		// Builds an agent whose spec is invalid: Build must catch it.
		return []agents.Agent{newFake(def.Name+" bad", "1.0.0")}, nil
	})
	agents.RegisterKind("agents_test_failing", func(context.Context, *agents.Definition) ([]agents.Agent, error) {
		return nil, errors.New("upstream refused")
	})
}

func TestRegisterKindDuplicatePanics(t *testing.T) {
	defer func() {
		p := recover()
		if p == nil {
			t.Fatal("registering a kind twice did not panic")
		}
		if msg := fmt.Sprint(p); !strings.Contains(msg, `"agents_test_greeter"`) || !strings.Contains(msg, "twice") {
			t.Errorf("panic %q does not name the kind and say it was registered twice", msg)
		}
	}()
	agents.RegisterKind("agents_test_greeter", func(context.Context, *agents.Definition) ([]agents.Agent, error) { return nil, nil })
}

func TestRegisterKindNilPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "agents_test_nil") {
			t.Errorf("RegisterKind(nil) panic = %v, want one naming the kind", p)
		}
	}()
	agents.RegisterKind("agents_test_nil", nil)
}

func TestKinds(t *testing.T) {
	got := agents.Kinds()
	if !slices.IsSorted(got) {
		t.Errorf("Kinds() = %v, not sorted", got)
	}
	for _, k := range []string{"agents_test_greeter", "agents_test_broken", "agents_test_failing"} {
		if !slices.Contains(got, k) {
			t.Errorf("Kinds() = %v, missing %q", got, k)
		}
	}
	if slices.Contains(got, "agents_test_nil") {
		t.Errorf("a nil kind was registered")
	}
}

func TestBuild(t *testing.T) {
	def := &agents.Definition{
		Name:        "hello",
		Kind:        "agents_test_greeter",
		Version:     "2.1.0",
		Title:       "Hello",
		Description: "Says hello",
		Tags:        []string{"greet"},
		Metadata:    map[string]string{"owner": "team"},
		Timeout:     3 * time.Second,
		Options:     json.RawMessage(`{"greeting":"hi","count":2}`),
	}
	built, err := agents.Build(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"hello@2.1.0", "hello_1@2.1.0"}, refs(built)); diff != "" {
		t.Errorf("built (-want +got):\n%s", diff)
	}
	got := *built[0].Spec()
	want := agents.Spec{
		Name: "hello", Version: "2.1.0", Title: "Hello", Description: "Says hello", Kind: "agents_test_greeter",
		Tags: []string{"greet"}, Metadata: map[string]string{"owner": "team"}, Timeout: 3 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}

	// Without a description in the definition, the kind's own stays.
	built, err = agents.Build(context.Background(), &agents.Definition{Name: "plain", Kind: "agents_test_greeter", Options: json.RawMessage(`{"greeting":"hey"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s := built[0].Spec(); s.Description != "hey" || s.Version != "1.0.0" || s.Kind != "agents_test_greeter" {
		t.Errorf("spec = %+v, want the kind's description and version", s)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		def  agents.Definition
		code errs.Code
		want []string // substrings of the message
	}{
		{"unknown kind", agents.Definition{Name: "x", Kind: "nosuchkind"}, agents.CodeInvalid,
			[]string{`agent "x"`, `unknown kind "nosuchkind"`, "agents_test_greeter", "forgotten import?"}},
		{"no kind", agents.Definition{Name: "x"}, agents.CodeInvalid,
			[]string{`agent "x" has no kind`, "agents_test_greeter"}},
		{"bad name", agents.Definition{Name: "a b", Kind: "agents_test_greeter"}, agents.CodeInvalid,
			[]string{`"a b"`}},
		{"unknown option", agents.Definition{Name: "x", Kind: "agents_test_greeter", Options: json.RawMessage(`{"greeting":"hi","greting":"typo"}`)}, agents.CodeInvalid,
			[]string{`agent "x" (kind agents_test_greeter)`, `unknown field "greting"`}},
		{"option of the wrong type", agents.Definition{Name: "x", Kind: "agents_test_greeter", Options: json.RawMessage(`{"count":"two"}`)}, agents.CodeInvalid,
			[]string{`agent "x"`, "count"}},
		{"kind builds an invalid agent", agents.Definition{Name: "x", Kind: "agents_test_broken"}, agents.CodeInvalid,
			[]string{`"x bad"`}},
		{"kind fails", agents.Definition{Name: "x", Kind: "agents_test_failing"}, agents.CodeInternal,
			[]string{"upstream refused"}},
		{"invalid version", agents.Definition{Name: "x", Kind: "agents_test_greeter", Version: "one"}, agents.CodeInvalid,
			[]string{`version "one"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			built, err := agents.Build(ctx, &tc.def)
			if err == nil {
				t.Fatalf("Build = %v, want an error", refs(built))
			}
			if agents.CodeOf(err) != tc.code {
				t.Errorf("code = %v, want %v (%v)", agents.CodeOf(err), tc.code, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeOptions(t *testing.T) {
	var opts testKindOptions
	d := &agents.Definition{Name: "n", Kind: "k", Options: json.RawMessage(`{"greeting":"hi","count":3}`)}
	if err := d.DecodeOptions(&opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testKindOptions{Greeting: "hi", Count: 3}, opts); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}

	// No options leaves v alone.
	keep := testKindOptions{Greeting: "default"}
	if err := (&agents.Definition{Name: "n"}).DecodeOptions(&keep); err != nil || keep.Greeting != "default" {
		t.Errorf("DecodeOptions without options = %v, %+v", err, keep)
	}

	for _, tc := range []struct {
		options string
		want    string
	}{
		{`{"greeting":"hi","colour":"red"}`, `agent "n" (kind k): unknown field "colour"`},
		{`{"count":"x"}`, `agent "n" (kind k): `},
		{`[1]`, `agent "n" (kind k): `},
		{`{"greeting":`, `agent "n" (kind k): `},
	} {
		err := (&agents.Definition{Name: "n", Kind: "k", Options: json.RawMessage(tc.options)}).DecodeOptions(&testKindOptions{})
		if err == nil {
			t.Errorf("DecodeOptions(%s) = nil, want an error", tc.options)
			continue
		}
		if agents.CodeOf(err) != agents.CodeInvalid || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("DecodeOptions(%s) = %q (code %v), want Invalid starting %q", tc.options, err, agents.CodeOf(err), tc.want)
		}
		if strings.Contains(err.Error(), "json: ") {
			t.Errorf("DecodeOptions(%s) = %q leaks the json package prefix", tc.options, err)
		}
	}
}

func TestDefinitionApplyTo(t *testing.T) {
	base := agents.Spec{Name: "orig", Version: "1.0.0", Title: "T", Description: "D", Tags: []string{"t"}, Metadata: map[string]string{"k": "v"}, Timeout: time.Second, Kind: "go"}
	// An empty definition only renames and sets the kind.
	s := base
	(&agents.Definition{Name: "renamed", Kind: "builtin"}).ApplyTo(&s)
	want := base
	want.Name, want.Kind = "renamed", "builtin"
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("ApplyTo(empty) (-want +got):\n%s", diff)
	}
	// A full one overrides every common field.
	s = base
	(&agents.Definition{Name: "n", Kind: "k", Version: "2.0.0", Title: "T2", Description: "D2", Tags: []string{"x"}, Metadata: map[string]string{"a": "b"}, Timeout: time.Minute}).ApplyTo(&s)
	want = agents.Spec{Name: "n", Kind: "k", Version: "2.0.0", Title: "T2", Description: "D2", Tags: []string{"x"}, Metadata: map[string]string{"a": "b"}, Timeout: time.Minute}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("ApplyTo(full) (-want +got):\n%s", diff)
	}
}

func TestKindFunc(t *testing.T) {
	type opts struct {
		Greeting string `json:"greeting"`
	}
	kind := agents.KindFunc(func(spec agents.Spec, o *opts) (agents.Agent, error) {
		spec.Description = o.Greeting
		return agents.Func(spec, func(context.Context, *agents.Call) (*agents.Result, error) { return &agents.Result{}, nil })
	})
	built, err := kind(t.Context(), &agents.Definition{Name: "hi", Kind: "x", Version: "2.0.0", Options: []byte(`{"greeting":"hello"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s := built[0].Spec(); len(built) != 1 || s.Name != "hi" || s.Version != "2.0.0" || s.Description != "hello" {
		t.Errorf("built %+v, want hi@2.0.0 described by its option", s)
	}
	if _, err := kind(t.Context(), &agents.Definition{Name: "hi", Kind: "x", Options: []byte(`{"greting":"typo"}`)}); err == nil || !strings.Contains(err.Error(), "greting") {
		t.Errorf("unknown option: err = %v, want it named", err)
	}
}
