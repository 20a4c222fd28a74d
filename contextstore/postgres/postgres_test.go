package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/postgres"
	"mcptower/contextstore/storetest"
	"mcptower/internal/errs"
	"mcptower/internal/faultproxy"
	"mcptower/internal/testservice"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// exec runs sql on the test database with a connection of its own.
func exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testservice.Postgres.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// testSchema returns a schema name of its own for t and drops the schema
// when t ends.
func testSchema(t testing.TB) string {
	t.Helper()
	testservice.Postgres.URL(t)
	schema := "mcptower_test_" + randHex(6)
	t.Cleanup(func() { exec(t, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	return schema
}

// storeURL returns the URL of the test database (through addr, if set)
// with schema and the extra query parameters. Tests commit without waiting
// for the WAL flush (synchronous_commit=off): what they check does not
// depend on surviving a crash of PostgreSQL, and it makes the suite several
// times faster. Benchmarks keep the server's default.
func storeURL(t testing.TB, addr, schema string, extra url.Values) string {
	t.Helper()
	u, err := url.Parse(testservice.Postgres.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		u.Host = addr
	}
	q := u.Query()
	if _, ok := t.(*testing.B); !ok && !q.Has("synchronous_commit") {
		q.Set("synchronous_commit", "off")
	}
	q.Set("schema", schema)
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, rawURL string, opts contextstore.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	testservice.Postgres.URL(t)
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, storeURL(t, "", testSchema(t), nil), opts)
	})
}

// TestStoreSharedSchema runs the suite with every subtest's store on one
// schema, as replicas share it.
func TestStoreSharedSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran on separate schemas")
	}
	schema := testSchema(t)
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, storeURL(t, "", schema, nil), opts)
	})
}

func TestStoreOpenURL(t *testing.T) {
	base := testservice.Postgres.URL(t)
	schema, other := testSchema(t), testSchema(t)
	u, _ := url.Parse(base)
	withQuery := func(q string) string {
		v := *u
		v.RawQuery = q
		return v.String()
	}
	for _, tc := range []struct {
		url    string
		code   errs.Code // of the error; -1 for none
		schema string
	}{
		{storeURL(t, "", schema, nil), -1, schema},
		{storeURL(t, "", schema, url.Values{"ttl": {"1h"}, "pool_max_conns": {"2"}}), -1, schema},
		{withQuery("search_path=" + other + ",public"), -1, other},
		{withQuery(`search_path="` + other + `"`), -1, other},
		{strings.Replace(storeURL(t, "", schema, nil), "postgres://", "postgresql://", 1), -1, schema},
		{storeURL(t, "", schema, url.Values{"ttl": {"soon"}}), errs.Invalid, ""},
		{storeURL(t, "", "pg_nope", nil), errs.Invalid, ""},
		{storeURL(t, "", "", nil), errs.Invalid, ""},
		{storeURL(t, "", schema, url.Values{"pool_max_conns": {"x"}}), errs.Invalid, ""},
		{"postgres://postgres@127.0.0.1:1/test?connect_timeout=2", errs.Unavailable, ""},
	} {
		s, err := contextstore.Open(t.Context(), tc.url, contextstore.Options{})
		if tc.code >= 0 {
			if err == nil {
				s.Close()
				t.Errorf("Open(%q) succeeded, want a %v error", tc.url, tc.code)
			} else if got := errs.CodeOf(err); got != tc.code {
				t.Errorf("Open(%q): %v has code %v, want %v", tc.url, err, got, tc.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if got := s.(*postgres.Store).Schema(); got != tc.schema {
			t.Errorf("Open(%q): schema %q, want %q", tc.url, got, tc.schema)
		}
		if _, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
			t.Errorf("Append via %q: %v", tc.url, err)
		}
		s.Close()
	}
}

func TestStoreUnreachableMessage(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test", contextstore.Options{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Open of a closed port: %v, want Unavailable", err)
	}
	const want = "postgres at 127.0.0.1:1 is unreachable: "
	if got := err.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("error %q does not start with %q", got, want)
	}
}

