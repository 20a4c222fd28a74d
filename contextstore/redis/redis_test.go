package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/redis"
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

// testPrefix returns a key prefix of its own for t and deletes every key
// under it when t ends.
func testPrefix(t testing.TB) string {
	t.Helper()
	base := testservice.Redis.URL(t)
	prefix := "mcptower-test:" + randHex(6) + ":"
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(base)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan %s*: %v", prefix, err)
			return
		}
		for chunk := range slices.Chunk(keys, 500) {
			if err := c.Unlink(ctx, chunk...).Err(); err != nil {
				t.Errorf("cleanup: unlink: %v", err)
				return
			}
		}
	})
	return prefix
}

// storeURL returns the URL of the test Redis (or of addr, if set) with
// prefix and the extra query parameters.
func storeURL(t testing.TB, addr, prefix string, extra url.Values) string {
	t.Helper()
	u, err := url.Parse(testservice.Redis.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		u.Host = addr
	}
	q := u.Query()
	q.Set("prefix", prefix)
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, rawURL string, opts contextstore.Options) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	testservice.Redis.URL(t)
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, storeURL(t, "", testPrefix(t), nil), opts)
	})
}

// TestStoreSharedPrefix runs the suite with every subtest's store on one
// prefix, as replicas share it.
func TestStoreSharedPrefix(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran on separate prefixes")
	}
	prefix := testPrefix(t)
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return open(t, storeURL(t, "", prefix, nil), opts)
	})
}

func TestStoreOpenURL(t *testing.T) {
	base := testservice.Redis.URL(t)
	prefix := testPrefix(t)
	u, _ := url.Parse(base)
	for _, tc := range []struct {
		url    string
		code   errs.Code // of the error; -1 for none
		prefix string
	}{
		{storeURL(t, "", prefix, nil), -1, prefix},
		{storeURL(t, "", prefix, url.Values{"ttl": {"1h"}, "pool_size": {"3"}}), -1, prefix},
		{"redis://" + u.Host, -1, redis.DefaultPrefix},
		{storeURL(t, "", prefix, url.Values{"ttl": {"soon"}}), errs.Invalid, ""},
		{storeURL(t, "", prefix, url.Values{"bogus": {"1"}}), errs.Invalid, ""},
		{"redis://" + u.Host + "/0?prefix=", errs.Invalid, ""},
		{"redis://" + u.Host + "/notanumber", errs.Invalid, ""},
		{"redis://127.0.0.1:1/0", errs.Unavailable, ""},
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
		if got := s.(*redis.Store).Prefix(); got != tc.prefix {
			t.Errorf("Open(%q): prefix %q, want %q", tc.url, got, tc.prefix)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping via %q: %v", tc.url, err)
		}
		s.Close()
	}
}

// TestStoreUnreachableMessage checks the error a store gives when Redis cannot
// be reached: code Unavailable, and a message naming the address.
func TestStoreUnreachableMessage(t *testing.T) {
	_, err := redis.Open(t.Context(), "redis://127.0.0.1:1/0", contextstore.Options{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Open of a closed port: %v, want Unavailable", err)
	}
	const want = "redis at 127.0.0.1:1 is unreachable: "
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("error %q does not start with %q", got, want)
	}
}

// TestStoreConcurrentAppends1000: 1,000 concurrent appends to one session
// from 8 stores of one connection each: seqs exactly 1..1000.
func TestStoreConcurrentAppends1000(t *testing.T) {
	prefix := testPrefix(t)
	var stores []contextstore.Store
	for range 8 {
		stores = append(stores, open(t, storeURL(t, "", prefix, url.Values{"pool_size": {"1"}}), contextstore.Options{}))
	}
	storetest.ConcurrentAppends(t, stores, 1000)
}

