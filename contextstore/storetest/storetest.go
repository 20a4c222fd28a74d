// Package storetest is the conformance suite for contextstore.Store, in the
// style of testing/slogtest: every backend calls Run from its tests and must
// pass all of it.
//
// The suite is written so that it can run against a shared, long-lived
// backend (a Redis or PostgreSQL server): each subtest uses session ids made
// unique with a random suffix and tags its sessions with a unique tag, and
// never assumes that Sessions returns only its own sessions.
//
// It checks: Seq, Time and Session assigned by Append; content that
// round-trips as the same JSON; no aliasing of caller memory; History paging
// forward (After), backward (Before, Last) and the clamping of Limit; 100
// concurrent appends to one session getting Seqs 1..100; session tags merged
// from entries (later wins), Sessions filtered by tags, ordered by recency
// and paged with UpdatedBefore; Delete; TTL expiry and its refresh on append;
// Watch delivery, order, cancellation and end on Close, and a slow watcher
// not blocking Append; errs.Invalid for bad input; ErrClosed (code
// Unavailable) after Close.
//
// Timing-dependent checks (TTL expiry, Watch) poll with generous deadlines,
// so that a loaded machine makes the suite slower, not flaky. Backends must
// accept a TTL of a few hundred milliseconds.
//
// Entries returned by Append must equal those History returns later (times
// compared with time.Time.Equal, content as JSON values): a backend that
// stores times at a coarser resolution must return the stored time from
// Append too.
package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mcptower/contextstore"
	"mcptower/internal/errs"
)

// Run runs the conformance suite against the stores newStore returns, one
// per subtest, as subtests of t.
//
// newStore may return a store on a shared backend; the store need not be
// empty. Run closes every store it opens when its subtest ends, so newStore
// need not (and if it does, the second Close must be harmless, as the
// contract requires).
func Run(t *testing.T, newStore func(t *testing.T, opts contextstore.Options) contextstore.Store) {
	t.Helper()
	s := &suite{newStore: newStore}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Ping", s.testPing},
		{"AppendAssigns", s.testAppendAssigns},
		{"ContentRoundTrip", s.testContentRoundTrip},
		{"NoAliasing", s.testNoAliasing},
		{"HistoryPaging", s.testHistoryPaging},
		{"HistoryWalk", s.testHistoryWalk},
		{"HistoryLimits", s.testHistoryLimits},
		{"HistoryUnknownSession", s.testHistoryUnknownSession},
		{"ConcurrentAppend", s.testConcurrentAppend},
		{"ConcurrentReadWrite", s.testConcurrentReadWrite},
		{"SessionTags", s.testSessionTags},
		{"SessionInfo", s.testSessionInfo},
		{"SessionsRecency", s.testSessionsRecency},
		{"SessionsCursor", s.testSessionsCursor},
		{"SessionsLimit", s.testSessionsLimit},
		{"Delete", s.testDelete},
		{"DeleteMissing", s.testDeleteMissing},
		{"TTLExpiry", s.testTTLExpiry},
		{"TTLRefresh", s.testTTLRefresh},
		{"Watch", s.testWatch},
		{"WatchOnlyItsSession", s.testWatchOnlyItsSession},
		{"WatchMany", s.testWatchMany},
		{"WatchCancel", s.testWatchCancel},
		{"WatchCancelledContext", s.testWatchCancelledContext},
		{"WatchClose", s.testWatchClose},
		{"WatchSlowReader", s.testWatchSlowReader},
		{"WatchConcurrentAppends", s.testWatchConcurrentAppends},
		{"InvalidInput", s.testInvalidInput},
		{"Closed", s.testClosed},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newStore func(t *testing.T, opts contextstore.Options) contextstore.Store
}

// waitFor bounds every wait for something asynchronous (a watched entry, a
// channel closing, a session expiring). It is long on purpose: waits end as
// soon as the condition holds, and only a broken store pays the full wait.
const waitFor = 10 * time.Second

// open returns a fresh store that is closed when t ends.
func (s *suite) open(t *testing.T, opts contextstore.Options) contextstore.Store {
	t.Helper()
	st := s.newStore(t, opts)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
	})
	return st
}

// cmpOpts compare entries and session infos: nil and empty maps are equal,
// times compare with Equal (cmp uses the Equal method), and JSON content
// compares by meaning, since a backend may store it re-encoded.
var cmpOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b json.RawMessage) bool { return jsonEqual(a, b) }),
}

func jsonEqual(a, b []byte) bool {
	var va, vb any
	if err := decodeJSON(a, &va); err != nil {
		return false
	}
	if err := decodeJSON(b, &vb); err != nil {
		return false
	}
	return cmp.Equal(va, vb)
}

