package agents_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mcptower/agents"
)

// fakeAgent is an Agent whose behaviour is a function.
type fakeAgent struct {
	spec   agents.Spec
	invoke func(ctx context.Context, call *agents.Call) (*agents.Result, error)
}

var _ agents.Agent = (*fakeAgent)(nil)

func (a *fakeAgent) Spec() *agents.Spec { return &a.spec }

func (a *fakeAgent) Invoke(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	if a.invoke == nil {
		return &agents.Result{Content: []agents.Content{agents.Text("ok")}}, nil
	}
	return a.invoke(ctx, call)
}

func newFake(name, version string) *fakeAgent {
	return &fakeAgent{spec: agents.Spec{Name: name, Version: version}}
}

// refs returns the name@version of each agent.
func refs(as []agents.Agent) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Spec().Ref()
	}
	return out
}

func matchRefs(ms []agents.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Agent.Spec().Ref()
	}
	return out
}

func mustAdd(t testing.TB, r *agents.Registry, as ...agents.Agent) {
	t.Helper()
	for _, a := range as {
		if err := r.Add(a); err != nil {
			t.Fatalf("Add(%s): %v", a.Spec().Ref(), err)
		}
	}
}

func TestRegistryAddValidates(t *testing.T) {
	r := agents.NewRegistry()
	for _, tc := range []struct {
		name, version string
		wantMsg       string
	}{
		{"", "1.0.0", "agent name is empty"},
		{"has space", "1.0.0", "has character ' '"},
		{"slash/name", "1.0.0", "has character '/'"},
		{"x", "latest", `version "latest" is not a semantic version`},
		{"x", "1.2.3.4", "is not a semantic version"},
		{"x", "1.0.0-", "is not a semantic version"},
		{"x", "01.0.0", "is not a semantic version"},
	} {
		err := r.Add(newFake(tc.name, tc.version))
		if agents.CodeOf(err) != agents.CodeInvalid || !strings.Contains(fmt.Sprint(err), tc.wantMsg) {
			t.Errorf("Add(%q, %q) = %v (code %v), want Invalid containing %q", tc.name, tc.version, err, agents.CodeOf(err), tc.wantMsg)
		}
	}
	if got := r.All(); len(got) != 0 {
		t.Errorf("rejected agents were registered: %v", refs(got))
	}

	// An input schema that is not an object is rejected.
	a := newFake("scalar", "1.0.0")
	a.spec.Input = mustParse(t, `{"type":"string"}`)
	if err := r.Add(a); agents.CodeOf(err) != agents.CodeInvalid || !strings.Contains(err.Error(), "object") {
		t.Errorf("Add(string input) = %v, want Invalid about an object schema", err)
	}

	// An empty version defaults, and the spec is normalized in place.
	d := newFake("defaulted", "")
	mustAdd(t, r, d)
	if d.Spec().Version != agents.DefaultVersion {
		t.Errorf("version = %q, want %q", d.Spec().Version, agents.DefaultVersion)
	}
	if _, err := r.Resolve("defaulted@" + agents.DefaultVersion); err != nil {
		t.Errorf("Resolve(defaulted@%s): %v", agents.DefaultVersion, err)
	}
}

func TestRegistryAddDuplicateConflicts(t *testing.T) {
	r := agents.NewRegistry()
	first := newFake("a", "1.0.0")
	mustAdd(t, r, first)
	err := r.Add(newFake("a", "1.0.0"))
	if agents.CodeOf(err) != agents.CodeConflict {
		t.Fatalf("second Add = %v (code %v), want Conflict", err, agents.CodeOf(err))
	}
	if !strings.Contains(err.Error(), "a@1.0.0") {
		t.Errorf("conflict error %q does not name a@1.0.0", err)
	}
	if got, _ := r.Resolve("a@1.0.0"); got != first {
		t.Errorf("a conflicting Add replaced the registered agent")
	}
	// Another version of the same name is no conflict.
	mustAdd(t, r, newFake("a", "1.0.1"))
}

