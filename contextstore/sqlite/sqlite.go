// Package sqlite is a contextstore.Store in a SQLite database file, using
// modernc.org/sqlite (pure Go, no cgo). It is mcptower's default store: a
// file in the user's data directory (DefaultPath).
//
// Importing the package registers the URL scheme "sqlite" with
// contextstore.Open:
//
//	sqlite:///abs/path/context.db   an absolute path (three slashes)
//	sqlite:rel/path/context.db      a path relative to the working directory
//	sqlite:                         DefaultPath
//
// "sqlite://rel/path" is rejected: its first element would be a URL host, not
// part of the path. The only query parameter is "ttl" (see contextstore.Open).
//
// The database runs in WAL mode with synchronous=NORMAL: a committed append
// survives a crash of the process, though not necessarily a power loss.
// Appends in one process are serialized by a mutex; other processes sharing
// the file wait for its lock (busy_timeout), so running "mcptower history"
// next to a server is fine. Watch only sees appends made through the same
// *Store.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchhub"
	"mcptower/internal/errs"
)

func init() {
	contextstore.Register("sqlite", openURL)
}

// busyTimeout is how long a statement waits for another process's lock on
// the database before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// maxConns bounds the connection pool. Writes are serialized anyway; the
// rest serve concurrent reads, which WAL lets run beside a write.
const maxConns = 4

// DefaultPath returns where the default store lives:
// $XDG_DATA_HOME/mcptower/context.db, or ~/.local/share/mcptower/context.db
// when XDG_DATA_HOME is unset (or, as the XDG spec says, not absolute).
// The directory is not created here; Open creates it.
func DefaultPath() (string, error) {
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "mcptower", "context.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errs.E(errs.Unavailable, "sqlite default path: %w", err)
	}
	return filepath.Join(home, ".local", "share", "mcptower", "context.db"), nil
}

// DefaultURL returns the URL of the default store, "sqlite://" followed by
// DefaultPath.
func DefaultURL() (string, error) {
	p, err := DefaultPath()
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "sqlite", Path: filepath.ToSlash(p)}).String(), nil
}

// pathFromURL returns the database path a sqlite URL names (see the package
// documentation).
func pathFromURL(u *url.URL) (string, error) {
	for k := range u.Query() {
		if k != "ttl" {
			return "", errs.E(errs.Invalid, "sqlite URL: unknown parameter %q (known: ttl)", k)
		}
	}
	switch {
	case u.Host != "":
		return "", errs.E(errs.Invalid,
			"sqlite URL has host %q: use sqlite:///absolute/path.db (three slashes) or sqlite:relative/path.db", u.Host)
	case u.User != nil:
		return "", errs.E(errs.Invalid, "sqlite URL takes no user")
	case u.Opaque != "":
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return "", errs.E(errs.Invalid, "sqlite URL path %q: %w", u.Opaque, err)
		}
		return filepath.FromSlash(p), nil
	case u.Path != "" && u.Path != "/":
		return filepath.FromSlash(u.Path), nil
	default:
		return DefaultPath()
	}
}

func openURL(ctx context.Context, u *url.URL, opts contextstore.Options) (contextstore.Store, error) {
	path, err := pathFromURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, path, opts)
}

// Store is a contextstore.Store in a SQLite database. With a TTL it runs a
// goroutine that deletes expired sessions; Close stops it.
type Store struct {
	db   *sql.DB
	path string
	ttl  time.Duration
	hub  *watchhub.Hub

	// writeMu serializes the writes of this process: it makes Seq
	// assignment race-free without retrying on SQLITE_BUSY, and it makes
	// watchers see each session's entries in Seq order.
	writeMu sync.Mutex
	last    time.Time // the last timestamp handed out; guarded by writeMu

	stmts statements

	closed atomic.Bool
	stop   chan struct{} // closed by Close to stop the sweeper
	done   chan struct{} // closed by the sweeper when it returns
}

var _ contextstore.Store = (*Store)(nil)

