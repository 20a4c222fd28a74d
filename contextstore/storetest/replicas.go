package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/contextstore"
	"mcptower/internal/errs"
)

// The functions below are the part of the suite for backends that several
// processes share (Redis, PostgreSQL): they take stores opened on the same
// backend and namespace, as separate replicas would.

// ConcurrentAppends appends n entries to one session through the given
// stores (each with its own connection), concurrently, and checks that the
// sequence numbers are exactly 1..n: none lost, none duplicated.
func ConcurrentAppends(t *testing.T, stores []contextstore.Store, n int) {
	t.Helper()
	id := "many-" + randHex(8)
	seqs := make([]int64, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e, err := stores[i%len(stores)].Append(t.Context(), id, contextstore.Entry{
				Role: contextstore.RoleUser, Content: json.RawMessage(fmt.Sprint(i))})
			if err != nil {
				t.Errorf("Append %d: %v", i, err)
			}
			seqs[i] = e.Seq
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("sorted Seqs[%d] = %d, want %d (lost or duplicated)", i, s, i+1)
		}
	}
	h, err := stores[0].History(t.Context(), id, contextstore.HistoryQuery{Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != n || h[0].Seq != 1 || h[n-1].Seq != int64(n) {
		t.Fatalf("History: %d entries, want %d with Seqs 1..%d", len(h), n, n)
	}
	contents := map[string]bool{}
	for _, e := range h {
		contents[string(e.Content)] = true
	}
	if len(contents) != n {
		t.Errorf("History holds %d distinct contents, want %d", len(contents), n)
	}
}

// TwoReplicas checks that two stores on one backend see each other: a
// Watch on a delivers what b appends, sequence numbers are shared, and
// History and Sessions agree.
func TwoReplicas(t *testing.T, a, b contextstore.Store) {
	t.Helper()
	id := "shared-" + randHex(8)
	tag := map[string]string{"replicas": randHex(8)}
	ch, err := a.Watch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	e1, err := b.Append(t.Context(), id, contextstore.Entry{Role: contextstore.RoleUser, Content: json.RawMessage(`"from b"`), Tags: tag})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a.Append(t.Context(), id, contextstore.Entry{Role: contextstore.RoleAgent, Content: json.RawMessage(`"from a"`)})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e2.Seq != 2 {
		t.Errorf("Seqs %d, %d across stores; want 1, 2", e1.Seq, e2.Seq)
	}
	for _, want := range []contextstore.Entry{e1, e2} {
		if diff := cmp.Diff(want, Recv(t, ch)); diff != "" {
			t.Errorf("watch on a (-appended +watched):\n%s", diff)
		}
	}
	for _, s := range []contextstore.Store{a, b} {
		h, err := s.History(t.Context(), id, contextstore.HistoryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]contextstore.Entry{e1, e2}, h); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		ss, err := s.Sessions(t.Context(), contextstore.SessionQuery{Tags: tag})
		if err != nil || len(ss) != 1 || ss[0].ID != id || ss[0].Entries != 2 {
			t.Errorf("Sessions = %+v, %v; want %s with 2 entries", ss, err, id)
		}
	}
}

// Fault checks a store whose connection to the backend is cut (cut) and
// restored (restore), for example by a TCP proxy between them: during the
// cut every call fails with Unavailable; nothing acknowledged is lost; once
// restored the same store serves again by itself, and a Watch opened before
// the cut catches up with what other, a replica not cut off, appended
// meanwhile.
func Fault(t *testing.T, st, other contextstore.Store, cut, restore func()) {
	t.Helper()
	id := "fault-" + randHex(8)
	ctx := t.Context()
	watch, err := st.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var acked []contextstore.Entry
	for i := range 5 {
		e, err := st.Append(ctx, id, contextstore.Entry{Role: contextstore.RoleUser, Content: json.RawMessage(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, e)
	}
	for _, want := range acked {
		if got := Recv(t, watch); got.Seq != want.Seq {
			t.Fatalf("watched Seq %d, want %d", got.Seq, want.Seq)
		}
	}

	cut()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unavailable := func(what string, err error) {
		t.Helper()
		if errs.CodeOf(err) != errs.Unavailable {
			t.Errorf("%s during the cut: %v (code %v), want Unavailable", what, err, errs.CodeOf(err))
		}
	}
	start := time.Now()
	_, err = st.Append(callCtx, id, contextstore.Entry{Role: contextstore.RoleUser})
	unavailable("Append", err)
	t.Logf("Append during the cut failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	_, err = st.History(callCtx, id, contextstore.HistoryQuery{})
	unavailable("History", err)
	_, err = st.Sessions(callCtx, contextstore.SessionQuery{})
	unavailable("Sessions", err)
	unavailable("Ping", st.Ping(callCtx))
	_, err = st.Watch(callCtx, id+"-new")
	unavailable("Watch", err)

	for i := range 3 {
		e, err := other.Append(ctx, id, contextstore.Entry{Role: contextstore.RoleAgent, Content: json.RawMessage(fmt.Sprint(10 + i))})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, e)
	}

	restore()
	deadline := time.Now().Add(20 * time.Second)
	for st.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover 20s after the connection was restored: %v", st.Ping(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e, err := st.Append(ctx, id, contextstore.Entry{Role: contextstore.RoleUser, Content: json.RawMessage(`"after"`)})
	if err != nil {
		t.Fatalf("Append after restore: %v", err)
	}
	acked = append(acked, e)
	h, err := st.History(ctx, id, contextstore.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(acked, h); diff != "" {
		t.Errorf("History after the fault (-acknowledged +stored):\n%s", diff)
	}
	for _, want := range acked[5:] {
		if got := Recv(t, watch); got.Seq != want.Seq {
			t.Fatalf("watched Seq %d after restore, want %d", got.Seq, want.Seq)
		}
	}
}

// Recv returns the next entry from a watch, failing if none comes in time.
func Recv(t *testing.T, ch <-chan contextstore.Entry) contextstore.Entry {
	t.Helper()
	return recv(t, ch)
}
