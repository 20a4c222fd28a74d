package agents

import (
	"slices"
	"sort"
	"strings"
	"sync"

	"mcptower/internal/errs"
)

// Registry holds the live agents, keyed "name@version". The bare name
// resolves to the newest version. It is safe for concurrent use; readers
// never block on each other.
type Registry struct {
	mu       sync.RWMutex
	byName   map[string][]Agent // newest version first
	subs     map[int]func(Change)
	nextSub  int
	revision uint64
}

// ChangeType says what happened to an agent in the registry.
type ChangeType int

// Change types.
const (
	Added ChangeType = iota + 1
	Removed
	Replaced
)

func (c ChangeType) String() string {
	switch c {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Replaced:
		return "replaced"
	}
	return "unknown"
}

// Change is one registry change, delivered to subscribers.
type Change struct {
	Type  ChangeType
	Agent Agent // the added/replacing agent, or the removed one
	// Latest is the newest version of the agent's name after the change, or
	// nil if no version remains. Subscribers that publish one entry per name
	// (MCP tools) use it.
	Latest Agent
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string][]Agent{}, subs: map[int]func(Change){}}
}

// Add registers a, which must not already be registered under its
// name@version (errs.Conflict).
func (r *Registry) Add(a Agent) error { return r.put(a, false) }

// Put registers a, replacing any agent with the same name@version.
func (r *Registry) Put(a Agent) error { return r.put(a, true) }

func (r *Registry) put(a Agent, replace bool) error {
	spec := a.Spec()
	if err := normalizeSpec(spec); err != nil {
		return err
	}
	r.mu.Lock()
	versions := r.byName[spec.Name]
	i := slices.IndexFunc(versions, func(b Agent) bool { return b.Spec().Version == spec.Version })
	typ := Added
	if i >= 0 {
		if !replace {
			r.mu.Unlock()
			return errs.E(errs.Conflict, "agent %s is already registered", spec.Ref())
		}
		versions = slices.Clone(versions)
		versions[i] = a
		typ = Replaced
	} else {
		versions = append(slices.Clone(versions), a)
		sort.SliceStable(versions, func(i, j int) bool {
			return compareVersions(versions[i].Spec().Version, versions[j].Spec().Version) > 0
		})
	}
	r.byName[spec.Name] = versions
	r.revision++
	subs := r.subscribers()
	r.mu.Unlock()
	notify(subs, Change{Type: typ, Agent: a, Latest: versions[0]})
	return nil
}

// Remove unregisters name@version; an empty version removes every version
// of name. It returns the removed agents (none is not an error; callers that
// need one check the length).
func (r *Registry) Remove(name, version string) []Agent {
	r.mu.Lock()
	versions := r.byName[name]
	var removed, kept []Agent
	for _, a := range versions {
		if version == "" || a.Spec().Version == version {
			removed = append(removed, a)
		} else {
			kept = append(kept, a)
		}
	}
	if len(removed) == 0 {
		r.mu.Unlock()
		return nil
	}
	var latest Agent
	if len(kept) == 0 {
		delete(r.byName, name)
	} else {
		r.byName[name] = kept
		latest = kept[0]
	}
	r.revision++
	subs := r.subscribers()
	r.mu.Unlock()
	for _, a := range removed {
		notify(subs, Change{Type: Removed, Agent: a, Latest: latest})
	}
	return removed
}

// Resolve finds an agent by "name" (newest version) or "name@version".
// An unknown agent is errs.NotFound.
func (r *Registry) Resolve(ref string) (Agent, error) {
	name, version := SplitRef(ref)
	r.mu.RLock()
	versions := r.byName[name]
	r.mu.RUnlock()
	if len(versions) == 0 {
		return nil, errs.E(errs.NotFound, "unknown agent %q", name)
	}
	if version == "" {
		return versions[0], nil
	}
	for _, a := range versions {
		if a.Spec().Version == version {
			return a, nil
		}
	}
	have := make([]string, len(versions))
	for i, a := range versions {
		have[i] = a.Spec().Version
	}
	return nil, errs.E(errs.NotFound, "agent %q has no version %q (have %s)", name, version, strings.Join(have, ", "))
}

// Versions returns every version of name, newest first.
func (r *Registry) Versions(name string) []Agent {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.byName[name])
}

// All returns every registered agent, by name, newest version first.
func (r *Registry) All() []Agent {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Agent
	for _, name := range r.namesLocked() {
		out = append(out, r.byName[name]...)
	}
	return out
}

// Latest returns the newest version of each agent, by name.
func (r *Registry) Latest() []Agent {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := r.namesLocked()
	out := make([]Agent, len(names))
	for i, name := range names {
		out[i] = r.byName[name][0]
	}
	return out
}

// Revision increases on every change; callers can cache derived views.
func (r *Registry) Revision() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.revision
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Subscribe calls fn after every change, synchronously and in order, outside
// the registry's lock. It returns a function that ends the subscription.
func (r *Registry) Subscribe(fn func(Change)) (cancel func()) {
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

func (r *Registry) subscribers() []func(Change) {
	ids := make([]int, 0, len(r.subs))
	for id := range r.subs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	fns := make([]func(Change), len(ids))
	for i, id := range ids {
		fns[i] = r.subs[id]
	}
	return fns
}

func notify(subs []func(Change), c Change) {
	for _, fn := range subs {
		fn(c)
	}
}

// Query selects agents in Search. Every set field must match.
type Query struct {
	// Text matches words in the name, title, description and tags; agents
	// matching more words rank higher. Empty matches all.
	Text string `json:"text,omitempty"`
	// Tags the agent must all have.
	Tags []string `json:"tags,omitempty"`
	// Metadata key/values the agent must all have.
	Metadata map[string]string `json:"metadata,omitempty"`
	// AllVersions includes older versions; by default only the newest.
	AllVersions bool `json:"all_versions,omitempty"`
	// Limit caps the results; 0 means 20.
	Limit int `json:"limit,omitempty"`
}

// Match is one Search result.
type Match struct {
	Agent Agent
	Score float64
}

// Search finds agents by text, tags and metadata, best match first.
func (r *Registry) Search(q Query) []Match {
	var pool []Agent
	if q.AllVersions {
		pool = r.All()
	} else {
		pool = r.Latest()
	}
	words := strings.Fields(strings.ToLower(q.Text))
	var out []Match
	for _, a := range pool {
		s := a.Spec()
		if !hasAllTags(s.Tags, q.Tags) || !hasMetadata(s.Metadata, q.Metadata) {
			continue
		}
		score := 1.0
		if len(words) > 0 {
			score = textScore(s, words)
			if score == 0 {
				continue
			}
		}
		out = append(out, Match{Agent: a, Score: score})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// textScore weighs a word found in the name 3, in title or tags 2, in the
// description or metadata values 1; a word found nowhere scores 0 but does not
// disqualify the agent unless no word is found.
func textScore(s *Spec, words []string) float64 {
	name := strings.ToLower(s.Name)
	title := strings.ToLower(s.Title)
	desc := strings.ToLower(s.Description)
	tags := strings.ToLower(strings.Join(s.Tags, " "))
	var meta strings.Builder
	for _, v := range s.Metadata {
		meta.WriteString(strings.ToLower(v))
		meta.WriteByte(' ')
	}
	metas := meta.String()
	var score float64
	for _, w := range words {
		switch {
		case strings.Contains(name, w):
			score += 3
		case strings.Contains(title, w) || strings.Contains(tags, w):
			score += 2
		case strings.Contains(desc, w) || strings.Contains(metas, w):
			score++
		}
	}
	return score
}

func hasAllTags(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func hasMetadata(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