// Open opens (creating if need be) the database at path, or at DefaultPath
// if path is empty, and its parent directories. A relative path is relative
// to the working directory.
func Open(ctx context.Context, path string, opts contextstore.Options) (*Store, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, errs.E(errs.Invalid, "sqlite path %q: want a file path (for an in-memory store use \"memory:\")", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errs.E(errs.Invalid, "sqlite path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, errs.E(errs.Unavailable, "sqlite open %q: %w", abs, err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, errs.E(errs.Internal, "sqlite open %q: %w", abs, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	s := &Store{
		db:   db,
		path: abs,
		ttl:  opts.TTL,
		hub:  watchhub.New(0),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.stmts.prepare(ctx, db); err != nil {
		s.stmts.close()
		db.Close()
		return nil, s.wrap(ctx, "open", abs, err)
	}
	// Sessions expired while no store was running are swept at once.
	if err := s.sweep(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if s.ttl > 0 {
		go s.sweeper(sweepInterval(s.ttl))
	} else {
		close(s.done)
	}
	return s, nil
}

// dsn returns the driver's data source name for the database at abs: a
// "file:" URI (so that any character in the path is escaped), and the
// pragmas every pooled connection runs when it opens.
func dsn(abs string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction,
	// so that two processes appending at once wait (busy_timeout) instead
	// of one failing when it upgrades a read lock.
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}).String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// schemaVersion is the PRAGMA user_version of the current schema. Each
// migration takes the database from version i to i+1.
const schemaVersion = 1

var migrations = []string{
	// 0 → 1. Times are Unix nanoseconds (UTC); expires is 0 when the
	// session has no TTL. next_seq is the Seq the next append gets.
	`CREATE TABLE sessions (
		id       TEXT PRIMARY KEY,
		created  INTEGER NOT NULL,
		updated  INTEGER NOT NULL,
		expires  INTEGER NOT NULL DEFAULT 0,
		next_seq INTEGER NOT NULL,
		tags     TEXT NOT NULL DEFAULT '{}'
	) WITHOUT ROWID;
	CREATE INDEX sessions_updated ON sessions (updated);
	CREATE INDEX sessions_expires ON sessions (expires) WHERE expires > 0;
	CREATE TABLE entries (
		session TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		time    INTEGER NOT NULL,
		role    TEXT NOT NULL,
		agent   TEXT NOT NULL DEFAULT '',
		content TEXT NOT NULL,
		tags    TEXT,
		PRIMARY KEY (session, seq)
	) WITHOUT ROWID;`,
}

// migrate brings the schema to schemaVersion. It runs in one IMMEDIATE
// transaction, so that processes opening a new database at once do not
// both create it.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "open", s.path, err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return s.wrap(ctx, "open", s.path, err)
	}
	if version > schemaVersion {
		return errs.E(errs.Unavailable, "sqlite open %q: schema version %d is newer than this build knows (%d); upgrade mcptower",
			s.path, version, schemaVersion)
	}
	if version == schemaVersion {
		return nil
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return s.wrap(ctx, fmt.Sprintf("migrate to schema %d", v+1), s.path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return s.wrap(ctx, "open", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "open", s.path, err)
	}
	return nil
}

// statements are prepared once; database/sql prepares each on a pooled
// connection the first time it runs there, and Tx.StmtContext reuses that.
type statements struct {
	selectSession, upsertSession, insertEntry *sql.Stmt
	deleteEntries, deleteSession              *sql.Stmt
	historyAsc, historyDesc                   *sql.Stmt
}

const historySQL = `
	SELECT seq, time, role, agent, content, tags FROM entries
	WHERE session = ?1 AND seq > ?2 AND seq < ?3
	  AND EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND (expires = 0 OR expires > ?4))
	ORDER BY seq `

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.selectSession, `SELECT created, expires, next_seq, tags FROM sessions WHERE id = ?`},
		{&st.upsertSession, `
			INSERT INTO sessions (id, created, updated, expires, next_seq, tags) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET created = excluded.created, updated = excluded.updated,
				expires = excluded.expires, next_seq = excluded.next_seq, tags = excluded.tags`},
		{&st.insertEntry, `
			INSERT INTO entries (session, seq, time, role, agent, content, tags) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&st.deleteEntries, `DELETE FROM entries WHERE session = ?`},
		{&st.deleteSession, `DELETE FROM sessions WHERE id = ?`},
		// One statement reads the entries and the session's expiry from
		// the same snapshot.
		{&st.historyAsc, historySQL + `ASC LIMIT ?5`},
		{&st.historyDesc, historySQL + `DESC LIMIT ?5`},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.stmt = stmt
	}
	return nil
}

func (st *statements) close() {
	for _, stmt := range []*sql.Stmt{st.selectSession, st.upsertSession, st.insertEntry,
		st.deleteEntries, st.deleteSession, st.historyAsc, st.historyDesc} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// sweepInterval is how often expired sessions are deleted. Reads ignore
// expired sessions whether or not they have been swept.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/2, 100*time.Millisecond), time.Minute)
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.sweep(context.Background()); err != nil && !contextstore.IsClosed(err) {
				slog.Warn("context store sweep failed", "store", "sqlite", "path", s.path, "err", err)
			}
		}
	}
}

// sweepBatch bounds how many sessions one sweep transaction deletes, so
// that a mass expiry does not hold the write lock for long.
const sweepBatch = 256

// sweep deletes expired sessions and their entries.
func (s *Store) sweep(ctx context.Context) error {
	for {
		n, err := s.sweepOnce(ctx)
		if err != nil || n < sweepBatch {
			return err
		}
	}
}

func (s *Store) sweepOnce(ctx context.Context) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return 0, contextstore.ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap(ctx, "sweep", s.path, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx,
		`SELECT id FROM sessions WHERE expires > 0 AND expires <= ? LIMIT ?`, time.Now().UnixNano(), sweepBatch)
	if err != nil {
		return 0, s.wrap(ctx, "sweep", s.path, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, s.wrap(ctx, "sweep", s.path, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return 0, s.wrap(ctx, "sweep", s.path, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	for _, id := range ids {
		if err := s.deleteSession(ctx, tx, id); err != nil {
			return 0, s.wrap(ctx, "sweep", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, s.wrap(ctx, "sweep", s.path, err)
	}
	return len(ids), nil
}

func (s *Store) deleteSession(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.StmtContext(ctx, s.stmts.deleteEntries).ExecContext(ctx, id); err != nil {
		return err
	}
	_, err := tx.StmtContext(ctx, s.stmts.deleteSession).ExecContext(ctx, id)
	return err
}

// now returns the current time in UTC, strictly after every time it returned
// before, so that Updated orders sessions without ties. s.writeMu must be
// held.
func (s *Store) now() time.Time {
	t := time.Now().UTC()
	if !t.After(s.last) {
		t = s.last.Add(time.Nanosecond)
	}
	s.last = t
	return t
}

// Append implements contextstore.Store.
func (s *Store) Append(ctx context.Context, id string, e contextstore.Entry) (contextstore.Entry, error) {
	e, err := contextstore.PrepareEntry(id, e)
	if err != nil {
		return contextstore.Entry{}, err
	}
	if s.closed.Load() {
		return contextstore.Entry{}, contextstore.ErrClosed
	}
	var entryTags sql.NullString
	if len(e.Tags) > 0 {
		b, err := json.Marshal(e.Tags)
		if err != nil {
			return contextstore.Entry{}, errs.E(errs.Invalid, "sqlite append %q: tags: %w", id, err)
		}
		entryTags = sql.NullString{String: string(b), Valid: true}
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.now()
	seq, err := s.appendTx(ctx, id, e, entryTags, now)
	if err != nil {
		return contextstore.Entry{}, s.wrap(ctx, "append", id, err)
	}
	e.Seq, e.Time = seq, now
	if len(e.Tags) == 0 {
		e.Tags = nil // as History returns it
	}
	if s.hub.Watching(id) {
		// Under writeMu, so watchers get each session's entries in order.
		s.hub.Publish(cloneEntry(e))
	}
	return e, nil
}

func (s *Store) appendTx(ctx context.Context, id string, e contextstore.Entry, entryTags sql.NullString, now time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()

	nowNS := now.UnixNano()
	var (
		created, expires, seq int64
		tagsJSON              string
	)
	err = tx.StmtContext(ctx, s.stmts.selectSession).QueryRowContext(ctx, id).
		Scan(&created, &expires, &seq, &tagsJSON)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		created, seq, tagsJSON = nowNS, 1, ""
	case err != nil:
		return 0, err
	case expires > 0 && expires <= nowNS:
		// Expired but not swept yet: start the session afresh.
		if _, err := tx.StmtContext(ctx, s.stmts.deleteEntries).ExecContext(ctx, id); err != nil {
			return 0, err
		}
		created, seq, tagsJSON = nowNS, 1, ""
	}

	if len(e.Tags) > 0 || tagsJSON == "" {
		tags := map[string]string{}
		if tagsJSON != "" {
			if err := json.Unmarshal([]byte(tagsJSON), &tags); err != nil {
				return 0, fmt.Errorf("session tags: %w", err)
			}
		}
		for k, v := range e.Tags {
			tags[k] = v
		}
		b, err := json.Marshal(tags)
		if err != nil {
			return 0, err
		}
		tagsJSON = string(b)
	}
	expires = 0
	if s.ttl > 0 {
		expires = now.Add(s.ttl).UnixNano()
	}
	if _, err := tx.StmtContext(ctx, s.stmts.upsertSession).ExecContext(ctx,
		id, created, nowNS, expires, seq+1, tagsJSON); err != nil {
		return 0, err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.insertEntry).ExecContext(ctx,
		id, seq, nowNS, e.Role, e.Agent, string(e.Content), entryTags); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return seq, nil
}

// History implements contextstore.Store.
func (s *Store) History(ctx context.Context, id string, q contextstore.HistoryQuery) ([]contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	limit := contextstore.ClampLimit(q.Limit)
	after, before := max(q.After, 0), q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	stmt := s.stmts.historyAsc
	backward := q.After <= 0 && (q.Before > 0 || q.Last)
	if backward {
		stmt = s.stmts.historyDesc
	}
	rows, err := stmt.QueryContext(ctx, id, after, before, time.Now().UnixNano(), limit)
	if err != nil {
		return nil, s.wrap(ctx, "history", id, err)
	}
	defer rows.Close()
	var out []contextstore.Entry
	for rows.Next() {
		var (
			e       = contextstore.Entry{Session: id}
			timeNS  int64
			content []byte
			tags    sql.NullString
		)
		if err := rows.Scan(&e.Seq, &timeNS, &e.Role, &e.Agent, &content, &tags); err != nil {
			return nil, s.wrap(ctx, "history", id, err)
		}
		e.Time = time.Unix(0, timeNS).UTC()
		e.Content = content
		if tags.Valid {
			if err := json.Unmarshal([]byte(tags.String), &e.Tags); err != nil {
				return nil, errs.E(errs.Internal, "sqlite history %q: entry %d tags: %w", id, e.Seq, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, "history", id, err)
	}
	if backward {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// Sessions implements contextstore.Store.
func (s *Store) Sessions(ctx context.Context, q contextstore.SessionQuery) ([]contextstore.SessionInfo, error) {
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	var (
		where = []string{`(expires = 0 OR expires > ?)`}
		args  = []any{time.Now().UnixNano()}
	)
	if !q.UpdatedBefore.IsZero() {
		where = append(where, `updated < ?`)
		args = append(args, q.UpdatedBefore.UnixNano())
	}
	for k, v := range q.Tags {
		// json_each rather than a JSON path, so that any key works.
		where = append(where, `EXISTS (SELECT 1 FROM json_each(sessions.tags) WHERE key = ? AND value = ?)`)
		args = append(args, k, v)
	}
	args = append(args, contextstore.ClampLimit(q.Limit))
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, created, updated, expires, next_seq, tags FROM sessions
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY updated DESC, id ASC LIMIT ?`, args...)
	if err != nil {
		return nil, s.wrap(ctx, "sessions", "", err)
	}
	defer rows.Close()
	var out []contextstore.SessionInfo
	for rows.Next() {
		var (
			si                                 contextstore.SessionInfo
			created, updated, expires, nextSeq int64
			tags                               string
		)
		if err := rows.Scan(&si.ID, &created, &updated, &expires, &nextSeq, &tags); err != nil {
			return nil, s.wrap(ctx, "sessions", "", err)
		}
		si.Created = time.Unix(0, created).UTC()
		si.Updated = time.Unix(0, updated).UTC()
		if expires > 0 {
			si.Expires = time.Unix(0, expires).UTC()
		}
		si.Entries = nextSeq - 1
		if err := json.Unmarshal([]byte(tags), &si.Tags); err != nil {
			return nil, errs.E(errs.Internal, "sqlite sessions: session %q tags: %w", si.ID, err)
		}
		if len(si.Tags) == 0 {
			si.Tags = nil
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, "sessions", "", err)
	}
	return out, nil
}

