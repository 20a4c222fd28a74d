// Package contextstore defines where the context of each conversation lives:
// an ordered log of entries per session, with tags, a TTL refreshed on every
// append, paging, and a watch for new entries.
//
// Backends live in sub-packages, one per driver (memory, sqlite, redis,
// postgres), and register themselves by URL scheme; Open picks one by URL.
package contextstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"mcptower/internal/errs"
)

// Entry is one record in a session's context.
type Entry struct {
	Session string            `json:"session"`
	Seq     int64             `json:"seq"`  // assigned by Append: 1, 2, 3, ... per session
	Time    time.Time         `json:"time"` // assigned by Append
	Role    string            `json:"role"` // user, agent, tool, system
	Agent   string            `json:"agent,omitempty"`
	Content json.RawMessage   `json:"content"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// Roles an entry may have.
const (
	RoleUser   = "user"
	RoleAgent  = "agent"
	RoleTool   = "tool"
	RoleSystem = "system"
)

// HistoryQuery selects a page of a session's entries. The zero value returns
// the oldest DefaultLimit entries.
type HistoryQuery struct {
	// After returns only entries with Seq > After (forward paging).
	After int64
	// Before, if > 0, returns only entries with Seq < Before. With Before set
	// and After zero, the page is the newest Limit entries before Before
	// (backward paging); the result is still in ascending Seq order.
	Before int64
	// Limit caps the page; 0 means DefaultLimit, and it is clamped to MaxLimit.
	Limit int
	// Last, if true and neither After nor Before is set, returns the newest
	// Limit entries (in ascending order).
	Last bool
}

// SessionQuery selects sessions, most recently updated first.
type SessionQuery struct {
	// Tags keeps sessions whose tags contain every key/value given.
	Tags map[string]string
	// UpdatedBefore, if non-zero, keeps sessions updated strictly before it
	// (the cursor for the next page is the last result's Updated).
	UpdatedBefore time.Time
	// Limit caps the page; 0 means DefaultLimit, and it is clamped to MaxLimit.
	Limit int
}

// SessionInfo describes a session.
type SessionInfo struct {
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	Entries int64             `json:"entries"` // highest Seq assigned
	Tags    map[string]string `json:"tags,omitempty"`
	// Expires is when the session disappears unless appended to; zero if
	// the store has no TTL.
	Expires time.Time `json:"expires,omitzero"`
}

// Paging limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Store keeps the context of sessions. All methods are safe for concurrent use.
//
// Errors carry domain codes (mcptower/internal/errs): Invalid for bad input
// (empty session id, an entry without a role), Unavailable when the backend
// cannot be reached, NotFound never (a session with no entries simply has an
// empty history).
type Store interface {
	// Append adds e to the end of session's log, assigning Seq and Time (and
	// Session), and refreshes the session's TTL. e.Tags are merged into the
	// session's tags (later values win). Content must be valid JSON (empty
	// means null).
	Append(ctx context.Context, session string, e Entry) (Entry, error)
	// History returns a page of session's entries in ascending Seq order.
	History(ctx context.Context, session string, q HistoryQuery) ([]Entry, error)
	// Sessions lists sessions, most recently updated first.
	Sessions(ctx context.Context, q SessionQuery) ([]SessionInfo, error)
	// Delete removes a session and its entries. Deleting a missing session is
	// not an error.
	Delete(ctx context.Context, session string) error
	// Watch delivers entries appended to session after the call, in order,
	// until ctx is cancelled or the store is closed; then the channel is
	// closed. A slow reader may miss entries (it can page History to catch
	// up); a watcher never blocks Append.
	Watch(ctx context.Context, session string) (<-chan Entry, error)
	// Ping reports whether the backend is reachable (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the store's resources and ends every Watch.
	Close() error
}

// Options configure any store. The zero value means no TTL.
type Options struct {
	// TTL, if > 0, is how long a session lives after its last append.
	TTL time.Duration
	// Logger receives what a store's background work has to report (a
	// lost connection, a failed sweep); nil means slog.Default().
	Logger *slog.Logger
}

// Opener opens a store from a parsed URL.
type Opener func(ctx context.Context, u *url.URL, opts Options) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes a backend available to Open under a URL scheme. It panics
// if the scheme is registered twice, like database/sql.Register.
func Register(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if open == nil {
		panic("contextstore: Register opener is nil for " + scheme)
	}
	if _, dup := openers[scheme]; dup {
		panic("contextstore: Register called twice for scheme " + scheme)
	}
	openers[scheme] = open
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens the store named by rawURL ("memory:", "sqlite:///path/file.db",
// "redis://host:6379/0", "postgres://..."). The query parameter "ttl" (a Go
// duration) overrides opts.TTL.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errs.E(errs.Invalid, "store URL %q: %w", rawURL, err)
	}
	if u.Scheme == "" {
		return nil, errs.E(errs.Invalid, "store URL %q has no scheme (known: %s)", rawURL, strings.Join(Schemes(), ", "))
	}
	if ttl := u.Query().Get("ttl"); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d < 0 {
			return nil, errs.E(errs.Invalid, "store URL %q: ttl %q is not a positive duration like 24h", rawURL, ttl)
		}
		opts.TTL = d
	}
	openersMu.RLock()
	open := openers[u.Scheme]
	openersMu.RUnlock()
	if open == nil {
		return nil, errs.E(errs.Invalid, "store URL %q: unknown scheme %q (known: %s; forgotten import?)", rawURL, u.Scheme, strings.Join(Schemes(), ", "))
	}
	s, err := open(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", Redact(rawURL), err)
	}
	return s, nil
}

// Redact returns rawURL with any password replaced, for logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// ValidateSession checks a session id: 1..256 bytes of printable ASCII with no
// spaces, so that it is safe in a URI, a Redis key and a log line.
func ValidateSession(session string) error {
	if session == "" {
		return errs.E(errs.Invalid, "session id is empty")
	}
	if len(session) > 256 {
		return errs.E(errs.Invalid, "session id is longer than 256 bytes")
	}
	for i := 0; i < len(session); i++ {
		if c := session[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' {
			return errs.E(errs.Invalid, "session id %q has a character not allowed (%q); use letters, digits, '-', '_', '.', ':'", session, c)
		}
	}
	return nil
}

// PrepareEntry validates e for Append and normalizes it: empty content
// becomes null. Backends call it first in Append.
func PrepareEntry(session string, e Entry) (Entry, error) {
	if err := ValidateSession(session); err != nil {
		return e, err
	}
	switch e.Role {
	case RoleUser, RoleAgent, RoleTool, RoleSystem:
	case "":
		return e, errs.E(errs.Invalid, "entry role is empty (want user, agent, tool or system)")
	default:
		return e, errs.E(errs.Invalid, "entry role %q is not one of user, agent, tool, system", e.Role)
	}
	if len(e.Content) == 0 {
		e.Content = json.RawMessage("null")
	} else if !json.Valid(e.Content) {
		return e, errs.E(errs.Invalid, "entry content is not valid JSON")
	}
	e.Session = session
	return e, nil
}

// ClampLimit applies DefaultLimit and MaxLimit.
func ClampLimit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// MatchTags reports whether have contains every key/value in want.
func MatchTags(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// ErrClosed is returned (with code Unavailable) by a closed store.
var ErrClosed = errs.E(errs.Unavailable, "context store is closed")

// IsClosed reports whether err is ErrClosed.
func IsClosed(err error) bool { return errors.Is(err, ErrClosed) }
