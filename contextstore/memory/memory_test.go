package memory_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/memory"
	"mcptower/contextstore/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts contextstore.Options) contextstore.Store {
		return memory.New(opts)
	})
}

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"memory:", true},
		{"memory://", true},
		{"memory:?ttl=1h", true},
		{"memory:///", true},
		{"memory:foo", false},
		{"memory://host", false},
		{"memory:?tll=1h", false},
		{"memory:?ttl=soon", false},
	} {
		s, err := contextstore.Open(context.Background(), tc.url, contextstore.Options{})
		if (err == nil) != tc.ok {
			t.Errorf("Open(%q) error = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if s != nil {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
}

// TestJanitorFrees checks that expired sessions are removed from memory even
// if nobody reads them.
func TestJanitorFrees(t *testing.T) {
	s := memory.New(contextstore.Options{TTL: 10 * time.Millisecond})
	defer s.Close()
	if _, err := s.Append(t.Context(), "s", contextstore.Entry{Role: contextstore.RoleUser}); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if memory.Len(s) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("expired session still held after 10s")
}

func BenchmarkAppend(b *testing.B) {
	s := memory.New(contextstore.Options{})
	defer s.Close()
	storetest.BenchAppend(b, s)
}

func BenchmarkAppendParallel(b *testing.B) {
	s := memory.New(contextstore.Options{})
	defer s.Close()
	storetest.BenchAppendParallel(b, s)
}

func BenchmarkHistory50(b *testing.B) {
	s := memory.New(contextstore.Options{})
	defer s.Close()
	storetest.BenchHistory50(b, s)
}
