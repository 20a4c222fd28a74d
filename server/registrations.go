package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"mcptower/agents"
	"mcptower/contextstore/sqlite"
	"mcptower/internal/errs"
)

// AgentDefinition is an agent entry of the config file, in JSON: the body
// of POST /v1/agents and an entry of the registrations file. The common
// fields are typed; every other key is an option of the kind, written
// inline next to them exactly as in the config file:
//
//	{"name": "shout", "kind": "builtin", "version": "1.0.0", "tool": "echo"}
//
// Values are taken literally: unlike the config file, there is no ${VAR}
// interpolation, so that a REST client cannot read the server's
// environment. Kinds that need secrets name an environment variable
// instead (the mcp kind's bearer_token_env, for instance).
type AgentDefinition struct {
	Name        string            `json:"name" jsonschema_description:"Letters, digits, '_', '-', '.'."`
	Kind        string            `json:"kind" jsonschema_description:"A registered agent kind (builtin, llm, sampling, mcp, http, plan, ...)."`
	Version     string            `json:"version,omitempty" jsonschema_description:"A semantic version; default 1.0.0."`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Timeout     string            `json:"timeout,omitempty" jsonschema_description:"Per-call timeout, a Go duration (10s, 2m); default the server's call timeout."`
	// Options are the kind-specific keys, by name, as JSON.
	Options map[string]json.RawMessage `json:"-"`
}

// commonKeys are the keys of AgentDefinition's typed fields, the same as a
// config file's agent entry; any other key is an option of the kind.
var commonKeys = []string{"name", "kind", "version", "title", "description", "tags", "metadata", "timeout"}

// UnmarshalJSON decodes a definition strictly: a common field of the wrong
// type and a key given twice are errs.Invalid errors naming the field.
// A null common field is left unset, as in the config file.
func (d *AgentDefinition) UnmarshalJSON(data []byte) error {
	*d = AgentDefinition{}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errs.E(errs.Invalid, "an agent definition must be a JSON object")
	}
	seen := make(map[string]bool, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if seen[key] {
			return errs.E(errs.Invalid, "agent definition: key %q is given twice", key)
		}
		seen[key] = true
		if err := d.set(key, raw); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing brace
	return err
}

func (d *AgentDefinition) set(key string, raw json.RawMessage) error {
	var dst any
	want := "a string"
	switch key {
	case "name":
		dst = &d.Name
	case "kind":
		dst = &d.Kind
	case "version":
		dst = &d.Version
	case "title":
		dst = &d.Title
	case "description":
		dst = &d.Description
	case "tags":
		dst, want = &d.Tags, "a list of strings"
	case "metadata":
		dst, want = &d.Metadata, "an object with string values"
	case "timeout":
		return d.setTimeout(raw)
	default:
		if d.Options == nil {
			d.Options = map[string]json.RawMessage{}
		}
		d.Options[key] = raw // null included: the kind decides what it means
		return nil
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errs.E(errs.Invalid, "agent definition: field %s must be %s", key, want)
	}
	return nil
}

func (d *AgentDefinition) setTimeout(raw json.RawMessage) error {
	t := string(bytes.TrimSpace(raw))
	switch {
	case t == "null":
		return nil
	case strings.HasPrefix(t, `"`):
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return errs.E(errs.Invalid, "agent definition: field timeout must be a duration (like 10s, 2m)")
		}
		if _, err := parseTimeout(s); err != nil {
			return err
		}
		d.Timeout = s
		return nil
	case strings.Trim(t, "0.-") == "" && t != "": // 0 needs no unit, as in the config file
		d.Timeout = "0"
		return nil
	}
	return errs.E(errs.Invalid, "agent definition: field timeout: %s is not a duration (like 10s, 2m): add a unit", t)
}

func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errs.E(errs.Invalid, "agent definition: field timeout: %q is not a duration (like 10s, 2m)", s)
	}
	if d < 0 {
		return 0, errs.E(errs.Invalid, "agent definition: field timeout: %q is negative", s)
	}
	return d, nil
}

