// Package watchhub fans new context entries out to in-process watchers. The
// memory and sqlite stores share it; a networked backend can feed it from its
// own notification channel (pub/sub, LISTEN/NOTIFY).
package watchhub

import (
	"context"
	"sync"

	"mcptower/contextstore"
)

// DefaultBuffer is how many entries a watcher may fall behind before the hub
// starts dropping entries for it.
const DefaultBuffer = 64

// Hub is a set of watchers per session. The zero value is not usable; call New.
type Hub struct {
	mu     sync.Mutex
	subs   map[string]map[*watcher]struct{}
	buffer int
	closed bool
	idle   func(session string) // see SetIdleFunc
}

type watcher struct {
	session string
	ch      chan contextstore.Entry
	stop    func() bool // unregisters the context.AfterFunc
}

// New returns a hub whose watchers buffer up to buffer entries (DefaultBuffer
// if buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{subs: make(map[string]map[*watcher]struct{}), buffer: buffer}
}

// Watch registers a watcher of session. The returned channel receives what
// Publish sends for session and is closed when ctx is done or the hub closes.
// It returns contextstore.ErrClosed if the hub is closed. It starts no
// goroutine: ctx is observed with context.AfterFunc.
func (h *Hub) Watch(ctx context.Context, session string) (<-chan contextstore.Entry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, contextstore.ErrClosed
	}
	w := &watcher{session: session, ch: make(chan contextstore.Entry, h.buffer)}
	set := h.subs[session]
	if set == nil {
		set = make(map[*watcher]struct{})
		h.subs[session] = set
	}
	set[w] = struct{}{}
	// If ctx is already done, AfterFunc runs remove in its own goroutine,
	// which waits for h.mu and then closes the channel.
	w.stop = context.AfterFunc(ctx, func() { h.remove(w) })
	return w.ch, nil
}

// SetIdleFunc makes the hub call fn(session) when the last watcher of
// session goes away because its context ended (not when the hub closes), so
// that a store can stop listening to its backend for that session. fn runs
// in the goroutine context.AfterFunc started for the ending watch, without
// the hub's lock held, so it may block briefly; by the time it runs a new
// watcher may have arrived, which fn can check with Watching. Call
// SetIdleFunc before the first Watch.
func (h *Hub) SetIdleFunc(fn func(session string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idle = fn
}

// remove unregisters w and closes its channel, unless Close did already.
func (h *Hub) remove(w *watcher) {
	h.mu.Lock()
	set := h.subs[w.session]
	if _, ok := set[w]; !ok {
		h.mu.Unlock()
		return
	}
	delete(set, w)
	idle := len(set) == 0
	if idle {
		delete(h.subs, w.session)
	}
	close(w.ch)
	fn := h.idle
	h.mu.Unlock()
	if idle && fn != nil {
		fn(w.session)
	}
}

// Publish sends e to every watcher of e.Session without blocking: a watcher
// whose buffer is full misses e. All watchers receive the same value, so they
// must not modify e.Content or e.Tags. Callers that need watchers to see a
// session's entries in Seq order must publish them in that order (for
// example, while still holding the lock that assigned Seq).
func (h *Hub) Publish(e contextstore.Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.subs[e.Session] {
		select {
		case w.ch <- e:
		default: // slow reader: drop rather than block Append
		}
	}
}

// Watching reports whether session has at least one watcher, so that a
// publisher can skip building the entry.
func (h *Hub) Watching(session string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[session]) > 0
}

// Close closes every watcher's channel and makes later Watch calls fail with
// contextstore.ErrClosed. Closing twice is harmless.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, set := range h.subs {
		for w := range set {
			w.stop()
			close(w.ch)
		}
	}
	clear(h.subs)
}
