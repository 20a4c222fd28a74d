package watchhub_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchhub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func closedWithin(t *testing.T, ch <-chan contextstore.Entry) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed")
		}
	}
}

func TestHub(t *testing.T) {
	h := watchhub.New(2)
	ctx, cancel := context.WithCancel(t.Context())
	a, err := h.Watch(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Watch(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Watching("a") || h.Watching("c") {
		t.Errorf("Watching(a), Watching(c) = %v, %v; want true, false", h.Watching("a"), h.Watching("c"))
	}
	for seq := range int64(4) { // more than the buffer: the rest are dropped
		h.Publish(contextstore.Entry{Session: "a", Seq: seq + 1})
	}
	h.Publish(contextstore.Entry{Session: "b", Seq: 7})
	if e := <-a; e.Seq != 1 {
		t.Errorf("a got Seq %d, want 1", e.Seq)
	}
	if e := <-a; e.Seq != 2 {
		t.Errorf("a got Seq %d, want 2", e.Seq)
	}
	if e := <-b; e.Seq != 7 {
		t.Errorf("b got Seq %d, want 7", e.Seq)
	}

	cancel()
	closedWithin(t, a)
	if h.Watching("a") {
		t.Error("still watching a after cancel")
	}
	h.Publish(contextstore.Entry{Session: "a", Seq: 5}) // no watcher: no-op

	h.Close()
	closedWithin(t, b)
	h.Close()
	if _, err := h.Watch(t.Context(), "a"); !contextstore.IsClosed(err) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
	h.Publish(contextstore.Entry{Session: "b", Seq: 8}) // after Close: no-op
}

func TestCancelledBeforeWatch(t *testing.T) {
	h := watchhub.New(0)
	defer h.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ch, err := h.Watch(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	closedWithin(t, ch)
}

// TestCloseRacesCancel closes the hub while contexts are being cancelled:
// no channel may be closed twice.
func TestCloseRacesCancel(t *testing.T) {
	for range 100 {
		h := watchhub.New(0)
		var cancels []context.CancelFunc
		var chans []<-chan contextstore.Entry
		for range 10 {
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := h.Watch(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			cancels = append(cancels, cancel)
			chans = append(chans, ch)
		}
		go func() {
			for _, c := range cancels {
				c()
			}
		}()
		h.Close()
		for _, ch := range chans {
			closedWithin(t, ch)
		}
	}
}

// TestIdleFunc checks that the idle callback runs when the last watcher of a
// session leaves by cancellation, and not on Close.
func TestIdleFunc(t *testing.T) {
	h := watchhub.New(0)
	idle := make(chan string, 4)
	h.SetIdleFunc(func(session string) { idle <- session })
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	a1, _ := h.Watch(ctx1, "a")
	a2, _ := h.Watch(ctx2, "a")
	b, _ := h.Watch(t.Context(), "b")
	cancel1()
	closedWithin(t, a1)
	select {
	case s := <-idle:
		t.Fatalf("idle(%q) with a watcher of a left", s)
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	closedWithin(t, a2)
	select {
	case s := <-idle:
		if s != "a" {
			t.Errorf("idle(%q), want idle(a)", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no idle callback after the last watcher of a left")
	}
	h.Close()
	closedWithin(t, b)
	select {
	case s := <-idle:
		t.Errorf("idle(%q) on Close", s)
	case <-time.After(50 * time.Millisecond):
	}
}