func decodeJSON(data []byte, v *any) error {
	if len(data) == 0 {
		data = []byte("null")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// newID returns a session id unique to this run of t: the test's name made
// safe for ValidateSession plus a random suffix.
func newID(t *testing.T) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	return name + "-" + randHex(8)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newTag returns a tag key/value unique to this run of t, to find this
// test's sessions among others on a shared backend.
func newTag(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"storetest": newID(t)}
}

// tick makes the next append observably later than the previous one, for
// backends whose clocks are coarse (milliseconds on some servers).
func tick() { time.Sleep(2 * time.Millisecond) }

func entry(role string, content string) contextstore.Entry {
	return contextstore.Entry{Role: role, Content: json.RawMessage(content)}
}

func numbered(n int) contextstore.Entry {
	return entry(contextstore.RoleUser, fmt.Sprintf(`{"n":%d}`, n))
}

func mustAppend(t *testing.T, st contextstore.Store, id string, e contextstore.Entry) contextstore.Entry {
	t.Helper()
	got, err := st.Append(t.Context(), id, e)
	if err != nil {
		t.Fatalf("Append(%q): %v", id, err)
	}
	return got
}

// appendN appends entries numbered 1..n to id, from a few goroutines when n
// is large (the order of contents is then not the order of Seq).
func appendN(t *testing.T, st contextstore.Store, id string, n int) []contextstore.Entry {
	t.Helper()
	out := make([]contextstore.Entry, n)
	if n <= 50 {
		for i := range n {
			out[i] = mustAppend(t, st, id, numbered(i+1))
		}
		return out
	}
	const workers = 8
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				e, err := st.Append(t.Context(), id, numbered(i+1))
				if err != nil {
					errc <- err
					return
				}
				out[i] = e
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("Append(%q): %v", id, err)
	}
	slices.SortFunc(out, func(a, b contextstore.Entry) int { return int(a.Seq - b.Seq) })
	return out
}

func history(t *testing.T, st contextstore.Store, id string, q contextstore.HistoryQuery) []contextstore.Entry {
	t.Helper()
	h, err := st.History(t.Context(), id, q)
	if err != nil {
		t.Fatalf("History(%q, %+v): %v", id, q, err)
	}
	return h
}

func sessions(t *testing.T, st contextstore.Store, q contextstore.SessionQuery) []contextstore.SessionInfo {
	t.Helper()
	ss, err := st.Sessions(t.Context(), q)
	if err != nil {
		t.Fatalf("Sessions(%+v): %v", q, err)
	}
	for i := 1; i < len(ss); i++ {
		if ss[i].Updated.After(ss[i-1].Updated) {
			t.Fatalf("Sessions(%+v) not most recently updated first: %s (updated %v) after %s (updated %v)",
				q, ss[i].ID, ss[i].Updated, ss[i-1].ID, ss[i-1].Updated)
		}
	}
	return ss
}

// findSession returns the info of id among the sessions tagged tag, if any.
func findSession(t *testing.T, st contextstore.Store, tag map[string]string, id string) (contextstore.SessionInfo, bool) {
	t.Helper()
	for _, si := range sessions(t, st, contextstore.SessionQuery{Tags: tag, Limit: contextstore.MaxLimit}) {
		if si.ID == id {
			return si, true
		}
	}
	return contextstore.SessionInfo{}, false
}

func ids(ss []contextstore.SessionInfo) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func seqs(es []contextstore.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// seqRange returns lo, lo+1, ..., hi (empty if hi < lo).
func seqRange(lo, hi int64) []int64 {
	out := []int64{}
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

// eventually polls cond until it returns "" or waitFor passes, then fails
// with the last reason cond gave.
func eventually(t *testing.T, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", waitFor, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recv returns the next entry from ch, failing if none arrives in time or
// ch is closed.
func recv(t *testing.T, ch <-chan contextstore.Entry) contextstore.Entry {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an entry")
		}
		return e
	case <-time.After(waitFor):
		t.Fatalf("no entry from watch after %v", waitFor)
	}
	panic("unreachable")
}

// drainUntilClosed reads ch until it is closed and returns what it read,
// failing if it stays open too long.
func drainUntilClosed(t *testing.T, ch <-chan contextstore.Entry) []contextstore.Entry {
	t.Helper()
	var got []contextstore.Entry
	timeout := time.After(waitFor)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("watch channel still open after %v", waitFor)
		}
	}
}

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want code %v", what, code)
		return
	}
	if got := errs.CodeOf(err); got != code {
		t.Errorf("%s: error %q has code %v, want %v", what, err, got, code)
	}
}
