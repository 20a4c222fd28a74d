// Package watchfeed implements contextstore.Store.Watch for a store whose
// appends are announced by its backend (Redis pub/sub, PostgreSQL
// LISTEN/NOTIFY) over a connection that can drop.
//
// An announcement may arrive late, twice (after a catch-up), out of step
// (after a gap), or not at all (while the connection is down). A Feed keeps,
// for each watched session, the position of the last entry it delivered; it
// drops announcements at or before that position, delivers the next entry
// directly when the announcement carries it, and otherwise reads what it
// missed from the store (Source.Since). After the backend's connection comes
// back, Resync reads what every watched session missed. Watchers therefore
// see each session's entries in Seq order, without duplicates, and without
// losing entries to a reconnect (a slow reader may still miss some, as the
// contract allows).
package watchfeed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchhub"
)

// Pos is a place in a session's log. Gen tells the session's incarnations
// apart: a session that was deleted or expired and then appended to again
// starts over at Seq 1 with a larger Gen. The zero Pos is before everything.
type Pos struct {
	Gen, Seq int64
}

// After reports whether p comes after q.
func (p Pos) After(q Pos) bool {
	return p.Gen > q.Gen || (p.Gen == q.Gen && p.Seq > q.Seq)
}

// Source is what a Feed needs from its store.
type Source interface {
	// Listen makes the backend announce session's appends from now on
	// (while its connection holds) and returns the position of the
	// session's last entry (the zero Pos if it has none).
	Listen(ctx context.Context, session string) (Pos, error)
	// Unlisten stops announcements for session; errors are ignored.
	Unlisten(ctx context.Context, session string) error
	// Since returns up to limit entries of session after pos, in Seq
	// order, and the generation they belong to. If the session's current
	// generation is not pos.Gen, the entries are the first of the current
	// generation. A missing session has no entries.
	Since(ctx context.Context, session string, pos Pos, limit int) (gen int64, entries []contextstore.Entry, err error)
}

// catchUpPage and catchUpPages bound one catch-up: beyond them a watcher
// has missed so much that it must page History itself. sinceTimeout bounds
// each read, so that a backend that stopped answering cannot hold up the
// goroutine that reads its notifications for long.
const (
	catchUpPage  = 100
	catchUpPages = 10
	sinceTimeout = 10 * time.Second
)

// Feed fans announced entries out to watchers. The zero value is not
// usable; call New.
type Feed struct {
	src    Source
	hub    *watchhub.Hub
	logger *slog.Logger
	what   string // names the store in logs

	// listenMu serializes Listen and Unlisten calls, which wait on the
	// network, so that a session is never listened to and unlistened at
	// once. It is never held by the goroutine that announces.
	listenMu sync.Mutex

	mu     sync.Mutex
	pos    map[string]Pos // watched sessions → last delivered
	closed bool
}

// New returns a Feed reading missed entries from src. what names the store
// in log lines ("redis at host:port").
func New(src Source, logger *slog.Logger, what string) *Feed {
	if logger == nil {
		logger = slog.Default()
	}
	f := &Feed{src: src, hub: watchhub.New(0), logger: logger, what: what, pos: map[string]Pos{}}
	f.hub.SetIdleFunc(f.idle)
	return f
}

// Watch implements contextstore.Store.Watch: it listens to session (once
// for all its watchers) and registers a watcher.
func (f *Feed) Watch(ctx context.Context, session string) (<-chan contextstore.Entry, error) {
	f.listenMu.Lock()
	defer f.listenMu.Unlock()
	f.mu.Lock()
	_, listening := f.pos[session]
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return nil, contextstore.ErrClosed
	}
	if !listening {
		p, err := f.src.Listen(ctx, session)
		if err != nil {
			f.unlisten(session)
			return nil, err
		}
		f.mu.Lock()
		f.pos[session] = p
		f.mu.Unlock()
	}
	ch, err := f.hub.Watch(ctx, session)
	if err != nil {
		f.mu.Lock()
		delete(f.pos, session)
		f.mu.Unlock()
		f.unlisten(session)
		return nil, err
	}
	return ch, nil
}

// idle runs when the last watcher of session has gone.
func (f *Feed) idle(session string) {
	f.listenMu.Lock()
	defer f.listenMu.Unlock()
	if f.hub.Watching(session) {
		return // a new watcher came meanwhile
	}
	f.mu.Lock()
	_, ok := f.pos[session]
	delete(f.pos, session)
	closed := f.closed
	f.mu.Unlock()
	if ok && !closed {
		f.unlisten(session)
	}
}

func (f *Feed) unlisten(session string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.src.Unlisten(ctx, session) // the subscription dies with the connection anyway
}

// Watching reports whether session has a watcher here, so that the
// announcing goroutine can skip decoding announcements nobody reads.
func (f *Feed) Watching(session string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.pos[session]
	return ok
}

// Announce reports that session has an entry at pos; e, if not nil, is
// that entry. Announce and Resync must be called from one goroutine (the
// one reading the backend's notifications), in the order the backend
// delivered them; they may read the store (Source.Since).
func (f *Feed) Announce(ctx context.Context, session string, pos Pos, e *contextstore.Entry) {
	f.mu.Lock()
	last, ok := f.pos[session]
	if !ok || !pos.After(last) {
		f.mu.Unlock()
		return
	}
	next := pos.Gen == last.Gen && pos.Seq == last.Seq+1
	fresh := pos.Gen > last.Gen && pos.Seq == 1 // a new incarnation's first entry
	if e != nil && (next || fresh) {
		f.pos[session] = pos
		f.hub.Publish(*e) // under f.mu: the order of positions is the order of delivery
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.catchUp(ctx, session)
}

// Resync reads what every watched session missed while the backend's
// connection was down. Call it once the connection is back and listening
// again.
func (f *Feed) Resync(ctx context.Context) {
	f.mu.Lock()
	sessions := make([]string, 0, len(f.pos))
	for s := range f.pos {
		sessions = append(sessions, s)
	}
	f.mu.Unlock()
	for _, s := range sessions {
		if ctx.Err() != nil {
			return
		}
		f.catchUp(ctx, s)
	}
}

// catchUp delivers session's entries after the last delivered one.
func (f *Feed) catchUp(ctx context.Context, session string) {
	for range catchUpPages {
		f.mu.Lock()
		last, ok := f.pos[session]
		f.mu.Unlock()
		if !ok {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, sinceTimeout)
		gen, es, err := f.src.Since(sctx, session, last, catchUpPage)
		cancel()
		if err != nil {
			// A later announcement or Resync tries again.
			if ctx.Err() == nil {
				f.logger.Warn("context store watch could not read missed entries",
					"store", f.what, "session", session, "err", err)
			}
			return
		}
		f.mu.Lock()
		cur, ok := f.pos[session]
		if !ok {
			f.mu.Unlock()
			return
		}
		for _, e := range es {
			p := Pos{Gen: gen, Seq: e.Seq}
			if p.After(cur) {
				cur = p
				f.hub.Publish(e)
			}
		}
		f.pos[session] = cur
		f.mu.Unlock()
		if len(es) < catchUpPage {
			return
		}
	}
}

// Close ends every watch; later Watch calls return contextstore.ErrClosed.
func (f *Feed) Close() {
	f.mu.Lock()
	f.closed = true
	clear(f.pos)
	f.mu.Unlock()
	f.hub.Close()
}
