package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"mcptower/internal/errs"
)

// Definition is the configuration of one agent, as written in the config
// file or posted to the REST API: the common fields plus kind-specific
// Options.
type Definition struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	Version     string            `json:"version,omitempty"`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Timeout     time.Duration     `json:"timeout,omitempty"`
	// Options are the kind-specific fields, as a JSON object.
	Options json.RawMessage `json:"options,omitempty"`
}

// ApplyTo copies the common fields of d onto spec, where d sets them.
func (d *Definition) ApplyTo(spec *Spec) {
	spec.Name = d.Name
	if d.Version != "" {
		spec.Version = d.Version
	}
	if d.Title != "" {
		spec.Title = d.Title
	}
	if d.Description != "" {
		spec.Description = d.Description
	}
	if len(d.Tags) > 0 {
		spec.Tags = d.Tags
	}
	if len(d.Metadata) > 0 {
		spec.Metadata = d.Metadata
	}
	if d.Timeout > 0 {
		spec.Timeout = d.Timeout
	}
	spec.Kind = d.Kind
}

// DecodeOptions decodes d.Options into v strictly: an unknown field is an
// error naming it, so a typo in a config file is caught at load.
func (d *Definition) DecodeOptions(v any) error {
	if len(d.Options) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(d.Options))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "json: ")
		return errs.E(errs.Invalid, "agent %q (kind %s): %s", d.Name, d.Kind, msg)
	}
	return nil
}

// Kind builds agents from a definition. A kind is stateless; most kinds
// return one agent, some (an upstream MCP server) one per tool.
type Kind func(ctx context.Context, def *Definition) ([]Agent, error)

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// RegisterKind makes a kind available by name, typically from an init
// function. Registering a name twice panics.
func RegisterKind(name string, k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if k == nil {
		panic("agents: RegisterKind: nil kind " + name)
	}
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("agents: RegisterKind called twice for kind %q", name))
	}
	kinds[name] = k
}

// Kinds returns the registered kind names, sorted.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build instantiates the agents of def through its kind. An unknown kind is
// an errs.Invalid error listing the known ones.
func Build(ctx context.Context, def *Definition) ([]Agent, error) {
	if err := ValidName(def.Name); err != nil {
		return nil, err
	}
	kindsMu.RLock()
	k := kinds[def.Kind]
	kindsMu.RUnlock()
	if k == nil {
		if def.Kind == "" {
			return nil, errs.E(errs.Invalid, "agent %q has no kind (known kinds: %s)", def.Name, strings.Join(Kinds(), ", "))
		}
		return nil, errs.E(errs.Invalid, "agent %q: unknown kind %q (known kinds: %s; forgotten import?)", def.Name, def.Kind, strings.Join(Kinds(), ", "))
	}
	built, err := k(ctx, def)
	if err != nil {
		return nil, err
	}
	for _, a := range built {
		if err := normalizeSpec(a.Spec()); err != nil {
			return nil, err
		}
	}
	return built, nil
}

// KindFunc builds a Kind from a constructor taking a Spec and the kind's
// options: the options are decoded strictly from the definition, the
// common fields applied to the spec, and one agent built.
func KindFunc[O any, A Agent](newAgent func(Spec, *O) (A, error)) Kind {
	return func(_ context.Context, def *Definition) ([]Agent, error) {
		var o O
		if err := def.DecodeOptions(&o); err != nil {
			return nil, err
		}
		var spec Spec
		def.ApplyTo(&spec)
		a, err := newAgent(spec, &o)
		if err != nil {
			return nil, err
		}
		return []Agent{a}, nil
	}
}
