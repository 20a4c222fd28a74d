// Package tools holds mcptower's built-in agents: the context tools that let
// a model read and write its conversation context, agents_search (the answer
// to tool overload: find the right agent by description or tags instead of
// listing hundreds), and echo. It registers the "builtin" agent kind, so a
// config file can expose a built-in under another name or version.
package tools

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
)

func init() {
	agents.RegisterKind("builtin", buildKind)
}

// builtinOptions are the options of the "builtin" kind.
type builtinOptions struct {
	// Tool names the built-in: one of Names().
	Tool string `json:"tool"`
}

func buildKind(_ context.Context, def *agents.Definition) ([]agents.Agent, error) {
	var opts builtinOptions
	if err := def.DecodeOptions(&opts); err != nil {
		return nil, err
	}
	if opts.Tool == "" {
		return nil, errs.E(errs.Invalid, "agent %q (kind builtin): option tool is required (one of %s)", def.Name, strings.Join(Names(), ", "))
	}
	a, err := New(opts.Tool)
	if err != nil {
		return nil, fmt.Errorf("agent %q: %w", def.Name, err)
	}
	spec := *a.Spec()
	def.ApplyTo(&spec)
	return []agents.Agent{&withSpec{Agent: a, spec: spec}}, nil
}

// withSpec is a built-in exposed under a configured name and description.
type withSpec struct {
	agents.Agent
	spec agents.Spec
}

// Spec returns the configured spec. The receiver is a pointer so that every
// call returns the same Spec, as Agent requires (a value receiver would hand
// out a fresh copy each time, and the registry's normalization would be lost).
func (w *withSpec) Spec() *agents.Spec { return &w.spec }

var constructors = map[string]func() agents.Agent{
	"context_history": newContextHistory,
	"context_search":  newContextSearch,
	"context_append":  newContextAppend,
	"agents_search":   newAgentsSearch,
	"echo":            newEcho,
}