// Delete implements contextstore.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := contextstore.ValidateSession(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "delete", id, err)
	}
	defer tx.Rollback()
	if err := s.deleteSession(ctx, tx, id); err != nil {
		return s.wrap(ctx, "delete", id, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "delete", id, err)
	}
	return nil
}

// Watch implements contextstore.Store. It sees appends made through s only,
// not those of other processes sharing the file.
func (s *Store) Watch(ctx context.Context, id string) (<-chan contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	return s.hub.Watch(ctx, id)
}

// Ping implements contextstore.Store: it checks that the database answers a
// query.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.wrap(ctx, "ping", s.path, err)
	}
	return nil
}

// Close stops the sweeper, ends every Watch and closes the database.
// Closing twice is harmless.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	<-s.done
	s.hub.Close()
	s.stmts.close()
	if err := s.db.Close(); err != nil {
		return errs.E(errs.Unavailable, "sqlite close %q: %w", s.path, err)
	}
	return nil
}

// wrap gives a database error its context and a domain code: Unavailable
// for a closed store or a database that cannot be used (I/O, locks, a full
// disk, corruption), Timeout when ctx's deadline passed, Internal otherwise.
func (s *Store) wrap(ctx context.Context, op, id string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite %s %q: %w", op, id, contextstore.ErrClosed)
	}
	code := errs.Internal
	var se *sqlitedriver.Error
	switch {
	case ctx.Err() != nil:
		// The driver may report an interrupt rather than ctx's error.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = errs.Timeout
		} else {
			code = errs.Unavailable
		}
		if !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	case errors.As(err, &se):
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
			code = errs.Unavailable
		}
	}
	return errs.E(code, "sqlite %s %q: %w", op, id, err)
}

func cloneEntry(e contextstore.Entry) contextstore.Entry {
	e.Content = append(json.RawMessage(nil), e.Content...)
	if e.Tags != nil {
		tags := make(map[string]string, len(e.Tags))
		for k, v := range e.Tags {
			tags[k] = v
		}
		e.Tags = tags
	}
	return e
}