func TestRegistryPutReplaces(t *testing.T) {
	r := agents.NewRegistry()
	old := newFake("a", "1.0.0")
	mustAdd(t, r, old, newFake("a", "0.9.0"))
	rev := r.Revision()
	repl := newFake("a", "1.0.0")
	if err := r.Put(repl); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Resolve("a@1.0.0"); got != repl {
		t.Errorf("Resolve after Put returned the old agent")
	}
	if got, _ := r.Resolve("a"); got != repl {
		t.Errorf("bare Resolve after Put did not return the replacement")
	}
	if diff := cmp.Diff([]string{"a@1.0.0", "a@0.9.0"}, refs(r.Versions("a"))); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if r.Revision() <= rev {
		t.Errorf("Revision did not increase on Put")
	}
	// Put of a new version adds it.
	if err := r.Put(newFake("a", "2.0.0")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a@2.0.0", "a@1.0.0", "a@0.9.0"}, refs(r.Versions("a"))); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
}

func TestRegistryResolve(t *testing.T) {
	r := agents.NewRegistry()
	// Added out of order; 1.10.0 is newer than 1.9.0 and 1.0.0 than its rc.
	mustAdd(t, r,
		newFake("conv", "1.9.0"),
		newFake("conv", "1.10.0"),
		newFake("conv", "1.0.0"),
		newFake("conv", "1.10.1-rc.1"),
		newFake("conv", "1.0.0-rc.1"),
	)
	for _, tc := range []struct {
		ref, want string
	}{
		{"conv", "conv@1.10.1-rc.1"},
		{"conv@", "conv@1.10.1-rc.1"},
		{"conv@1.9.0", "conv@1.9.0"},
		{"conv@1.0.0-rc.1", "conv@1.0.0-rc.1"},
		{"conv@1.0.0", "conv@1.0.0"},
	} {
		a, err := r.Resolve(tc.ref)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.ref, err)
			continue
		}
		if got := a.Spec().Ref(); got != tc.want {
			t.Errorf("Resolve(%q) = %s, want %s", tc.ref, got, tc.want)
		}
	}
	wantOrder := []string{"conv@1.10.1-rc.1", "conv@1.10.0", "conv@1.9.0", "conv@1.0.0", "conv@1.0.0-rc.1"}
	if diff := cmp.Diff(wantOrder, refs(r.Versions("conv"))); diff != "" {
		t.Errorf("Versions newest first (-want +got):\n%s", diff)
	}

	_, err := r.Resolve("nope")
	if agents.CodeOf(err) != agents.CodeNotFound || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Resolve(nope) = %v, want NotFound naming it", err)
	}
	_, err = r.Resolve("conv@3.0.0")
	if agents.CodeOf(err) != agents.CodeNotFound {
		t.Fatalf("Resolve(conv@3.0.0) = %v, want NotFound", err)
	}
	wantMsg := `agent "conv" has no version "3.0.0" (have 1.10.1-rc.1, 1.10.0, 1.9.0, 1.0.0, 1.0.0-rc.1)`
	if diff := cmp.Diff(wantMsg, err.Error()); diff != "" {
		t.Errorf("error message (-want +got):\n%s", diff)
	}
	if got := r.Versions("nope"); len(got) != 0 {
		t.Errorf("Versions(nope) = %v", refs(got))
	}
}