// Names returns the names of the built-ins, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns a fresh instance of the named built-in.
func New(name string) (agents.Agent, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, errs.E(errs.Invalid, "unknown built-in tool %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return c(), nil
}

// Defaults returns the built-ins every server exposes unless told otherwise:
// the context tools and agents_search.
func Defaults() []agents.Agent {
	return []agents.Agent{newContextHistory(), newContextSearch(), newContextAppend(), newAgentsSearch()}
}

var no = false

func readOnly() agents.Hints {
	return agents.Hints{ReadOnly: true, Idempotent: true, Destructive: &no, OpenWorld: &no}
}

func needStore(call *agents.Call) (contextstore.Store, error) {
	if call.Store == nil {
		return nil, errs.E(errs.Unavailable, "this server runs without a context store")
	}
	return call.Store, nil
}

// --- context_history

// HistoryInput are the arguments of context_history.
type HistoryInput struct {
	Session string `json:"session,omitempty" jsonschema_description:"Session id; defaults to the current conversation's session"`
	Limit   int    `json:"limit,omitempty" jsonschema:"minimum=0,maximum=1000" jsonschema_description:"Maximum entries to return (default 50; at most 1000)"`
	Before  int64  `json:"before,omitempty" jsonschema:"minimum=0" jsonschema_description:"Only entries with a sequence number below this (page backwards)"`
	After   int64  `json:"after,omitempty" jsonschema:"minimum=0" jsonschema_description:"Only entries with a sequence number above this (page forwards)"`
}

// HistoryOutput is the result of context_history.
type HistoryOutput struct {
	Session string      `json:"session"`
	Entries []EntryView `json:"entries"`
	Next    int64       `json:"next_before,omitempty" jsonschema_description:"Pass as before to get the previous page; absent on the first page"`
}

// EntryView is a context entry as tools return it.
type EntryView struct {
	Seq     int64             `json:"seq"`
	Time    string            `json:"time"`
	Role    string            `json:"role"`
	Agent   string            `json:"agent,omitempty"`
	Content any               `json:"content"`
	Tags    map[string]string `json:"tags,omitempty"`
}

func view(e contextstore.Entry) EntryView {
	var content any
	_ = json.Unmarshal(e.Content, &content)
	return EntryView{Seq: e.Seq, Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Role: e.Role, Agent: e.Agent, Content: content, Tags: e.Tags}
}

func newContextHistory() agents.Agent {
	return agents.MustTyped(agents.Spec{
		Name:        "context_history",
		Kind:        "builtin",
		Title:       "Read conversation context",
		Description: "Returns the recorded context of a session (calls, results and appended notes), oldest first. Without arguments: the newest 50 entries of the current session.",
		Tags:        []string{"context", "builtin"},
		Hints:       readOnly(),
	}, func(ctx context.Context, call *agents.Call, in HistoryInput) (HistoryOutput, error) {
		store, err := needStore(call)
		if err != nil {
			return HistoryOutput{}, err
		}
		session := cmpOr(in.Session, call.Session)
		limit := in.Limit
		if limit == 0 {
			limit = 50
		}
		q := contextstore.HistoryQuery{After: in.After, Before: in.Before, Limit: limit, Last: in.After == 0 && in.Before == 0}
		entries, err := store.History(ctx, session, q)
		if err != nil {
			return HistoryOutput{}, err
		}
		out := HistoryOutput{Session: session, Entries: make([]EntryView, len(entries))}
		for i, e := range entries {
			out.Entries[i] = view(e)
		}
		if len(entries) > 0 && entries[0].Seq > 1 && in.After == 0 {
			out.Next = entries[0].Seq
		}
		return out, nil
	})
}

// --- context_search

// SearchInput are the arguments of context_search.
type SearchInput struct {
	Query   string            `json:"query" jsonschema_description:"Text to look for in entry content (case-insensitive)"`
	Session string            `json:"session,omitempty" jsonschema_description:"Search only this session; default: the current session. Use * for all recent sessions"`
	Tags    map[string]string `json:"tags,omitempty" jsonschema_description:"With session *: only sessions with these tags"`
	Limit   int               `json:"limit,omitempty" jsonschema:"minimum=0,maximum=200" jsonschema_description:"Maximum matches (default 20)"`
}

// SearchOutput is the result of context_search.
type SearchOutput struct {
	Matches []SearchMatch `json:"matches"`
	// Scanned is how many entries were searched (the scan is bounded).
	Scanned int `json:"scanned"`
}

// SearchMatch is an entry that matched, with its session.
type SearchMatch struct {
	Session string    `json:"session"`
	Entry   EntryView `json:"entry"`
}

// Bounds of one context_search, so a query never scans a whole store.
const (
	searchSessions          = 50
	searchEntriesPerSession = 500
)

func newContextSearch() agents.Agent {
	return agents.MustTyped(agents.Spec{
		Name:        "context_search",
		Kind:        "builtin",
		Title:       "Search conversation context",
		Description: "Finds context entries whose content contains the query text, newest first, in the current session or (session \"*\") across recent sessions, optionally filtered by session tags.",
		Tags:        []string{"context", "builtin", "search"},
		Hints:       readOnly(),
	}, func(ctx context.Context, call *agents.Call, in SearchInput) (SearchOutput, error) {
		store, err := needStore(call)
		if err != nil {
			return SearchOutput{}, err
		}
		q := strings.ToLower(strings.TrimSpace(in.Query))
		if q == "" {
			return SearchOutput{}, errs.E(errs.Invalid, "query is empty")
		}
		limit := in.Limit
		if limit <= 0 {
			limit = 20
		}
		sessions := []string{cmpOr(in.Session, call.Session)}
		if in.Session == "*" {
			infos, err := store.Sessions(ctx, contextstore.SessionQuery{Tags: in.Tags, Limit: searchSessions})
			if err != nil {
				return SearchOutput{}, err
			}
			sessions = sessions[:0]
			for _, s := range infos {
				sessions = append(sessions, s.ID)
			}
		}
		out := SearchOutput{Matches: []SearchMatch{}}
		for _, s := range sessions {
			entries, err := store.History(ctx, s, contextstore.HistoryQuery{Last: true, Limit: searchEntriesPerSession})
			if err != nil {
				return SearchOutput{}, err
			}
			out.Scanned += len(entries)
			for _, e := range slices.Backward(entries) {
				if strings.HasPrefix(e.Agent, "context_search@") {
					continue // earlier searches would match their own query
				}
				if strings.Contains(strings.ToLower(string(e.Content)), q) {
					out.Matches = append(out.Matches, SearchMatch{Session: s, Entry: view(e)})
					if len(out.Matches) >= limit {
						return out, nil
					}
				}
			}
		}
		return out, nil
	})
}

// --- context_append

// AppendInput are the arguments of context_append.
type AppendInput struct {
	Session string            `json:"session,omitempty" jsonschema_description:"Session id; defaults to the current conversation's session"`
	Role    string            `json:"role,omitempty" jsonschema:"enum=user,enum=agent,enum=system" jsonschema_description:"Who the entry is from (default user)"`
	Content any               `json:"content" jsonschema_description:"The note to keep: text or any JSON value"`
	Tags    map[string]string `json:"tags,omitempty" jsonschema_description:"Tags to attach; they also tag the session"`
}

// AppendOutput is the result of context_append.
type AppendOutput struct {
	Session string `json:"session"`
	Seq     int64  `json:"seq"`
}

func newContextAppend() agents.Agent {
	return agents.MustTyped(agents.Spec{
		Name:        "context_append",
		Kind:        "builtin",
		Title:       "Add to conversation context",
		Description: "Appends a note (text or JSON) to a session's context so that later calls and other agents can read it. Returns the entry's sequence number.",
		Tags:        []string{"context", "builtin"},
		Hints:       agents.Hints{Destructive: &no, OpenWorld: &no},
	}, func(ctx context.Context, call *agents.Call, in AppendInput) (AppendOutput, error) {
		store, err := needStore(call)
		if err != nil {
			return AppendOutput{}, err
		}
		content, err := json.Marshal(in.Content)
		if err != nil {
			return AppendOutput{}, errs.E(errs.Invalid, "content: %w", err)
		}
		session := cmpOr(in.Session, call.Session)
		e, err := store.Append(ctx, session, contextstore.Entry{
			Role:    cmpOr(in.Role, contextstore.RoleUser),
			Content: content,
			Tags:    in.Tags,
		})
		if err != nil {
			return AppendOutput{}, err
		}
		return AppendOutput{Session: session, Seq: e.Seq}, nil
	})
}

// --- agents_search

// AgentsSearchInput are the arguments of agents_search.
type AgentsSearchInput struct {
	Query    string            `json:"query,omitempty" jsonschema_description:"Words describing the task; matched against agent names, titles, descriptions and tags"`
	Tags     []string          `json:"tags,omitempty" jsonschema_description:"Only agents with all these tags"`
	Metadata map[string]string `json:"metadata,omitempty" jsonschema_description:"Only agents with these metadata values (e.g. task_type)"`
	Limit    int               `json:"limit,omitempty" jsonschema:"minimum=0,maximum=100" jsonschema_description:"Maximum results (default 10)"`
}

// AgentsSearchOutput is the result of agents_search.
type AgentsSearchOutput struct {
	Agents []AgentView `json:"agents"`
}

// AgentView is an agent's spec as agents_search and the catalog return it.
type AgentView struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Title        string            `json:"title,omitempty"`
	Description  string            `json:"description,omitempty"`
	Kind         string            `json:"kind,omitempty"`
	Tags         []string          `json:"tags,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	InputSchema  json.RawMessage   `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage   `json:"output_schema,omitempty"`
	Score        float64           `json:"score,omitempty"`
}

