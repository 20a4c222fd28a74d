// Package memory is an in-process contextstore.Store. Nothing survives the
// process; it suits tests, examples and single-shot CLI runs.
//
// Importing the package registers the URL scheme "memory" ("memory:", with an
// optional "?ttl=24h") with contextstore.Open.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"net/url"
	"slices"
	"sync"
	"time"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchhub"
	"mcptower/internal/errs"
)

func init() {
	contextstore.Register("memory", openURL)
}

// openURL accepts "memory:" and "memory://", optionally with "?ttl=..."
// (which contextstore.Open has already applied to opts).
func openURL(_ context.Context, u *url.URL, opts contextstore.Options) (contextstore.Store, error) {
	if u.Opaque != "" || u.Host != "" || (u.Path != "" && u.Path != "/") {
		return nil, errs.E(errs.Invalid, "memory store URL takes no host or path (want \"memory:\")")
	}
	for k := range u.Query() {
		if k != "ttl" {
			return nil, errs.E(errs.Invalid, "memory store URL: unknown parameter %q (known: ttl)", k)
		}
	}
	return New(opts), nil
}

// Store keeps sessions in a map guarded by one mutex. Expired sessions are
// invisible as soon as they expire (checked on access) and are freed by a
// janitor goroutine that Close stops.
type Store struct {
	ttl time.Duration
	hub *watchhub.Hub

	mu       sync.Mutex
	sessions map[string]*session
	last     time.Time // the last timestamp handed out; see now
	closed   bool

	stop chan struct{} // closed by Close to stop the janitor
	done chan struct{} // closed by the janitor when it returns
}

var _ contextstore.Store = (*Store)(nil)

type session struct {
	created time.Time
	updated time.Time
	expires time.Time // zero: never
	tags    map[string]string
	entries []contextstore.Entry // entries[i].Seq == i+1
}

func (s *session) expired(now time.Time) bool {
	return !s.expires.IsZero() && !now.Before(s.expires)
}

// New returns an empty store. With opts.TTL > 0 it starts a janitor
// goroutine; call Close to stop it.
func New(opts contextstore.Options) *Store {
	s := &Store{
		ttl:      opts.TTL,
		hub:      watchhub.New(0),
		sessions: make(map[string]*session),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.ttl > 0 {
		go s.janitor(sweepInterval(s.ttl))
	} else {
		close(s.done)
	}
	return s
}

// sweepInterval is how often the janitor frees expired sessions. Expiry is
// exact without it (reads check the deadline); it only bounds memory.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/2, 50*time.Millisecond), time.Minute)
}

func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *Store) sweep() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sess := range s.sessions {
		if sess.expired(now) {
			delete(s.sessions, id)
		}
	}
}

// now returns the current time in UTC, strictly after every time it returned
// before, so that Updated orders sessions without ties. s.mu must be held.
func (s *Store) now() time.Time {
	t := time.Now().UTC() // UTC also drops the monotonic reading
	if !t.After(s.last) {
		t = s.last.Add(time.Nanosecond)
	}
	s.last = t
	return t
}

// live returns session id unless it is missing or expired; an expired
// session is removed. s.mu must be held.
func (s *Store) live(id string, now time.Time) *session {
	sess := s.sessions[id]
	if sess != nil && sess.expired(now) {
		delete(s.sessions, id)
		return nil
	}
	return sess
}

// Append implements contextstore.Store.
func (s *Store) Append(ctx context.Context, id string, e contextstore.Entry) (contextstore.Entry, error) {
	e, err := contextstore.PrepareEntry(id, e)
	if err != nil {
		return contextstore.Entry{}, err
	}
	// Own copies, so that neither the caller nor a reader can change the log.
	e.Content = bytes.Clone(e.Content)
	e.Tags = cloneTags(e.Tags)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return contextstore.Entry{}, contextstore.ErrClosed
	}
	now := s.now()
	sess := s.live(id, now)
	if sess == nil {
		sess = &session{created: now, tags: make(map[string]string)}
		s.sessions[id] = sess
	}
	e.Seq = int64(len(sess.entries)) + 1
	e.Time = now
	sess.entries = append(sess.entries, e)
	maps.Copy(sess.tags, e.Tags)
	sess.updated = now
	if s.ttl > 0 {
		sess.expires = now.Add(s.ttl)
	}
	// Publishing under s.mu keeps each session's entries in Seq order for
	// watchers; Publish never blocks.
	if s.hub.Watching(id) {
		s.hub.Publish(cloneEntry(e))
	}
	return cloneEntry(e), nil
}

// History implements contextstore.Store.
func (s *Store) History(ctx context.Context, id string, q contextstore.HistoryQuery) ([]contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, contextstore.ErrClosed
	}
	sess := s.live(id, time.Now())
	if sess == nil {
		return nil, nil
	}
	lo, hi := pageBounds(int64(len(sess.entries)), q)
	page := sess.entries[lo:hi]
	out := make([]contextstore.Entry, len(page))
	for i, e := range page {
		out[i] = cloneEntry(e)
	}
	return out, nil
}

// pageBounds returns the slice bounds [lo, hi) of the page q selects from a
// log of n entries with Seqs 1..n (the entry with Seq k is at index k-1).
func pageBounds(n int64, q contextstore.HistoryQuery) (lo, hi int64) {
	limit := int64(contextstore.ClampLimit(q.Limit))
	lo, hi = min(max(q.After, 0), n), n
	if q.Before > 0 {
		hi = min(hi, q.Before-1)
	}
	if lo >= hi {
		return 0, 0
	}
	backward := q.After <= 0 && (q.Before > 0 || q.Last)
	if backward {
		lo = max(lo, hi-limit)
	} else {
		hi = min(hi, lo+limit)
	}
	return lo, hi
}

// Sessions implements contextstore.Store.
func (s *Store) Sessions(ctx context.Context, q contextstore.SessionQuery) ([]contextstore.SessionInfo, error) {
	limit := contextstore.ClampLimit(q.Limit)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, contextstore.ErrClosed
	}
	var out []contextstore.SessionInfo
	for id, sess := range s.sessions {
		if sess.expired(now) {
			delete(s.sessions, id)
			continue
		}
		if !q.UpdatedBefore.IsZero() && !sess.updated.Before(q.UpdatedBefore) {
			continue
		}
		if !contextstore.MatchTags(sess.tags, q.Tags) {
			continue
		}
		out = append(out, contextstore.SessionInfo{
			ID:      id,
			Created: sess.created,
			Updated: sess.updated,
			Entries: int64(len(sess.entries)),
			Tags:    cloneTags(sess.tags),
			Expires: sess.expires,
		})
	}
	slices.SortFunc(out, func(a, b contextstore.SessionInfo) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Delete implements contextstore.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := contextstore.ValidateSession(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return contextstore.ErrClosed
	}
	delete(s.sessions, id)
	return nil
}

// Watch implements contextstore.Store.
func (s *Store) Watch(ctx context.Context, id string) (<-chan contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	return s.hub.Watch(ctx, id)
}

// Ping implements contextstore.Store; it fails only once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return contextstore.ErrClosed
	}
	return nil
}

// Close drops every session, stops the janitor and ends every Watch.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.sessions = nil
	s.mu.Unlock()

	close(s.stop)
	<-s.done
	s.hub.Close()
	return nil
}

func cloneEntry(e contextstore.Entry) contextstore.Entry {
	e.Content = bytes.Clone(e.Content)
	e.Tags = cloneTags(e.Tags)
	return e
}

// cloneTags copies m; an empty map becomes nil so that entries compare alike
// whatever the caller passed.
func cloneTags(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