// TestStoreMigrateConcurrently opens stores on a new schema at once, as
// replicas starting together would: all succeed, the schema is migrated
// once, and a schema from a newer build is refused.
func TestStoreMigrateConcurrently(t *testing.T) {
	schema := testSchema(t)
	rawURL := storeURL(t, "", schema, url.Values{"pool_max_conns": {"1"}})
	const n = 6
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, n)
	errc := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), rawURL, contextstore.Options{})
			stores[i] = s
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	for _, s := range stores {
		if s != nil {
			s.Close()
		}
	}
	if got := count(t, "SELECT count(*) FROM "+schema+".schema_migrations"); got != 1 {
		t.Errorf("schema_migrations has %d rows after %d concurrent opens, want 1", got, n)
	}
	s := open(t, rawURL, contextstore.Options{}) // and once more: nothing to do
	if _, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	exec(t, "INSERT INTO "+schema+".schema_migrations (version, name) VALUES (999, 'from the future')")
	_, err := postgres.Open(t.Context(), rawURL, contextstore.Options{})
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "newer than this build") {
		t.Errorf("Open of a schema from a newer build: %v, want Unavailable, newer than this build", err)
	}
}

// TestStoreConcurrentAppends1000: 1,000 concurrent appends to one session
// from 8 stores of one connection each: seqs exactly 1..1000.
func TestStoreConcurrentAppends1000(t *testing.T) {
	schema := testSchema(t)
	var stores []contextstore.Store
	for range 8 {
		stores = append(stores, open(t, storeURL(t, "", schema, url.Values{"pool_max_conns": {"1"}}), contextstore.Options{}))
	}
	storetest.ConcurrentAppends(t, stores, 1000)
}

// count returns how many rows a query on the test database counts.
func count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testservice.Postgres.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestStoreTTLExpiryDeletesRows checks that the sweeper deletes an expired
// session and its entries, not just hides them, and that reviving an
// expired session before the sweep leaves no old entries behind.
func TestStoreTTLExpiryDeletesRows(t *testing.T) {
	schema := testSchema(t)
	s := open(t, storeURL(t, "", schema, url.Values{"ttl": {"200ms"}}), contextstore.Options{})
	for _, id := range []string{"gone", "revived"} {
		for range 3 {
			if _, err := s.Append(t.Context(), id, contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(250 * time.Millisecond)
	e, err := s.Append(t.Context(), "revived", contextstore.Entry{Role: contextstore.RoleUser})
	if err != nil || e.Seq != 1 {
		t.Fatalf("Append after expiry: Seq %d, %v; want 1", e.Seq, err)
	}
	if n := count(t, "SELECT count(*) FROM "+schema+".entries WHERE session = 'revived'"); n != 1 {
		t.Errorf("revived session has %d entry rows, want 1 (the old ones deleted)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := count(t, "SELECT (SELECT count(*) FROM "+schema+".sessions) + (SELECT count(*) FROM "+schema+".entries)")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left 10s after a 200ms TTL", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStoreUnstorable checks that text PostgreSQL refuses (a NUL byte) is an
// Invalid error, not an outage.
func TestStoreUnstorable(t *testing.T) {
	s := open(t, storeURL(t, "", testSchema(t), nil), contextstore.Options{})
	_, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleAgent, Agent: "nul\x00agent"})
	if errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Append with a NUL in the agent: %v, want Invalid", err)
	}
	_, err = s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser, Tags: map[string]string{"k": "nul\x00"}})
	if errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Append with a NUL in a tag: %v, want Invalid", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after refused appends: %v", err)
	}
}

// TestStoreTwoReplicas: two stores on one database and schema see each
// other's appends, including through Watch (LISTEN/NOTIFY).
func TestStoreTwoReplicas(t *testing.T) {
	schema := testSchema(t)
	storetest.TwoReplicas(t, open(t, storeURL(t, "", schema, nil), contextstore.Options{}),
		open(t, storeURL(t, "", schema, nil), contextstore.Options{}))
}

// TestStoreFault puts a TCP proxy between a store and PostgreSQL and cuts it
// (see storetest.Fault).
func TestStoreFault(t *testing.T) {
	proxy, err := faultproxy.Start(testservice.Postgres.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	schema := testSchema(t)
	st := open(t, storeURL(t, proxy.Addr(), schema, nil), contextstore.Options{})
	other := open(t, storeURL(t, "", schema, nil), contextstore.Options{}) // not through the proxy
	storetest.Fault(t, st, other, proxy.Cut, proxy.Restore)
}

func benchStore(b *testing.B) *postgres.Store {
	return open(b, storeURL(b, "", testSchema(b), nil), contextstore.Options{})
}

func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, benchStore(b))
}

func BenchmarkAppendParallel(b *testing.B) {
	storetest.BenchAppendParallel(b, benchStore(b))
}

func BenchmarkHistory50(b *testing.B) {
	storetest.BenchHistory50(b, benchStore(b))
}
