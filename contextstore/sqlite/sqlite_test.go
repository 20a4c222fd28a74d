package sqlite_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/sqlite"
	"mcptower/contextstore/storetest"
	"mcptower/internal/errs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(tb testing.TB, path string, opts contextstore.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path, opts)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, filepath.Join(t.TempDir(), "context.db"), opts)
	})
}

// TestStoreSharedFile runs the suite with every subtest's store on one
// database file, as several processes (or replicas) would share it.
func TestStoreSharedFile(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran on separate files")
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, path, opts)
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "context.db") // parents are created
	ctx := t.Context()
	s := open(t, path, contextstore.Options{})
	tags := map[string]string{"user": "ana"}
	var want []contextstore.Entry
	for i, c := range []string{`{"q":"hi"}`, `"hello"`, `null`} {
		e, err := s.Append(ctx, "sess-1", contextstore.Entry{Role: contextstore.RoleUser, Agent: "a@1", Content: json.RawMessage(c), Tags: tags})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		want = append(want, e)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path, contextstore.Options{})
	got, err := s.History(ctx, "sess-1", contextstore.HistoryQuery{})
	if err != nil {
		t.Fatalf("History after reopen: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("History after reopen (-before +after):\n%s", diff)
	}
	ss, err := s.Sessions(ctx, contextstore.SessionQuery{Tags: tags})
	if err != nil || len(ss) != 1 || ss[0].Entries != 3 {
		t.Errorf("Sessions after reopen = %+v, %v; want sess-1 with 3 entries", ss, err)
	}
	if e, err := s.Append(ctx, "sess-1", contextstore.Entry{Role: contextstore.RoleAgent}); err != nil || e.Seq != 4 {
		t.Errorf("Append after reopen = Seq %d, %v; want Seq 4", e.Seq, err)
	}
}

// TestTwoStoresOneFile appends through two stores on one file at once, as
// two processes would: SQLite's locking (busy_timeout, BEGIN IMMEDIATE) must
// keep Seq assignment atomic without errors.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "context.db")
	a, b := open(t, path, contextstore.Options{}), open(t, path, contextstore.Options{})
	const n = 50
	var wg sync.WaitGroup
	for _, s := range []*sqlite.Store{a, b} {
		for range n {
			wg.Go(func() {
				if _, err := s.Append(t.Context(), "shared", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
					t.Errorf("Append: %v", err)
				}
			})
		}
	}
	wg.Wait()
	h, err := a.History(t.Context(), "shared", contextstore.HistoryQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range h {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has Seq %d", i, e.Seq)
		}
	}
	if len(h) != 2*n {
		t.Fatalf("History has %d entries, want %d", len(h), 2*n)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "context.db")
	open(t, path, contextstore.Options{}).Close()
	open(t, path, contextstore.Options{}).Close() // idempotent

	// A database from a newer build is refused rather than misread.
	s := open(t, path, contextstore.Options{})
	if err := sqlite.SetUserVersion(s, 99); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := sqlite.Open(t.Context(), path, contextstore.Options{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Open of a schema-99 database: %v, want an Unavailable error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(notDB, []byte("this is not a database, it is just text long enough to be read as a header....."), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code errs.Code
	}{
		{filepath.Join(notDir, "context.db"), errs.Unavailable}, // parent is a file
		{notDB, errs.Unavailable},
		{":memory:", errs.Invalid},
	} {
		s, err := sqlite.Open(t.Context(), tc.path, contextstore.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", tc.path)
			continue
		}
		if got := errs.CodeOf(err); got != tc.code {
			t.Errorf("Open(%q): %v has code %v, want %v", tc.path, err, got, tc.code)
		}
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	t.Chdir(dir)
	for _, tc := range []struct {
		url  string
		want string // the file that must exist afterwards; "" if Open must fail
	}{
		{"sqlite://" + filepath.ToSlash(filepath.Join(dir, "abs.db")), filepath.Join(dir, "abs.db")},
		{"sqlite://" + filepath.ToSlash(filepath.Join(dir, "with space %25.db")) + "?ttl=1h", filepath.Join(dir, "with space %.db")},
		{"sqlite:rel/ctx.db", filepath.Join(dir, "rel", "ctx.db")},
		{"sqlite:", filepath.Join(dir, "xdg", "mcptower", "context.db")},
		{"sqlite://relative/path.db", ""},
		{"sqlite:///x.db?cache=shared", ""},
		{"sqlite:///x.db?ttl=-1s", ""},
	} {
		s, err := contextstore.Open(t.Context(), tc.url, contextstore.Options{})
		if tc.want == "" {
			if err == nil {
				s.Close()
				t.Errorf("Open(%q) succeeded, want an error", tc.url)
			} else if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Open(%q): %v, want an Invalid error", tc.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if _, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
			t.Errorf("Append via %q: %v", tc.url, err)
		}
		s.Close()
		if _, err := os.Stat(tc.want); err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	if p, err := sqlite.DefaultPath(); err != nil || p != "/data/mcptower/context.db" {
		t.Errorf("DefaultPath with XDG_DATA_HOME = %q, %v", p, err)
	}
	if u, err := sqlite.DefaultURL(); err != nil || u != "sqlite:///data/mcptower/context.db" {
		t.Errorf("DefaultURL with XDG_DATA_HOME = %q, %v", u, err)
	}
	t.Setenv("XDG_DATA_HOME", "relative") // ignored, as the XDG spec says
	t.Setenv("HOME", "/home/ana")
	if p, err := sqlite.DefaultPath(); err != nil || p != "/home/ana/.local/share/mcptower/context.db" {
		t.Errorf("DefaultPath without XDG_DATA_HOME = %q, %v", p, err)
	}
}

// TestSweep checks that expired sessions are deleted from the file, not
// just hidden.
func TestSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "context.db")
	s := open(t, path, contextstore.Options{TTL: 1})
	if _, err := s.Append(t.Context(), "gone", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		n, err := sqlite.Rows(s)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("expired session still in the database after 10s")
}

func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, open(b, filepath.Join(b.TempDir(), "context.db"), contextstore.Options{}))
}

func BenchmarkAppendParallel(b *testing.B) {
	storetest.BenchAppendParallel(b, open(b, filepath.Join(b.TempDir(), "context.db"), contextstore.Options{}))
}

func BenchmarkHistory50(b *testing.B) {
	storetest.BenchHistory50(b, open(b, filepath.Join(b.TempDir(), "context.db"), contextstore.Options{}))
}
