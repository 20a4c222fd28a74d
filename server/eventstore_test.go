package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func collect(t *testing.T, s *eventStore, session, stream string, index int) ([]string, error) {
	t.Helper()
	var out []string
	for d, err := range s.After(t.Context(), session, stream, index) {
		if err != nil {
			return out, err
		}
		out = append(out, string(d))
	}
	return out, nil
}

func TestEventStore(t *testing.T) {
	ctx := t.Context()
	s := newEventStore(40, 3)
	s.Open(ctx, "s1", "a")
	for i := range 3 {
		s.Append(ctx, "s1", "a", []byte(fmt.Sprintf("a%d", i)))
	}
	got, err := collect(t, s, "s1", "a", 0)
	if err != nil || !cmp.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("After(a, 0) = %v, %v; want [a1 a2]", got, err)
	}
	if got, err := collect(t, s, "s1", "a", 2); err != nil || len(got) != 0 {
		t.Fatalf("After(a, 2) = %v, %v; want nothing", got, err)
	}

	// A session keeps at most 3 streams: opening b, c, d drops a.
	for _, id := range []string{"b", "c", "d"} {
		s.Open(ctx, "s1", id)
		s.Append(ctx, "s1", id, []byte(id+"0"))
	}
	if _, err := collect(t, s, "s1", "a", 0); !errors.Is(err, mcp.ErrEventsPurged) {
		t.Fatalf("dropped stream: err = %v, want ErrEventsPurged", err)
	}
	// An append to a dropped stream never makes it resumable with wrong indexes.
	s.Append(ctx, "s1", "a", []byte("a3"))
	if _, err := collect(t, s, "s1", "a", 2); !errors.Is(err, mcp.ErrEventsPurged) {
		t.Fatalf("lost stream: err = %v, want ErrEventsPurged", err)
	}

	// The byte budget drops the oldest streams of any session.
	s.Open(ctx, "s2", "x")
	s.Append(ctx, "s2", "x", []byte("0123456789012345678901234567890123456789"))
	if streams, n := s.len(); n > 40+2 || streams > 2 {
		t.Fatalf("after budget: %d streams, %d bytes; want the budget kept", streams, n)
	}
	if got, err := collect(t, s, "s2", "x", -1); err != nil || len(got) != 1 {
		t.Fatalf("the newest stream must survive: %v, %v", got, err)
	}

	s.SessionClosed(ctx, "s2")
	s.SessionClosed(ctx, "s1")
	if streams, n := s.len(); streams != 0 || n != 0 {
		t.Fatalf("after close: %d streams, %d bytes; want 0, 0", streams, n)
	}
}

// BenchmarkEventStoreLongSession: the cost of an append does not grow with
// the number of calls a session has made.
func BenchmarkEventStoreLongSession(b *testing.B) {
	s := newEventStore(8<<20, 64)
	ctx := b.Context()
	data := make([]byte, 200)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint(i)
		s.Open(ctx, "s", id)
		s.Append(ctx, "s", id, data)
	}
}
