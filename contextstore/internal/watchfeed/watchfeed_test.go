package watchfeed_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchfeed"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// source is a fake backend: one log per session, with a generation.
type source struct {
	mu        sync.Mutex
	gen       map[string]int64
	log       map[string][]contextstore.Entry
	listening map[string]bool
	sinceErr  error
	sinces    int
}

func newSource() *source {
	return &source{gen: map[string]int64{}, log: map[string][]contextstore.Entry{}, listening: map[string]bool{}}
}

// add appends an entry to session and returns it with its position.
func (s *source) add(session string) (contextstore.Entry, watchfeed.Pos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen[session] == 0 {
		s.gen[session] = 1
	}
	e := contextstore.Entry{Session: session, Seq: int64(len(s.log[session]) + 1), Role: contextstore.RoleUser}
	s.log[session] = append(s.log[session], e)
	return e, watchfeed.Pos{Gen: s.gen[session], Seq: e.Seq}
}

// reset starts session over under a new generation, as Delete would.
func (s *source) reset(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen[session]++
	s.log[session] = nil
}

func (s *source) Listen(_ context.Context, session string) (watchfeed.Pos, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listening[session] = true
	return watchfeed.Pos{Gen: s.gen[session], Seq: int64(len(s.log[session]))}, nil
}

func (s *source) Unlisten(_ context.Context, session string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listening, session)
	return nil
}

func (s *source) isListening(session string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listening[session]
}

func (s *source) Since(_ context.Context, session string, pos watchfeed.Pos, limit int) (int64, []contextstore.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sinces++
	if s.sinceErr != nil {
		return 0, nil, s.sinceErr
	}
	gen := s.gen[session]
	after := pos.Seq
	if gen != pos.Gen {
		after = 0
	}
	log := s.log[session]
	if after >= int64(len(log)) {
		return gen, nil, nil
	}
	page := log[after:]
	return gen, slices.Clone(page[:min(limit, len(page))]), nil
}

func seqsOf(t *testing.T, ch <-chan contextstore.Entry, n int) []int64 {
	t.Helper()
	var got []int64
	for range n {
		select {
		case e := <-ch:
			got = append(got, e.Seq)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v, then nothing", got)
		}
	}
	return got
}

func quiet(t *testing.T, ch <-chan contextstore.Entry) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("unexpected entry %d", e.Seq)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestAnnounce(t *testing.T) {
	src := newSource()
	f := watchfeed.New(src, nil, "test")
	defer f.Close()
	ctx := t.Context()
	src.add("s") // before the watch: never delivered
	ch, err := f.Watch(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}

	// In order, with the entry: delivered without reading the source.
	e2, p2 := src.add("s")
	f.Announce(ctx, "s", p2, &e2)
	e3, p3 := src.add("s")
	f.Announce(ctx, "s", p3, &e3)
	if diff := cmp.Diff([]int64{2, 3}, seqsOf(t, ch, 2)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if src.sinces != 0 {
		t.Errorf("read the source %d times for entries announced in order", src.sinces)
	}

	// Twice: dropped.
	f.Announce(ctx, "s", p3, &e3)
	quiet(t, ch)

	// A gap (4 was lost): 4 and 5 read from the source, 5 once.
	src.add("s")
	e5, p5 := src.add("s")
	f.Announce(ctx, "s", p5, &e5)
	f.Announce(ctx, "s", p5, &e5)
	if diff := cmp.Diff([]int64{4, 5}, seqsOf(t, ch, 2)); diff != "" {
		t.Errorf("after a gap (-want +got):\n%s", diff)
	}
	quiet(t, ch)

	// Without the entry (a PostgreSQL notification): read.
	_, p6 := src.add("s")
	f.Announce(ctx, "s", p6, nil)
	if diff := cmp.Diff([]int64{6}, seqsOf(t, ch, 1)); diff != "" {
		t.Errorf("announced without entry (-want +got):\n%s", diff)
	}

	// The session starts over: its new first entry is delivered.
	src.reset("s")
	e1, p1 := src.add("s")
	f.Announce(ctx, "s", p1, &e1)
	if diff := cmp.Diff([]int64{1}, seqsOf(t, ch, 1)); diff != "" {
		t.Errorf("after a reset (-want +got):\n%s", diff)
	}

	// Another session: not watched, ignored.
	eo, po := src.add("other")
	f.Announce(ctx, "other", po, &eo)
	quiet(t, ch)
}

func TestResync(t *testing.T) {
	src := newSource()
	f := watchfeed.New(src, nil, "test")
	defer f.Close()
	ctx := t.Context()
	a, _ := f.Watch(ctx, "a")
	b, _ := f.Watch(ctx, "b")
	// The connection was down: nothing announced.
	for range 3 {
		src.add("a")
	}
	src.add("b")
	f.Resync(ctx)
	if diff := cmp.Diff([]int64{1, 2, 3}, seqsOf(t, a, 3)); diff != "" {
		t.Errorf("a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1}, seqsOf(t, b, 1)); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
	// Announcements buffered before the resync arrive late: dropped.
	f.Announce(ctx, "a", watchfeed.Pos{Gen: 1, Seq: 3}, nil)
	quiet(t, a)

	// A source error leaves the position, so the next try delivers.
	src.add("a")
	src.sinceErr = errors.New("down")
	f.Resync(ctx)
	quiet(t, a)
	src.sinceErr = nil
	f.Resync(ctx)
	if diff := cmp.Diff([]int64{4}, seqsOf(t, a, 1)); diff != "" {
		t.Errorf("after a failed resync (-want +got):\n%s", diff)
	}
}

func TestUnlistenWhenIdle(t *testing.T) {
	src := newSource()
	f := watchfeed.New(src, nil, "test")
	defer f.Close()
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	if _, err := f.Watch(ctx1, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Watch(ctx2, "s"); err != nil {
		t.Fatal(err)
	}
	cancel1()
	time.Sleep(20 * time.Millisecond)
	if !src.isListening("s") || !f.Watching("s") {
		t.Fatal("stopped listening with a watcher left")
	}
	cancel2()
	deadline := time.Now().Add(5 * time.Second)
	for src.isListening("s") || f.Watching("s") {
		if time.Now().After(deadline) {
			t.Fatal("still listening after the last watcher left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClose(t *testing.T) {
	src := newSource()
	f := watchfeed.New(src, nil, "test")
	ch, err := f.Watch(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("entry after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch not closed by Close")
	}
	if _, err := f.Watch(t.Context(), "s"); !contextstore.IsClosed(err) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
}
