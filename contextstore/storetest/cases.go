package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/contextstore"
	"mcptower/internal/errs"
)

func (s *suite) testPing(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testAppendAssigns checks that Append assigns Session, Seq 1..n and Time,
// ignoring what the caller put there, and keeps Role, Agent, Tags, Content.
func (s *suite) testAppendAssigns(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	start := time.Now()
	in := []contextstore.Entry{
		{Role: contextstore.RoleUser, Content: json.RawMessage(`{"text":"hi"}`), Tags: map[string]string{"k": "v"}},
		{Role: contextstore.RoleAgent, Agent: "echo@1.0.0", Content: json.RawMessage(`"hello"`)},
		{Role: contextstore.RoleTool, Content: nil}, // empty content means null
		{Role: contextstore.RoleSystem, Content: json.RawMessage(`[1,2]`),
			Session: "someone-else", Seq: 42, Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	var got []contextstore.Entry
	for _, e := range in {
		got = append(got, mustAppend(t, st, id, e))
	}
	end := time.Now()

	want := slices.Clone(in)
	for i := range want {
		want[i].Session = id
		want[i].Seq = int64(i + 1)
		want[i].Time = got[i].Time // checked below
	}
	want[2].Content = json.RawMessage("null")
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Append results (-want +got):\n%s", diff)
	}
	// Allow for a backend whose clock is not ours (a database server).
	const skew = time.Minute
	for i, e := range got {
		if e.Time.Before(start.Add(-skew)) || e.Time.After(end.Add(skew)) {
			t.Errorf("entry %d: Time %v not near the time of Append (%v..%v)", i, e.Time, start, end)
		}
		if i > 0 && e.Time.Before(got[i-1].Time) {
			t.Errorf("entry %d: Time %v before the previous entry's %v", i, e.Time, got[i-1].Time)
		}
	}
	if diff := cmp.Diff(got, history(t, st, id, contextstore.HistoryQuery{}), cmpOpts); diff != "" {
		t.Errorf("History differs from what Append returned (-append +history):\n%s", diff)
	}
}

func (s *suite) testContentRoundTrip(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	big := `{"blob":"` + strings.Repeat("0123456789abcdef", 8<<10) + `"}` // 128 KiB
	contents := []string{
		`null`,
		`true`,
		`0`,
		`-12.5`,
		`12345678901234567890`,
		`"plain"`,
		`"quotes \" backslash \\ newline \n tab \t nul \u0000 line-sep \u2028 html <>&"`,
		`"unicode: é ✓ 🚀 日本語"`,
		`[]`,
		`{}`,
		`[1,"two",{"three":[3]},null,false]`,
		`{"nested":{"deep":{"deeper":[{"k":"v"}]}},"empty":{},"list":[]}`,
		" \n\t{ \"spaced\" : [ 1 , 2 ] }\n ",
		big,
	}
	for _, c := range contents {
		mustAppend(t, st, id, entry(contextstore.RoleTool, c))
	}
	got := history(t, st, id, contextstore.HistoryQuery{Limit: len(contents)})
	if len(got) != len(contents) {
		t.Fatalf("History returned %d entries, want %d", len(got), len(contents))
	}
	for i, e := range got {
		if !jsonEqual([]byte(contents[i]), e.Content) {
			c, g := contents[i], string(e.Content)
			if len(c) > 200 {
				c, g = c[:200]+"...", g[:min(len(g), 200)]+"..."
			}
			t.Errorf("entry %d: content %s, want %s", i, g, c)
		}
		if !json.Valid(e.Content) {
			t.Errorf("entry %d: content is not valid JSON", i)
		}
	}
}

// testNoAliasing checks that the store keeps its own copies: changing what
// was passed to Append or what History returned changes nothing stored.
func (s *suite) testNoAliasing(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	e := contextstore.Entry{Role: contextstore.RoleUser, Content: json.RawMessage(`{"a":"b"}`), Tags: map[string]string{"k": "v"}}
	mustAppend(t, st, id, e)
	copy(e.Content, `{"x":"y"}`)
	e.Tags["k"] = "changed"

	h := history(t, st, id, contextstore.HistoryQuery{})
	want := []contextstore.Entry{{Session: id, Seq: 1, Time: h[0].Time, Role: contextstore.RoleUser,
		Content: json.RawMessage(`{"a":"b"}`), Tags: map[string]string{"k": "v"}}}
	if diff := cmp.Diff(want, h, cmpOpts); diff != "" {
		t.Fatalf("after changing Append's input (-want +got):\n%s", diff)
	}
	copy(h[0].Content, `{"x":"y"}`)
	h[0].Tags["k"] = "changed"
	if diff := cmp.Diff(want, history(t, st, id, contextstore.HistoryQuery{}), cmpOpts); diff != "" {
		t.Fatalf("after changing History's result (-want +got):\n%s", diff)
	}
}

func (s *suite) testHistoryPaging(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	all := appendN(t, st, id, 25)
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("append %d got Seq %d, want %d", i+1, e.Seq, i+1)
		}
	}
	for _, tc := range []struct {
		name string
		q    contextstore.HistoryQuery
		want []int64
	}{
		{"zero", contextstore.HistoryQuery{}, seqRange(1, 25)},
		{"limit", contextstore.HistoryQuery{Limit: 10}, seqRange(1, 10)},
		{"negative limit is default", contextstore.HistoryQuery{Limit: -1}, seqRange(1, 25)},
		{"after", contextstore.HistoryQuery{After: 10, Limit: 10}, seqRange(11, 20)},
		{"after near end", contextstore.HistoryQuery{After: 20, Limit: 10}, seqRange(21, 25)},
		{"after end", contextstore.HistoryQuery{After: 25}, nil},
		{"after beyond end", contextstore.HistoryQuery{After: 1000}, nil},
		{"before", contextstore.HistoryQuery{Before: 11, Limit: 5}, seqRange(6, 10)},
		{"before near start", contextstore.HistoryQuery{Before: 3, Limit: 5}, seqRange(1, 2)},
		{"before start", contextstore.HistoryQuery{Before: 1}, nil},
		{"before beyond end", contextstore.HistoryQuery{Before: 100, Limit: 3}, seqRange(23, 25)},
		{"before no limit", contextstore.HistoryQuery{Before: 20}, seqRange(1, 19)},
		{"last", contextstore.HistoryQuery{Last: true, Limit: 5}, seqRange(21, 25)},
		{"last more than all", contextstore.HistoryQuery{Last: true, Limit: 50}, seqRange(1, 25)},
		{"last no limit", contextstore.HistoryQuery{Last: true}, seqRange(1, 25)},
		{"after and before", contextstore.HistoryQuery{After: 5, Before: 9}, seqRange(6, 8)},
		{"after and before pages forward", contextstore.HistoryQuery{After: 5, Before: 20, Limit: 3}, seqRange(6, 8)},
		{"after and before empty", contextstore.HistoryQuery{After: 5, Before: 6}, nil},
		{"last ignored with after", contextstore.HistoryQuery{After: 20, Last: true, Limit: 2}, seqRange(21, 22)},
		{"last ignored with before", contextstore.HistoryQuery{Before: 10, Last: true, Limit: 2}, seqRange(8, 9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := history(t, st, id, tc.q)
			if diff := cmp.Diff(tc.want, seqs(got), cmpOpts); diff != "" {
				t.Errorf("History(%+v) seqs (-want +got):\n%s", tc.q, diff)
			}
			// The entries are the ones Append returned, not just their Seqs.
			var want []contextstore.Entry
			for _, seq := range tc.want {
				want = append(want, all[seq-1])
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("History(%+v) (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

// testHistoryWalk pages through a whole log forward with After and backward
// with Before, as a client following cursors would.
func (s *suite) testHistoryWalk(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	const n, page = 25, 7
	appendN(t, st, id, n)

	var forward []int64
	for after, pages := int64(0), 0; ; pages++ {
		if pages > n {
			t.Fatal("forward paging does not end")
		}
		p := history(t, st, id, contextstore.HistoryQuery{After: after, Limit: page})
		if len(p) == 0 {
			break
		}
		if len(p) > page {
			t.Fatalf("page of %d entries, limit %d", len(p), page)
		}
		forward = append(forward, seqs(p)...)
		after = p[len(p)-1].Seq
	}
	if diff := cmp.Diff(seqRange(1, n), forward); diff != "" {
		t.Errorf("forward walk (-want +got):\n%s", diff)
	}

	var backward []int64
	q := contextstore.HistoryQuery{Last: true, Limit: page}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("backward paging does not end")
		}
		p := history(t, st, id, q)
		if len(p) == 0 {
			break
		}
		if len(p) > page {
			t.Fatalf("page of %d entries, limit %d", len(p), page)
		}
		if !slices.IsSorted(seqs(p)) {
			t.Fatalf("backward page %v not in ascending order", seqs(p))
		}
		backward = append(seqs(p), backward...)
		q = contextstore.HistoryQuery{Before: p[0].Seq, Limit: page}
	}
	if diff := cmp.Diff(seqRange(1, n), backward); diff != "" {
		t.Errorf("backward walk (-want +got):\n%s", diff)
	}
}

func (s *suite) testHistoryLimits(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	const n = contextstore.MaxLimit + 5
	appendN(t, st, id, n)
	for _, tc := range []struct {
		name string
		q    contextstore.HistoryQuery
		want []int64
	}{
		{"default", contextstore.HistoryQuery{}, seqRange(1, contextstore.DefaultLimit)},
		{"clamped", contextstore.HistoryQuery{Limit: 5 * contextstore.MaxLimit}, seqRange(1, contextstore.MaxLimit)},
		{"last clamped", contextstore.HistoryQuery{Last: true, Limit: 5 * contextstore.MaxLimit}, seqRange(n-contextstore.MaxLimit+1, n)},
		{"last default", contextstore.HistoryQuery{Last: true}, seqRange(n-contextstore.DefaultLimit+1, n)},
		{"before default", contextstore.HistoryQuery{Before: n}, seqRange(n-contextstore.DefaultLimit, n-1)},
		{"after clamped", contextstore.HistoryQuery{After: 2, Limit: 5 * contextstore.MaxLimit}, seqRange(3, contextstore.MaxLimit+2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, seqs(history(t, st, id, tc.q))); diff != "" {
				t.Errorf("History(%+v) seqs (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

func (s *suite) testHistoryUnknownSession(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	for _, q := range []contextstore.HistoryQuery{{}, {Last: true}, {Before: 10}, {After: 3}} {
		if h := history(t, st, newID(t), q); len(h) != 0 {
			t.Errorf("History(%+v) of a session never appended to = %v, want empty", q, h)
		}
	}
}

func (s *suite) testConcurrentAppend(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	tag := newTag(t)
	const n = 100
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   = make([]contextstore.Entry, n)
		errc  = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			e := numbered(i)
			e.Tags = tag
			var err error
			got[i], err = st.Append(t.Context(), id, e)
			errc <- err
		})
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent Append: %v", err)
		}
	}
	returned := seqs(got)
	slices.Sort(returned)
	if diff := cmp.Diff(seqRange(1, n), returned); diff != "" {
		t.Fatalf("Seqs returned by concurrent Appends (-want +got):\n%s", diff)
	}

	h := history(t, st, id, contextstore.HistoryQuery{Limit: contextstore.MaxLimit})
	if diff := cmp.Diff(seqRange(1, n), seqs(h)); diff != "" {
		t.Fatalf("History seqs after concurrent Appends (-want +got):\n%s", diff)
	}
	// Each Append's entry is stored under the Seq it returned.
	bySeq := make([]contextstore.Entry, n+1)
	for _, e := range got {
		bySeq[e.Seq] = e
	}
	if diff := cmp.Diff(bySeq[1:], h, cmpOpts); diff != "" {
		t.Errorf("History differs from what concurrent Appends returned (-append +history):\n%s", diff)
	}
	if si, ok := findSession(t, st, tag, id); !ok || si.Entries != n {
		t.Errorf("Sessions: found=%v Entries=%d, want found with %d entries", ok, si.Entries, n)
	}
}

// testConcurrentReadWrite mixes appends to several sessions with reads, for
// the race detector and for per-session Seq independence.
func (s *suite) testConcurrentReadWrite(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	const sessionsN, perSession = 4, 20
	var idList []string
	for range sessionsN {
		idList = append(idList, newID(t))
	}
	ctx := t.Context()
	done := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, id := range idList {
					if _, err := st.History(ctx, id, contextstore.HistoryQuery{Last: true, Limit: 5}); err != nil {
						t.Errorf("History: %v", err)
						return
					}
				}
				if _, err := st.Sessions(ctx, contextstore.SessionQuery{Tags: tag}); err != nil {
					t.Errorf("Sessions: %v", err)
					return
				}
			}
		})
	}
	for _, id := range idList {
		for w := range 2 {
			writers.Go(func() {
				for i := range perSession / 2 {
					e := numbered(w*100 + i)
					e.Tags = tag
					if _, err := st.Append(ctx, id, e); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	writers.Wait()
	close(done)
	readers.Wait()
	for _, id := range idList {
		if diff := cmp.Diff(seqRange(1, perSession), seqs(history(t, st, id, contextstore.HistoryQuery{}))); diff != "" {
			t.Errorf("session %s seqs (-want +got):\n%s", id, diff)
		}
	}
	if got := len(sessions(t, st, contextstore.SessionQuery{Tags: tag})); got != sessionsN {
		t.Errorf("Sessions by tag found %d sessions, want %d", got, sessionsN)
	}
}

// testSessionTags checks that entry tags merge into the session's tags
// (later values win), that entries keep their own tags, and that Sessions
// filters on every tag given.
func (s *suite) testSessionTags(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	key := "storetest"
	id, other := newID(t), newID(t)
	e1 := contextstore.Entry{Role: contextstore.RoleUser, Tags: map[string]string{key: tag[key], "a": "1", "b": "1"}}
	e2 := contextstore.Entry{Role: contextstore.RoleAgent, Tags: map[string]string{"b": "2", "c": "3"}}
	e3 := contextstore.Entry{Role: contextstore.RoleTool} // no tags: keeps the session's
	mustAppend(t, st, id, e1)
	mustAppend(t, st, id, e2)
	mustAppend(t, st, id, e3)
	mustAppend(t, st, other, contextstore.Entry{Role: contextstore.RoleUser, Tags: map[string]string{key: tag[key], "b": "1"}})

	si, ok := findSession(t, st, tag, id)
	if !ok {
		t.Fatalf("session %s not found by tag %v", id, tag)
	}
	wantTags := map[string]string{key: tag[key], "a": "1", "b": "2", "c": "3"}
	if diff := cmp.Diff(wantTags, si.Tags); diff != "" {
		t.Errorf("session tags (-want +got):\n%s", diff)
	}
	h := history(t, st, id, contextstore.HistoryQuery{})
	var gotTags []map[string]string
	for _, e := range h {
		gotTags = append(gotTags, e.Tags)
	}
	if diff := cmp.Diff([]map[string]string{e1.Tags, e2.Tags, nil}, gotTags, cmpOpts); diff != "" {
		t.Errorf("entry tags (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		tags map[string]string
		want []string
	}{
		{"unique tag", map[string]string{key: tag[key]}, []string{other, id}},
		{"merged value", map[string]string{key: tag[key], "b": "2"}, []string{id}},
		{"overwritten value", map[string]string{key: tag[key], "b": "1"}, []string{other}},
		{"every tag", map[string]string{key: tag[key], "a": "1", "c": "3"}, []string{id}},
		{"one tag missing", map[string]string{key: tag[key], "a": "1", "d": "4"}, nil},
		{"empty value is a value", map[string]string{key: tag[key], "a": ""}, nil},
		{"no such tag", map[string]string{key: tag[key] + "-nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(sessions(t, st, contextstore.SessionQuery{Tags: tc.tags}))
			if diff := cmp.Diff(tc.want, got, cmpOpts); diff != "" {
				t.Errorf("Sessions(Tags: %v) (-want +got):\n%s", tc.tags, diff)
			}
		})
	}
}

func (s *suite) testSessionInfo(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	id := newID(t)
	first := mustAppend(t, st, id, contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
	tick()
	mustAppend(t, st, id, entry(contextstore.RoleAgent, `1`))
	tick()
	last := mustAppend(t, st, id, entry(contextstore.RoleAgent, `2`))

	si, ok := findSession(t, st, tag, id)
	if !ok {
		t.Fatalf("session %s not found by tag %v", id, tag)
	}
	if si.Entries != 3 {
		t.Errorf("Entries = %d, want 3", si.Entries)
	}
	if si.Created.IsZero() || si.Created.After(first.Time) {
		t.Errorf("Created = %v, want non-zero and not after the first entry's time %v", si.Created, first.Time)
	}
	if si.Updated.Before(last.Time) {
		t.Errorf("Updated = %v, want not before the last entry's time %v", si.Updated, last.Time)
	}
	if !si.Updated.After(si.Created) {
		t.Errorf("Updated = %v, want after Created %v", si.Updated, si.Created)
	}
	if !si.Expires.IsZero() {
		t.Errorf("Expires = %v, want zero without a TTL", si.Expires)
	}
}

func (s *suite) testSessionsRecency(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	a, b, c := newID(t), newID(t), newID(t)
	for _, id := range []string{a, b, c, a} {
		mustAppend(t, st, id, contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
		tick()
	}
	got := ids(sessions(t, st, contextstore.SessionQuery{Tags: tag}))
	if diff := cmp.Diff([]string{a, c, b}, got); diff != "" {
		t.Errorf("Sessions order (-want +got):\n%s", diff)
	}
}

// testSessionsCursor pages through sessions with Limit and UpdatedBefore set
// to the last result's Updated.
func (s *suite) testSessionsCursor(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	const n, page = 7, 3
	var want []string
	for range n {
		id := newID(t)
		mustAppend(t, st, id, contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
		want = append([]string{id}, want...) // newest first
		tick()
	}
	var got []string
	q := contextstore.SessionQuery{Tags: tag, Limit: page}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("session paging does not end")
		}
		p := sessions(t, st, q)
		if len(p) > page {
			t.Fatalf("page of %d sessions, limit %d", len(p), page)
		}
		if len(p) == 0 {
			break
		}
		got = append(got, ids(p)...)
		q.UpdatedBefore = p[len(p)-1].Updated
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sessions paged with UpdatedBefore (-want +got):\n%s", diff)
	}

	// UpdatedBefore is strict.
	all := sessions(t, st, contextstore.SessionQuery{Tags: tag})
	q = contextstore.SessionQuery{Tags: tag, UpdatedBefore: all[2].Updated}
	if diff := cmp.Diff(want[3:], ids(sessions(t, st, q))); diff != "" {
		t.Errorf("Sessions(UpdatedBefore: third's Updated) (-want +got):\n%s", diff)
	}
}

func (s *suite) testSessionsLimit(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	const n = contextstore.DefaultLimit + 1
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				_, err := st.Append(t.Context(), newID(t), contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
				errc <- err
			}
		})
	}
	for range n % 4 {
		_, err := st.Append(t.Context(), newID(t), contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
		errc <- err
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	for _, tc := range []struct {
		limit, want int
	}{
		{0, contextstore.DefaultLimit},
		{-1, contextstore.DefaultLimit},
		{10, 10},
		{n, n},
		{5 * contextstore.MaxLimit, n},
	} {
		if got := len(sessions(t, st, contextstore.SessionQuery{Tags: tag, Limit: tc.limit})); got != tc.want {
			t.Errorf("Sessions(Limit: %d) returned %d sessions, want %d", tc.limit, got, tc.want)
		}
	}
	// Without a tag filter a shared backend may hold any number of other
	// sessions; the limit still applies.
	if got := len(sessions(t, st, contextstore.SessionQuery{Limit: 10})); got != 10 {
		t.Errorf("Sessions(Limit: 10) without tags returned %d sessions, want 10", got)
	}
}

func (s *suite) testDelete(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	tag := newTag(t)
	id, keep := newID(t), newID(t)
	for _, sid := range []string{id, keep} {
		mustAppend(t, st, sid, contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
		mustAppend(t, st, sid, entry(contextstore.RoleAgent, `"x"`))
	}
	if err := st.Delete(t.Context(), id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if h := history(t, st, id, contextstore.HistoryQuery{}); len(h) != 0 {
		t.Errorf("History after Delete = %v, want empty", seqs(h))
	}
	if diff := cmp.Diff([]string{keep}, ids(sessions(t, st, contextstore.SessionQuery{Tags: tag}))); diff != "" {
		t.Errorf("Sessions after Delete (-want +got):\n%s", diff)
	}
	if got := seqs(history(t, st, keep, contextstore.HistoryQuery{})); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("other session's seqs after Delete = %v, want [1 2]", got)
	}
	// A deleted session starts again from Seq 1, without its old tags.
	e := mustAppend(t, st, id, entry(contextstore.RoleUser, `"again"`))
	if e.Seq != 1 {
		t.Errorf("first Append after Delete got Seq %d, want 1", e.Seq)
	}
	if _, ok := findSession(t, st, tag, id); ok {
		t.Errorf("session recreated after Delete still has the deleted session's tags")
	}
	if err := st.Delete(t.Context(), id); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func (s *suite) testDeleteMissing(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	if err := st.Delete(t.Context(), id); err != nil {
		t.Errorf("Delete of a session never created: %v", err)
	}
	if err := st.Delete(t.Context(), id); err != nil {
		t.Errorf("Delete again: %v", err)
	}
}

// ttl is short so that expiry tests are quick; the waits are long.
const ttl = 300 * time.Millisecond

func (s *suite) testTTLExpiry(t *testing.T) {
	st := s.open(t, contextstore.Options{TTL: ttl})
	tag := newTag(t)
	id := newID(t)
	mustAppend(t, st, id, contextstore.Entry{Role: contextstore.RoleUser, Tags: tag})
	e := mustAppend(t, st, id, entry(contextstore.RoleAgent, `"bye"`))

	// The session may already have expired on a very slow machine; check
	// its Expires only if it is still there.
	if si, ok := findSession(t, st, tag, id); ok {
		if si.Expires.IsZero() {
			t.Errorf("Expires is zero with a TTL of %v", ttl)
		} else if d := si.Expires.Sub(si.Updated); d <= 0 || d > ttl+time.Second {
			t.Errorf("Expires - Updated = %v, want about the TTL %v", d, ttl)
		}
		if si.Expires.Before(e.Time) {
			t.Errorf("Expires %v is before the last append at %v", si.Expires, e.Time)
		}
	}

	eventually(t, func() string {
		if h := history(t, st, id, contextstore.HistoryQuery{}); len(h) != 0 {
			return fmt.Sprintf("History still has %d entries, TTL %v", len(h), ttl)
		}
		if _, ok := findSession(t, st, tag, id); ok {
			return fmt.Sprintf("Sessions still lists the session, TTL %v", ttl)
		}
		return ""
	})

	// An expired session is gone: appending starts a new one.
	if e := mustAppend(t, st, id, entry(contextstore.RoleUser, `"hi again"`)); e.Seq != 1 {
		t.Errorf("Append after expiry got Seq %d, want 1", e.Seq)
	}
}

// testTTLRefresh appends at intervals shorter than the TTL for longer than
// the TTL: every append must extend the session's life, so Seq never starts
// over and the first entry outlives its original deadline.
func (s *suite) testTTLRefresh(t *testing.T) {
	const (
		ttl   = time.Second
		every = 250 * time.Millisecond
		n     = 6 // n*every > ttl
	)
	st := s.open(t, contextstore.Options{TTL: ttl})
	id := newID(t)
	var prev time.Time
	for i := 1; i <= n; i++ {
		if i > 1 {
			time.Sleep(every)
		}
		now := time.Now()
		if i > 1 && now.Sub(prev) >= ttl-100*time.Millisecond {
			// The session may legitimately have expired; the machine is
			// too busy for this test to mean anything.
			t.Skipf("%v between appends, too close to the TTL %v", now.Sub(prev), ttl)
		}
		prev = now
		if e := mustAppend(t, st, id, numbered(i)); e.Seq != int64(i) {
			t.Fatalf("append %d got Seq %d: the session expired though appended to every %v with TTL %v", i, e.Seq, every, ttl)
		}
	}
	if d := time.Since(prev); d >= ttl-100*time.Millisecond {
		t.Skipf("%v since the last append, too close to the TTL %v", d, ttl)
	}
	if got := seqs(history(t, st, id, contextstore.HistoryQuery{})); !slices.Equal(got, seqRange(1, n)) {
		t.Errorf("History seqs = %v, want %v", got, seqRange(1, n))
	}
}

func (s *suite) testWatch(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	mustAppend(t, st, id, numbered(0)) // before Watch: not delivered
	ch, err := st.Watch(t.Context(), id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	var want []contextstore.Entry
	for i := 1; i <= 5; i++ {
		want = append(want, mustAppend(t, st, id, numbered(i)))
	}
	var got []contextstore.Entry
	for range want {
		got = append(got, recv(t, ch))
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("watched entries (-appended +watched):\n%s", diff)
	}
}

func (s *suite) testWatchOnlyItsSession(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id, other := newID(t), newID(t)
	ch, err := st.Watch(t.Context(), id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	mustAppend(t, st, other, numbered(1))
	want := mustAppend(t, st, id, numbered(2))
	if diff := cmp.Diff(want, recv(t, ch), cmpOpts); diff != "" {
		t.Errorf("watched entry (-appended +watched):\n%s", diff)
	}
}

func (s *suite) testWatchMany(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	var chans []<-chan contextstore.Entry
	for range 3 {
		ch, err := st.Watch(t.Context(), id)
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		chans = append(chans, ch)
	}
	want := []contextstore.Entry{mustAppend(t, st, id, numbered(1)), mustAppend(t, st, id, numbered(2))}
	for i, ch := range chans {
		got := []contextstore.Entry{recv(t, ch), recv(t, ch)}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("watcher %d (-appended +watched):\n%s", i, diff)
		}
	}
}

func (s *suite) testWatchCancel(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := st.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	other, err := st.Watch(t.Context(), id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	drainUntilClosed(t, ch)
	// The store and other watchers carry on.
	want := mustAppend(t, st, id, numbered(1))
	if diff := cmp.Diff(want, recv(t, other), cmpOpts); diff != "" {
		t.Errorf("other watcher after cancel (-appended +watched):\n%s", diff)
	}
}

func (s *suite) testWatchCancelledContext(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ch, err := st.Watch(ctx, newID(t))
	if err != nil {
		return // refusing is fine too
	}
	drainUntilClosed(t, ch)
}

func (s *suite) testWatchClose(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	ch, err := st.Watch(t.Context(), id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	drainUntilClosed(t, ch)
}

// testWatchSlowReader checks that a watcher that never reads does not block
// Append, and that what it does get is in order.
func (s *suite) testWatchSlowReader(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := st.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	const n = 300 // more than any reasonable buffer
	appendCtx, stop := context.WithTimeout(t.Context(), 30*time.Second)
	defer stop()
	for i := 1; i <= n; i++ {
		if _, err := st.Append(appendCtx, id, numbered(i)); err != nil {
			t.Fatalf("Append %d with an unread watcher: %v", i, err)
		}
	}
	cancel()
	got := seqs(drainUntilClosed(t, ch))
	if len(got) == 0 {
		t.Errorf("watcher received nothing")
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("watcher received seqs out of order or twice: %v", got)
	}
	if len(got) > 0 && (got[0] < 1 || got[len(got)-1] > n) {
		t.Errorf("watcher received seqs %d..%d, want within 1..%d", got[0], got[len(got)-1], n)
	}
}

// testWatchConcurrentAppends checks that a watcher sees a session's entries
// in Seq order even when they are appended concurrently.
func (s *suite) testWatchConcurrentAppends(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := st.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	const writers, each = 4, 25
	var (
		got     []int64
		lastSeq atomic.Int64
		read    = make(chan struct{})
	)
	go func() {
		defer close(read)
		for e := range ch {
			got = append(got, e.Seq)
			lastSeq.Store(e.Seq)
		}
	}()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.Append(ctx, id, numbered(i)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Wait for the last entry, or for deliveries to stop (the last entry
	// may have been dropped for a slow reader), then end the watch and
	// check what was received.
	deadline := time.Now().Add(waitFor)
	for seen, quietSince := int64(-1), time.Now(); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := lastSeq.Load()
		if n == writers*each {
			break
		}
		if n != seen {
			seen, quietSince = n, time.Now()
		} else if time.Since(quietSince) > time.Second {
			break
		}
	}
	cancel()
	select {
	case <-read:
	case <-time.After(waitFor):
		t.Fatalf("watch channel still open %v after its context was cancelled", waitFor)
	}
	if len(got) == 0 {
		t.Fatal("watcher received nothing")
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("watcher received Seq %d after %d: %v", got[i], got[i-1], got)
		}
	}
}

func (s *suite) testInvalidInput(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	ctx := t.Context()
	good := newID(t)
	badIDs := []string{"", "has space", "a/b", "a?b", "a#b", "tab\there", "new\nline", "é", "\x7f", strings.Repeat("x", 257)}
	for _, id := range badIDs {
		_, err := st.Append(ctx, id, entry(contextstore.RoleUser, `1`))
		wantCode(t, fmt.Sprintf("Append(%q)", id), err, errs.Invalid)
	}
	_, err := st.History(ctx, "", contextstore.HistoryQuery{})
	wantCode(t, `History("")`, err, errs.Invalid)
	wantCode(t, `Delete("")`, st.Delete(ctx, ""), errs.Invalid)
	_, err = st.Watch(ctx, "")
	wantCode(t, `Watch("")`, err, errs.Invalid)
	_, err = st.History(ctx, "a b", contextstore.HistoryQuery{})
	wantCode(t, `History("a b")`, err, errs.Invalid)

	for _, tc := range []struct {
		name string
		e    contextstore.Entry
	}{
		{"empty role", contextstore.Entry{Content: json.RawMessage(`1`)}},
		{"unknown role", contextstore.Entry{Role: "robot", Content: json.RawMessage(`1`)}},
		{"role case", contextstore.Entry{Role: "User", Content: json.RawMessage(`1`)}},
		{"truncated JSON", entry(contextstore.RoleUser, `{"a":`)},
		{"trailing garbage", entry(contextstore.RoleUser, `{"a":1} x`)},
		{"two values", entry(contextstore.RoleUser, `1 2`)},
		{"bare word", entry(contextstore.RoleUser, `hello`)},
		{"single quotes", entry(contextstore.RoleUser, `{'a':1}`)},
	} {
		_, err := st.Append(ctx, good, tc.e)
		wantCode(t, "Append with "+tc.name, err, errs.Invalid)
	}
	if h := history(t, st, good, contextstore.HistoryQuery{}); len(h) != 0 {
		t.Errorf("rejected Appends stored entries: %v", seqs(h))
	}
	// The longest valid id works.
	if e := mustAppend(t, st, strings.Repeat("x", 240)+randHex(8), numbered(1)); e.Seq != 1 {
		t.Errorf("Append with a 256-byte id got Seq %d, want 1", e.Seq)
	}
}

func (s *suite) testClosed(t *testing.T) {
	st := s.open(t, contextstore.Options{})
	id := newID(t)
	mustAppend(t, st, id, numbered(1))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		wantCode(t, what+" after Close", err, errs.Unavailable)
		if err != nil && !contextstore.IsClosed(err) {
			t.Errorf("%s after Close: error %q is not contextstore.ErrClosed", what, err)
		}
	}
	_, err := st.Append(ctx, id, numbered(2))
	check("Append", err)
	_, err = st.History(ctx, id, contextstore.HistoryQuery{})
	check("History", err)
	_, err = st.Sessions(ctx, contextstore.SessionQuery{})
	check("Sessions", err)
	check("Delete", st.Delete(ctx, id))
	ch, err := st.Watch(ctx, id)
	check("Watch", err)
	if ch != nil {
		t.Errorf("Watch after Close returned a channel")
	}
	check("Ping", st.Ping(ctx))
}