func TestRegistryRemove(t *testing.T) {
	r := agents.NewRegistry()
	mustAdd(t, r, newFake("a", "1.0.0"), newFake("a", "2.0.0"), newFake("a", "3.0.0"), newFake("b", "1.0.0"))

	removed := r.Remove("a", "3.0.0")
	if diff := cmp.Diff([]string{"a@3.0.0"}, refs(removed)); diff != "" {
		t.Errorf("Remove(a, 3.0.0) (-want +got):\n%s", diff)
	}
	if a, _ := r.Resolve("a"); a.Spec().Version != "2.0.0" {
		t.Errorf("after removing the newest, Resolve(a) = %s, want a@2.0.0", a.Spec().Ref())
	}
	if _, err := r.Resolve("a@3.0.0"); agents.CodeOf(err) != agents.CodeNotFound {
		t.Errorf("removed version still resolves: %v", err)
	}
	if got := r.Remove("a", "9.9.9"); got != nil {
		t.Errorf("Remove of a missing version = %v, want nil", refs(got))
	}
	if got := r.Remove("zzz", ""); got != nil {
		t.Errorf("Remove of a missing name = %v, want nil", refs(got))
	}

	removed = r.Remove("a", "")
	if diff := cmp.Diff([]string{"a@2.0.0", "a@1.0.0"}, refs(removed)); diff != "" {
		t.Errorf("Remove(a, \"\") (-want +got):\n%s", diff)
	}
	if _, err := r.Resolve("a"); agents.CodeOf(err) != agents.CodeNotFound {
		t.Errorf("Resolve(a) after removing all = %v, want NotFound", err)
	}
	if diff := cmp.Diff([]string{"b@1.0.0"}, refs(r.All())); diff != "" {
		t.Errorf("All after removals (-want +got):\n%s", diff)
	}
	// A removed name can be added again.
	mustAdd(t, r, newFake("a", "1.0.0"))
}

func TestRegistryLatestAndAll(t *testing.T) {
	r := agents.NewRegistry()
	if len(r.All()) != 0 || len(r.Latest()) != 0 {
		t.Fatalf("empty registry lists agents")
	}
	mustAdd(t, r,
		newFake("zeta", "1.0.0"),
		newFake("alpha", "1.9.0"),
		newFake("mid", "0.1.0"),
		newFake("alpha", "1.10.0"),
		newFake("zeta", "0.5.0"),
	)
	if diff := cmp.Diff([]string{"alpha@1.10.0", "mid@0.1.0", "zeta@1.0.0"}, refs(r.Latest())); diff != "" {
		t.Errorf("Latest (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alpha@1.10.0", "alpha@1.9.0", "mid@0.1.0", "zeta@1.0.0", "zeta@0.5.0"}, refs(r.All())); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
}

func TestRegistryRevision(t *testing.T) {
	r := agents.NewRegistry()
	rev := r.Revision()
	step := func(what string, change func()) {
		t.Helper()
		change()
		if got := r.Revision(); got <= rev {
			t.Errorf("%s: Revision = %d, want > %d", what, got, rev)
		}
		rev = r.Revision()
	}
	step("Add", func() { mustAdd(t, r, newFake("a", "1.0.0")) })
	step("Put", func() { _ = r.Put(newFake("a", "1.0.0")) })
	step("Remove", func() { r.Remove("a", "") })
	_ = r.Add(newFake("bad name", "1.0.0"))
	r.Remove("a", "")
	if r.Revision() != rev {
		t.Errorf("a failed Add or a no-op Remove changed the revision")
	}
}

func searchFixture(t *testing.T) *agents.Registry {
	t.Helper()
	r := agents.NewRegistry()
	mk := func(name, version, title, desc string, tags []string, meta map[string]string) *fakeAgent {
		a := newFake(name, version)
		a.spec.Title, a.spec.Description, a.spec.Tags, a.spec.Metadata = title, desc, tags, meta
		return a
	}
	mustAdd(t, r,
		mk("units", "1.0.0", "Units", "Convert between units of length", []string{"math"}, map[string]string{"task_type": "transform"}),
		mk("convert", "1.0.0", "", "Change currencies", []string{"money"}, map[string]string{"task_type": "transform", "cost": "low"}),
		mk("convert", "2.0.0", "", "Change currencies, faster; for lengths see units", []string{"money", "fast"}, map[string]string{"task_type": "transform", "cost": "low"}),
		mk("weather", "1.0.0", "Forecast", "Weather for a city", []string{"geo", "http"}, map[string]string{"task_type": "lookup"}),
		mk("translate", "1.0.0", "Translator", "Translate text between languages", []string{"text", "llm"}, map[string]string{"owner": "convert-team"}),
	)
	return r
}