// TestStoreAppendRetryIsIdempotent runs the append script twice with one op id,
// as go-redis does when a reply is lost: the second run must return the
// first's result and append nothing.
func TestStoreAppendRetryIsIdempotent(t *testing.T) {
	s := open(t, storeURL(t, "", testPrefix(t), nil), contextstore.Options{})
	id := "retry-" + randHex(4)
	e := contextstore.Entry{Role: contextstore.RoleUser, Content: json.RawMessage(`"once"`)}
	first, err := redis.AppendOp(s, t.Context(), id, e, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := redis.AppendOp(s, t.Context(), id, e, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("retried append (-first +retry):\n%s", diff)
	}
	next, err := redis.AppendOp(s, t.Context(), id, e, "op-2")
	if err != nil || next.Seq != 2 {
		t.Errorf("next append: Seq %d, %v; want Seq 2", next.Seq, err)
	}
	h, err := s.History(t.Context(), id, contextstore.HistoryQuery{})
	if err != nil || len(h) != 2 {
		t.Errorf("History: %d entries, %v; want 2", len(h), err)
	}
}

// TestStoreTTLExpiryFreesKeys checks that an expired session's keys are gone
// from Redis and that the sweeper removes it from the indexes.
func TestStoreTTLExpiryFreesKeys(t *testing.T) {
	prefix := testPrefix(t)
	s := open(t, storeURL(t, "", prefix, url.Values{"ttl": {"200ms"}}), contextstore.Options{})
	id := "ttl-" + randHex(4)
	if _, err := s.Append(t.Context(), id, contextstore.Entry{Role: contextstore.RoleUser, Tags: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	opts, _ := goredis.ParseURL(testservice.Redis.URL(t))
	c := goredis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := c.Keys(t.Context(), prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		// What may remain is the clock and nothing else.
		if len(keys) == 1 && keys[0] == prefix+"clock" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys left 10s after a 200ms TTL: %v", keys)
		}
		if err := redis.Sweep(s, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStoreTwoReplicas: two stores on one Redis and prefix see each other's
// appends, including through Watch.
func TestStoreTwoReplicas(t *testing.T) {
	prefix := testPrefix(t)
	storetest.TwoReplicas(t, open(t, storeURL(t, "", prefix, nil), contextstore.Options{}),
		open(t, storeURL(t, "", prefix, nil), contextstore.Options{}))
}

// TestStoreFault puts a TCP proxy between a store and Redis and cuts it (see
// storetest.Fault).
func TestStoreFault(t *testing.T) {
	proxy, err := faultproxy.Start(testservice.Redis.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	prefix := testPrefix(t)
	st := open(t, storeURL(t, proxy.Addr(), prefix, nil), contextstore.Options{})
	other := open(t, storeURL(t, "", prefix, nil), contextstore.Options{}) // not through the proxy
	storetest.Fault(t, st, other, proxy.Cut, proxy.Restore)
}

func benchStore(b *testing.B) *redis.Store {
	return open(b, storeURL(b, "", testPrefix(b), nil), contextstore.Options{})
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

// TestStoreDrop checks that Drop deletes every key under the prefix and nothing
// else, even with glob characters in the prefix.
func TestStoreDrop(t *testing.T) {
	base := testPrefix(t)
	globby := base + "[a]*?:"
	// Both would match globby+"*" if the glob characters were not escaped.
	plain, tricky := base+"a-plain:", base+"a:"
	var stores []*redis.Store
	for _, p := range []string{globby, plain, tricky} {
		s := open(t, storeURL(t, "", p, nil), contextstore.Options{})
		if _, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser, Tags: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	if err := stores[0].Drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	opts, _ := goredis.ParseURL(testservice.Redis.URL(t))
	c := goredis.NewClient(opts)
	defer c.Close()
	keys, err := c.Keys(t.Context(), base+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k) >= len(globby) && k[:len(globby)] == globby {
			t.Errorf("key %q left after Drop", k)
		}
	}
	for _, s := range stores[1:] {
		if h, err := s.History(t.Context(), "s", contextstore.HistoryQuery{}); err != nil || len(h) != 1 {
			t.Errorf("prefix %q after dropping %q: History = %d entries, %v; want 1", s.Prefix(), globby, len(h), err)
		}
	}
}