// MarshalJSON writes the common fields, then the options in key order.
func (d AgentDefinition) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	add := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		if raw, ok := v.(json.RawMessage); ok {
			if err := json.Compact(&b, raw); err != nil {
				return fmt.Errorf("option %s: %w", k, err)
			}
			return nil
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(vb)
		return nil
	}
	_ = add("name", d.Name)
	_ = add("kind", d.Kind)
	for _, f := range []struct{ k, v string }{{"version", d.Version}, {"title", d.Title}, {"description", d.Description}} {
		if f.v != "" {
			_ = add(f.k, f.v)
		}
	}
	if d.Tags != nil {
		_ = add("tags", d.Tags)
	}
	if d.Metadata != nil {
		_ = add("metadata", d.Metadata)
	}
	if d.Timeout != "" {
		_ = add("timeout", d.Timeout)
	}
	keys := make([]string, 0, len(d.Options))
	for k := range d.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := add(k, d.Options[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Definition returns d as the definition agents.Build takes, the options
// gathered into one JSON object, as the config loader does.
func (d *AgentDefinition) Definition() (*agents.Definition, error) {
	def := &agents.Definition{
		Name: d.Name, Kind: d.Kind, Version: d.Version, Title: d.Title,
		Description: d.Description, Tags: d.Tags, Metadata: d.Metadata,
	}
	if d.Timeout != "" {
		t, err := parseTimeout(d.Timeout)
		if err != nil {
			return nil, err
		}
		def.Timeout = t
	}
	if len(d.Options) > 0 {
		opts, err := json.Marshal(d.Options)
		if err != nil {
			return nil, errs.E(errs.Invalid, "agent %q: options: %w", d.Name, err)
		}
		def.Options = opts
	}
	return def, nil
}

// definitionOf is the inverse of Definition, for persisting a definition
// given through the Go API.
func definitionOf(def *agents.Definition) (AgentDefinition, error) {
	d := AgentDefinition{
		Name: def.Name, Kind: def.Kind, Version: def.Version, Title: def.Title,
		Description: def.Description, Tags: def.Tags, Metadata: def.Metadata,
	}
	if def.Timeout < 0 {
		return d, errs.E(errs.Invalid, "agent %q: timeout %s is negative", def.Name, def.Timeout)
	}
	if def.Timeout > 0 {
		d.Timeout = def.Timeout.String()
	}
	if o := bytes.TrimSpace(def.Options); len(o) > 0 && string(o) != "null" {
		if err := json.Unmarshal(o, &d.Options); err != nil {
			return d, errs.E(errs.Invalid, "agent %q: options must be a JSON object", def.Name)
		}
		for k := range d.Options {
			if slices.Contains(commonKeys, k) {
				return d, errs.E(errs.Invalid, "agent %q: option %q has the name of a common field", def.Name, k)
			}
		}
	}
	return d, nil
}

// registrationsFile is the content of the registrations file.
type registrationsFile struct {
	// Agents are the definitions registered at run time, in order.
	Agents []AgentDefinition `json:"agents"`
}

// registration is one definition registered at run time and the agents it
// yielded (one, or an upstream MCP server that keeps its tools registered).
type registration struct {
	def    AgentDefinition
	agents []agents.Agent
}

func (r *registration) refs() []string {
	refs := make([]string, len(r.agents))
	for i, a := range r.agents {
		refs[i] = a.Spec().Ref()
	}
	return refs
}

// RegistrationsPath returns where agents registered at run time are kept
// for a config file: next to it, named after it (mcptower.yaml →
// mcptower.registrations.json); without a config file, registrations.json
// in the directory of the default SQLite store ($XDG_DATA_HOME/mcptower or
// ~/.local/share/mcptower).
func RegistrationsPath(configPath string) (string, error) {
	if configPath != "" {
		abs, err := filepath.Abs(configPath)
		if err != nil {
			return "", fmt.Errorf("registrations file: %w", err)
		}
		dir, base := filepath.Split(abs)
		return filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".registrations.json"), nil
	}
	p, err := sqlite.DefaultPath()
	if err != nil {
		return "", fmt.Errorf("registrations file: %w", err)
	}
	return filepath.Join(filepath.Dir(p), "registrations.json"), nil
}

// RegistrationsFile returns the file that keeps the agents registered at
// run time; "" if they are kept in memory only.
func (a *App) RegistrationsFile() string { return a.registrations }

// Register builds def through its kind, exactly as an agent of the config
// file is built, starts what it yields and registers it, then records def
// in the registrations file so that it is registered again on the next
// start. A name@version already taken (by the config, a built-in or an
// earlier registration) is errs.Conflict; a definition the kind rejects is
// errs.Invalid; failing to write the file is errs.Unavailable, and then
// nothing is registered. Connected MCP clients are told through the
// registry (notifications/tools/list_changed).
func (a *App) Register(ctx context.Context, def *agents.Definition) ([]agents.Agent, error) {
	ad, err := definitionOf(def)
	if err != nil {
		return nil, err
	}
	ctx = agents.ContextWithLogger(ctx, a.Logger)
	built, err := agents.Build(ctx, def)
	if err != nil {
		return nil, err
	}
	if len(built) == 0 {
		return nil, errs.E(errs.Invalid, "agent %q (kind %s) defines no agents", def.Name, def.Kind)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.activateLocked(ctx, built); err != nil {
		return nil, err
	}
	reg := &registration{def: ad, agents: built}
	next := append(slices.Clip(a.runtime), reg)
	if err := a.saveLocked(next); err != nil {
		a.deactivateLocked(built)
		closeAll(built, a.Logger)
		return nil, errs.Wrap(errs.Unavailable, err, "agent not registered: the registrations file could not be written")
	}
	a.setRuntimeLocked(next)
	a.Logger.Info("agent registered at run time", "agent", strings.Join(reg.refs(), ","), "kind", def.Kind)
	return built, nil
}

// Unregister removes the runtime registration that yielded name@version
// (with every agent it yielded) and forgets it in the registrations file.
// It returns the name@version of the agents removed. An unknown agent is
// errs.NotFound; an agent that was not registered at run time is
// errs.Conflict, since removing a config agent would be undone by the next
// reload.
func (a *App) Unregister(_ context.Context, name, version string) ([]string, error) {
	ref := name + "@" + strings.TrimPrefix(version, "v")
	a.mu.Lock()
	i := a.runtimeIndex(ref)
	if i < 0 {
		_, configured := a.configured[ref]
		path := ""
		if a.cfg != nil {
			path = a.cfg.Path
		}
		a.mu.Unlock()
		if configured {
			return nil, errs.E(errs.Conflict, "agent %s comes from the config file %s; remove it there", ref, path)
		}
		if _, err := a.Registry.Resolve(ref); err != nil {
			return nil, err
		}
		return nil, errs.E(errs.Conflict, "agent %s was not registered through the REST API (it is built in, a tool of an upstream MCP server, or added by Go code); only agents posted to /v1/agents can be deleted", ref)
	}
	reg := a.runtime[i]
	next := slices.Delete(slices.Clone(a.runtime), i, i+1)
	if err := a.saveLocked(next); err != nil {
		a.mu.Unlock()
		return nil, errs.Wrap(errs.Unavailable, err, "agent not removed: the registrations file could not be written")
	}
	a.setRuntimeLocked(next)
	a.deactivateLocked(reg.agents)
	a.mu.Unlock()
	closeAll(reg.agents, a.Logger) // may wait for an upstream process
	refs := reg.refs()
	a.Logger.Info("agent unregistered", "agent", strings.Join(refs, ","))
	return refs, nil
}

// Registered reports whether the agent name@version was registered at run
// time (and can therefore be removed with Unregister).
func (a *App) Registered(ref string) bool {
	a.runtimeMu.RLock()
	defer a.runtimeMu.RUnlock()
	return a.runtimeIndex(ref) >= 0
}

// runtimeIndex returns the index of the registration that yielded ref, or
// -1; a.mu or a.runtimeMu is held.
func (a *App) runtimeIndex(ref string) int {
	for i, r := range a.runtime {
		for _, ag := range r.agents {
			if ag.Spec().Ref() == ref {
				return i
			}
		}
	}
	return -1
}

// setRuntimeLocked replaces the runtime registrations; a.mu is held.
func (a *App) setRuntimeLocked(regs []*registration) {
	a.runtimeMu.Lock()
	a.runtime = regs
	a.runtimeMu.Unlock()
}

// takenLocked returns the first name@version of built that is already in
// use, or "".
func (a *App) takenLocked(built []agents.Agent) string {
	seen := map[string]bool{}
	for _, b := range built {
		ref := b.Spec().Ref()
		_, configured := a.configured[ref]
		_, err := a.Registry.Resolve(ref)
		if seen[ref] || configured || err == nil || a.runtimeIndex(ref) >= 0 {
			return ref
		}
		seen[ref] = true
	}
	return ""
}

// activateLocked starts built and registers it, or leaves nothing behind
// (built closed) and returns why.
func (a *App) activateLocked(ctx context.Context, built []agents.Agent) error {
	if ref := a.takenLocked(built); ref != "" {
		closeAll(built, a.Logger)
		return errs.E(errs.Conflict, "agent %s is already registered", ref)
	}
	for _, b := range built {
		if s, ok := b.(agents.Starter); ok {
			if err := s.Start(ctx); err != nil {
				closeAll(built, a.Logger)
				return fmt.Errorf("start agent %s: %w", b.Spec().Ref(), err)
			}
		}
	}
	for i, b := range built {
		if d, ok := b.(agents.Dynamic); ok {
			d.Attach(a.Registry)
			continue
		}
		if err := a.Registry.Add(b); err != nil {
			a.deactivateLocked(built[:i])
			closeAll(built, a.Logger)
			return err
		}
	}
	return nil
}

// deactivateLocked takes built out of the registry (a Dynamic agent takes
// its members out when closed).
func (a *App) deactivateLocked(built []agents.Agent) {
	for _, b := range built {
		if _, dynamic := b.(agents.Dynamic); !dynamic {
			spec := b.Spec()
			a.Registry.Remove(spec.Name, spec.Version)
		}
	}
}

func closeAll(built []agents.Agent, logger *slog.Logger) {
	for _, b := range built {
		closeAgent(b, logger)
	}
}

// dropShadowedLocked gives way to the config: a runtime registration that
// yields a name@version the config now defines (next) is removed, closed
// and forgotten, with a warning.
func (a *App) dropShadowedLocked(next map[string]configured) {
	var kept, dropped []*registration
	for _, r := range a.runtime {
		shadowed := slices.ContainsFunc(r.agents, func(ag agents.Agent) bool {
			_, ok := next[ag.Spec().Ref()]
			return ok
		})
		if shadowed {
			dropped = append(dropped, r)
		} else {
			kept = append(kept, r)
		}
	}
	if len(dropped) == 0 {
		return
	}
	for _, r := range dropped {
		a.deactivateLocked(r.agents)
		closeAll(r.agents, a.Logger)
		a.Logger.Warn("runtime registration replaced by the config", "agent", strings.Join(r.refs(), ","), "file", a.registrations)
	}
	a.setRuntimeLocked(kept)
	if err := a.saveLocked(kept); err != nil {
		a.Logger.Error("could not update the registrations file", "file", a.registrations, "error", err)
	}
}

// loadRegistrations registers the definitions of the registrations file,
// after the config's agents. A definition that no longer builds or starts
// fails the start, as a broken config does; one whose name@version the
// config now defines is dropped (the config wins), with a warning.
func (a *App) loadRegistrations(ctx context.Context) error {
	if a.registrations == "" {
		return nil
	}
	data, err := os.ReadFile(a.registrations)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read registrations: %w", err)
	}
	var f registrationsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return errs.E(errs.Invalid, "registrations file %s: %s (fix or delete the file)", a.registrations, jsonError(err))
	}
	ctx = agents.ContextWithLogger(ctx, a.Logger)
	a.mu.Lock()
	defer a.mu.Unlock()
	var kept []*registration
	dropped := false
	for i := range f.Agents {
		ad := f.Agents[i]
		where := fmt.Sprintf("registrations file %s: agents[%d] (%s)", a.registrations, i, ad.Name)
		def, err := ad.Definition()
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		built, err := agents.Build(ctx, def)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if ref := a.takenLocked(built); ref != "" {
			closeAll(built, a.Logger)
			dropped = true
			a.Logger.Warn("runtime registration dropped: the config defines the same agent", "agent", ref, "file", a.registrations)
			continue
		}
		if err := a.activateLocked(ctx, built); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		kept = append(kept, &registration{def: ad, agents: built})
		a.setRuntimeLocked(kept) // so that Close finds them if a later one fails
	}
	if dropped {
		if err := a.saveLocked(kept); err != nil {
			a.Logger.Error("could not update the registrations file", "file", a.registrations, "error", err)
		}
	}
	if len(kept) > 0 {
		a.Logger.Info("runtime registrations loaded", "file", a.registrations, "count", len(kept))
	}
	return nil
}

// saveLocked writes regs to the registrations file atomically (a temporary
// file renamed over it), readable by the owner only: definitions may carry
// credentials.
func (a *App) saveLocked(regs []*registration) error {
	if a.registrations == "" {
		return nil
	}
	f := registrationsFile{Agents: make([]AgentDefinition, len(regs))}
	for i, r := range regs {
		f.Agents[i] = r.def
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode registrations: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(a.registrations)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write registrations: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".registrations-*.tmp")
	if err != nil {
		return fmt.Errorf("write registrations: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), a.registrations)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write registrations %s: %w", a.registrations, err)
	}
	return nil
}

// closeRuntimeLocked closes the agents registered at run time (Close).
func (a *App) closeRuntimeLocked() {
	for _, r := range a.runtime {
		closeAll(r.agents, a.Logger)
	}
	a.setRuntimeLocked(nil)
}
