package storetest

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"mcptower/contextstore"
)

// benchEntry is a typical small entry: a tool result of a few hundred bytes.
var benchEntry = contextstore.Entry{
	Role:    contextstore.RoleTool,
	Agent:   "echo@1.0.0",
	Content: json.RawMessage(`{"content":[{"type":"text","text":"The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog."}],"structuredContent":{"echo":"The quick brown fox jumps over the lazy dog.","n":42},"isError":false}`),
	Tags:    map[string]string{"tool": "echo"},
}

// BenchAppend measures Append of a small entry to one growing session.
// The caller opens st and closes it.
func BenchAppend(b *testing.B, st contextstore.Store) {
	b.Helper()
	id := "bench-append-" + randHex(8)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Append(ctx, id, benchEntry); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
}

// BenchAppendParallel measures Appends from b.RunParallel goroutines, each
// to its own session. The caller opens st and closes it.
func BenchAppendParallel(b *testing.B, st contextstore.Store) {
	b.Helper()
	prefix := "bench-append-parallel-" + randHex(8) + "-"
	var n atomic.Int64
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := prefix + string(rune('a'+n.Add(1)%26)) + randHex(4)
		for pb.Next() {
			if _, err := st.Append(ctx, id, benchEntry); err != nil {
				b.Errorf("Append: %v", err)
				return
			}
		}
	})
}

// BenchHistory50 measures reading the newest 50 entries of a 200-entry
// session, the usual "recent context" query. The caller opens st and
// closes it.
func BenchHistory50(b *testing.B, st contextstore.Store) {
	b.Helper()
	id := "bench-history-" + randHex(8)
	ctx := b.Context()
	for range 200 {
		if _, err := st.Append(ctx, id, benchEntry); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	q := contextstore.HistoryQuery{Last: true, Limit: 50}
	b.ReportAllocs()
	for b.Loop() {
		h, err := st.History(ctx, id, q)
		if err != nil {
			b.Fatalf("History: %v", err)
		}
		if len(h) != 50 {
			b.Fatalf("History returned %d entries, want 50", len(h))
		}
	}
}