// ViewOf returns the AgentView of a spec.
func ViewOf(s *agents.Spec) AgentView {
	v := AgentView{Name: s.Name, Version: s.Version, Title: s.Title, Description: s.Description, Kind: s.Kind, Tags: s.Tags, Metadata: s.Metadata}
	if s.Input != nil {
		v.InputSchema = s.Input.JSON()
	}
	if s.Output != nil {
		v.OutputSchema = s.Output.JSON()
	}
	return v
}

func newAgentsSearch() agents.Agent {
	return agents.MustTyped(agents.Spec{
		Name:        "agents_search",
		Kind:        "builtin",
		Title:       "Find agents",
		Description: "Finds agents (tools) on this server by what they do: free text over names and descriptions, tags and metadata. Returns their names and input/output schemas, best match first, so you can call the right one without listing every tool.",
		Tags:        []string{"registry", "builtin", "search"},
		Hints:       readOnly(),
	}, func(ctx context.Context, call *agents.Call, in AgentsSearchInput) (AgentsSearchOutput, error) {
		if call.Registry == nil {
			return AgentsSearchOutput{}, errs.E(errs.Unavailable, "no registry")
		}
		limit := in.Limit
		if limit <= 0 {
			limit = 10
		}
		matches := call.Registry.Search(agents.Query{Text: in.Query, Tags: in.Tags, Metadata: in.Metadata, Limit: limit})
		out := AgentsSearchOutput{Agents: make([]AgentView, len(matches))}
		for i, m := range matches {
			out.Agents[i] = ViewOf(m.Agent.Spec())
			out.Agents[i].Score = m.Score
		}
		return out, nil
	})
}

// --- echo

// EchoInput are the arguments of echo.
type EchoInput struct {
	Text string `json:"text" jsonschema_description:"Text to send back"`
}

// EchoOutput is the result of echo.
type EchoOutput struct {
	Text string `json:"text"`
}

func newEcho() agents.Agent {
	return agents.MustTyped(agents.Spec{
		Name:        "echo",
		Kind:        "builtin",
		Title:       "Echo",
		Description: "Returns its text unchanged. Useful to check a connection and to measure the server.",
		Tags:        []string{"builtin", "test"},
		Hints:       readOnly(),
	}, func(_ context.Context, _ *agents.Call, in EchoInput) (EchoOutput, error) {
		return EchoOutput(in), nil
	})
}

func cmpOr(a, b string) string { return cmp.Or(a, b) }