func TestRegistrySearch(t *testing.T) {
	r := searchFixture(t)
	for _, tc := range []struct {
		name string
		q    agents.Query
		want []string
	}{
		{"empty query returns the newest of every agent by name",
			agents.Query{}, []string{"convert@2.0.0", "translate@1.0.0", "units@1.0.0", "weather@1.0.0"}},
		{"name match outranks metadata and description matches; ties keep name order",
			agents.Query{Text: "convert"}, []string{"convert@2.0.0", "translate@1.0.0", "units@1.0.0"}},
		{"name match outranks a description match of an agent listed before it",
			agents.Query{Text: "units"}, []string{"units@1.0.0", "convert@2.0.0"}},
		{"case-insensitive",
			agents.Query{Text: "CONVERT"}, []string{"convert@2.0.0", "translate@1.0.0", "units@1.0.0"}},
		{"title beats description",
			agents.Query{Text: "forecast city"}, []string{"weather@1.0.0"}},
		{"more words found ranks higher",
			agents.Query{Text: "units length"}, []string{"units@1.0.0", "convert@2.0.0"}},
		{"words found nowhere do not disqualify",
			agents.Query{Text: "languages xyzzy"}, []string{"translate@1.0.0"}},
		{"no word found matches nothing",
			agents.Query{Text: "xyzzy"}, nil},
		{"tags must all match",
			agents.Query{Tags: []string{"money", "fast"}}, []string{"convert@2.0.0"}},
		{"older versions are filtered by tags too",
			agents.Query{Tags: []string{"fast"}, AllVersions: true}, []string{"convert@2.0.0"}},
		{"tag that nobody has",
			agents.Query{Tags: []string{"money", "geo"}}, nil},
		{"metadata",
			agents.Query{Metadata: map[string]string{"task_type": "transform"}}, []string{"convert@2.0.0", "units@1.0.0"}},
		{"metadata value must be equal",
			agents.Query{Metadata: map[string]string{"task_type": "transfor"}}, nil},
		{"metadata and text",
			agents.Query{Text: "convert", Metadata: map[string]string{"cost": "low"}}, []string{"convert@2.0.0"}},
		{"all versions",
			agents.Query{Text: "currencies", AllVersions: true}, []string{"convert@2.0.0", "convert@1.0.0"}},
		{"limit",
			agents.Query{Limit: 2}, []string{"convert@2.0.0", "translate@1.0.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, matchRefs(r.Search(tc.q)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Search(%+v) (-want +got):\n%s", tc.q, diff)
			}
		})
	}

	ms := r.Search(agents.Query{Text: "convert"})
	if len(ms) != 3 || !(ms[0].Score > ms[1].Score && ms[1].Score >= ms[2].Score && ms[2].Score > 0) {
		t.Errorf("scores are not strictly ranked: %+v", ms)
	}
}

func TestRegistrySearchDefaultLimit(t *testing.T) {
	r := agents.NewRegistry()
	for i := range 25 {
		mustAdd(t, r, newFake(fmt.Sprintf("agent%02d", i), "1.0.0"))
	}
	if got := len(r.Search(agents.Query{})); got != 20 {
		t.Errorf("Search with no limit returned %d, want the default 20", got)
	}
	if got := len(r.Search(agents.Query{Limit: 100})); got != 25 {
		t.Errorf("Search with limit 100 returned %d, want 25", got)
	}
}

type changeView struct {
	Type   string
	Agent  string
	Latest string
}

func TestRegistrySubscribe(t *testing.T) {
	r := agents.NewRegistry()
	var got []changeView
	cancel := r.Subscribe(func(c agents.Change) {
		v := changeView{Type: c.Type.String(), Agent: c.Agent.Spec().Ref()}
		if c.Latest != nil {
			v.Latest = c.Latest.Spec().Ref()
		}
		// Subscribers run outside the lock: reading the registry must not deadlock.
		_ = r.Latest()
		got = append(got, v)
	})

	mustAdd(t, r, newFake("a", "1.0.0"))
	mustAdd(t, r, newFake("a", "2.0.0"))
	mustAdd(t, r, newFake("a", "1.5.0"))
	_ = r.Put(newFake("a", "1.5.0"))
	_ = r.Add(newFake("a", "1.5.0")) // conflict: no change
	r.Remove("a", "2.0.0")
	r.Remove("a", "")
	r.Remove("a", "") // nothing left: no change

	want := []changeView{
		{"added", "a@1.0.0", "a@1.0.0"},
		{"added", "a@2.0.0", "a@2.0.0"},
		{"added", "a@1.5.0", "a@2.0.0"},
		{"replaced", "a@1.5.0", "a@2.0.0"},
		{"removed", "a@2.0.0", "a@1.5.0"},
		{"removed", "a@1.5.0", ""},
		{"removed", "a@1.0.0", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	cancel()
	cancel() // idempotent
	mustAdd(t, r, newFake("b", "1.0.0"))
	if len(got) != len(want) {
		t.Errorf("a cancelled subscription got %v", got[len(want):])
	}
}

func TestRegistrySubscribeManyInOrder(t *testing.T) {
	r := agents.NewRegistry()
	var order []string
	cancels := make([]func(), 3)
	for i := range cancels {
		cancels[i] = r.Subscribe(func(c agents.Change) { order = append(order, fmt.Sprintf("%d:%s", i, c.Agent.Spec().Name)) })
	}
	mustAdd(t, r, newFake("x", "1.0.0"))
	cancels[1]()
	mustAdd(t, r, newFake("y", "1.0.0"))
	want := []string{"0:x", "1:x", "2:x", "0:y", "2:y"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	// A subscriber may end its own subscription while being notified.
	var n int
	var self func()
	self = r.Subscribe(func(agents.Change) { n++; self() })
	mustAdd(t, r, newFake("z1", "1.0.0"), newFake("z2", "1.0.0"))
	if n != 1 {
		t.Errorf("self-cancelling subscriber called %d times, want 1", n)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := agents.NewRegistry()
	var mu sync.Mutex
	var changes int
	defer r.Subscribe(func(agents.Change) { mu.Lock(); changes++; mu.Unlock() })()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				a := newFake(fmt.Sprintf("g%d", g), fmt.Sprintf("1.%d.0", i))
				a.spec.Description = "concurrent agent"
				if err := r.Add(a); err != nil {
					t.Error(err)
					return
				}
				if _, err := r.Resolve(a.spec.Name); err != nil {
					t.Error(err)
				}
				r.Search(agents.Query{Text: "concurrent", AllVersions: true})
				r.Latest()
				if i%2 == 1 {
					r.Remove(a.spec.Name, a.spec.Version)
				}
			}
		})
	}
	wg.Wait()
	if got := len(r.All()); got != 4*25 {
		t.Errorf("All = %d agents, want %d", got, 4*25)
	}
	for g := range 4 {
		a, err := r.Resolve(fmt.Sprintf("g%d", g))
		if err != nil || a.Spec().Version != "1.48.0" {
			t.Errorf("Resolve(g%d) = %v, %v; want version 1.48.0", g, a, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if changes != 4*75 {
		t.Errorf("subscriber saw %d changes, want %d", changes, 4*75)
	}
}

func TestValidName(t *testing.T) {
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"echo", true},
		{"Context_History-2.v1", true},
		{"a", true},
		{"0", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{"has space", false},
		{"a@b", false},
		{"a/b", false},
		{"a:b", false},
		{"tab\t", false},
		{"ünïcode", false},
		{"emoji😀", false},
	} {
		err := agents.ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && agents.CodeOf(err) != agents.CodeInvalid {
			t.Errorf("ValidName(%q) code = %v, want Invalid", tc.name, agents.CodeOf(err))
		}
	}
}

func TestSplitRef(t *testing.T) {
	for _, tc := range []struct{ ref, name, version string }{
		{"a", "a", ""},
		{"a@1.0.0", "a", "1.0.0"},
		{"a@", "a", ""},
		{"a@1@2", "a", "1@2"},
	} {
		n, v := agents.SplitRef(tc.ref)
		if n != tc.name || v != tc.version {
			t.Errorf("SplitRef(%q) = %q, %q; want %q, %q", tc.ref, n, v, tc.name, tc.version)
		}
	}
}
