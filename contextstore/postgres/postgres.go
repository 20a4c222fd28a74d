// Package postgres is a contextstore.Store in PostgreSQL (13 or later),
// using pgx. Several mcptower replicas pointed at one database and schema
// share their sessions: each sees the others' appends, in History,
// Sessions and Watch.
//
// Importing the package registers the URL schemes "postgres" and
// "postgresql" with contextstore.Open:
//
//	postgres://user[:password]@host:port/database?schema=mcptower&ttl=24h
//
// "schema" (default DefaultSchema; or the first element of "search_path")
// holds the store's tables; the store creates it if it is missing. "ttl" is
// how long a session lives after its last append. Every other parameter is
// pgx's (sslmode, pool_max_conns, connect_timeout, application_name, ...).
//
// # Schema
//
// Embedded, numbered migrations (migrations/*.sql) create the tables; Open
// applies the missing ones in one transaction under an advisory lock, so
// that replicas starting at once neither race nor fail, and refuses a
// schema newer than it knows. sessions holds one row per session (seq
// counter, merged tags as jsonb with a GIN index, updated with a btree
// index for recency, expires); entries holds the log, keyed (session, gen,
// seq) so that History pages by index in either direction.
//
// Append is one statement (one round trip): an upsert of the session row
// (which serializes appends to one session on its row lock and assigns the
// next seq), the insert of the entry and a pg_notify, committed together.
// A session's TTL is its expires column; reads ignore expired sessions, an
// append to an expired session starts it over (a new gen), and a sweeper
// goroutine per store deletes expired sessions and their entries.
//
// Times come from the database's clock (clock_timestamp), so replicas
// agree; within a session they strictly increase. Two sessions can share a
// microsecond, though, and Sessions paging by UpdatedBefore (the
// contract's cursor) can then skip one of them at a page boundary; the
// Redis store has one clock per prefix and no ties.
//
// Watch listens on one channel per schema with one connection owned by the
// store, and fans entries out in process; notifications carry the session,
// gen and seq (an entry can be far larger than NOTIFY's 8000 bytes), and
// the store reads the entries themselves. Every replica receives every
// append's notification and ignores those of sessions nobody watches
// there. A notifying commit takes a database-wide lock briefly, which
// serializes appends' commits; the WAL flush of each commit costs more.
// After the listening connection drops, the store reconnects, listens
// again and reads what its watchers missed.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchfeed"
	"mcptower/internal/errs"
)

func init() {
	contextstore.Register("postgres", openURL)
	contextstore.Register("postgresql", openURL)
}

// DefaultSchema holds the store's tables when the URL names no schema.
const DefaultSchema = "mcptower"

// maxBackoff bounds the wait between reconnection attempts of the
// listener, and so how long Watch takes to resume after an outage.
const maxBackoff = time.Second

// Store is a contextstore.Store in PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	addr    string // host:port, for messages
	schema  string
	channel string // the LISTEN/NOTIFY channel of the schema
	ttl     time.Duration
	feed    *watchfeed.Feed
	logger  *slog.Logger

	closed atomic.Bool
	stop   context.CancelFunc // ends the listener and the sweeper
	wg     sync.WaitGroup
}

var _ contextstore.Store = (*Store)(nil)

func openURL(ctx context.Context, u *url.URL, opts contextstore.Options) (contextstore.Store, error) {
	return Open(ctx, u.String(), opts)
}

// Open connects to the database rawURL names (see the package
// documentation), creates the schema if missing and migrates it. A "ttl"
// parameter in rawURL overrides opts.TTL.
func Open(ctx context.Context, rawURL string, opts contextstore.Options) (*Store, error) {
	cfg, schema, ttl, err := parseURL(rawURL, opts.TTL)
	if err != nil {
		return nil, err
	}
	s := &Store{
		addr:    net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))),
		schema:  schema,
		channel: channelName(schema),
		ttl:     ttl,
		logger:  opts.Logger,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errs.E(errs.Invalid, "postgres URL %q: %w", redact(rawURL), err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	s.feed = watchfeed.New(s, s.logger, "postgres at "+s.addr)
	// The first listener connection is made here, so that Watch works as
	// soon as Open returns (later ones are the listener's business).
	conn, err := s.connectListener(ctx)
	if err != nil {
		s.pool.Close()
		return nil, s.wrap(ctx, "open", "", err)
	}
	// Sessions expired while no store was running are swept at once.
	if err := s.sweep(ctx); err != nil {
		conn.Close(context.Background())
		s.pool.Close()
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(2)
	go s.listen(bg, conn)
	go s.sweeper(bg)
	return s, nil
}

// parseURL splits rawURL into pgx's configuration and the store's own
// parameters, and sets search_path to the schema on every connection.
func parseURL(rawURL string, ttl time.Duration) (*pgxpool.Config, string, time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", 0, errs.E(errs.Invalid, "postgres URL: %w", err)
	}
	q := u.Query()
	schema := DefaultSchema
	switch {
	case q.Has("schema"):
		schema = q.Get("schema")
	case q.Has("search_path"):
		first, _, _ := strings.Cut(q.Get("search_path"), ",")
		schema = strings.TrimSpace(first)
		if len(schema) >= 2 && schema[0] == '"' && schema[len(schema)-1] == '"' {
			schema = strings.ReplaceAll(schema[1:len(schema)-1], `""`, `"`)
		}
	}
	if schema == "" || strings.HasPrefix(schema, "$") || strings.HasPrefix(schema, "pg_") || len(schema) > 63 {
		return nil, "", 0, errs.E(errs.Invalid, "postgres URL %q: schema %q: want a name of 1 to 63 bytes, not starting with pg_ or $", u.Redacted(), schema)
	}
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, "", 0, errs.E(errs.Invalid, "postgres URL %q: ttl %q is not a positive duration like 24h", u.Redacted(), v)
		}
		ttl = d
	}
	q.Del("schema")
	q.Del("search_path")
	q.Del("ttl")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, "", 0, errs.E(errs.Invalid, "postgres URL %q: %w", u.Redacted(), err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "mcptower"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg, schema, ttl, nil
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// channelName returns the LISTEN/NOTIFY channel of schema. Channels are
// per database, not per schema, and at most 63 bytes.
func channelName(schema string) string {
	c := "mcptower:" + schema
	if len(c) > 63 {
		sum := sha256.Sum256([]byte(schema))
		c = "mcptower:" + hex.EncodeToString(sum[:16])
	}
	return c
}

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// appendSQL is Append in one statement; see the package documentation.
// The expiry test uses the time taken before the row lock (excluded.updated)
// so that every column agrees on whether the session had expired; updated
// is strictly later than the session's previous update, so entry times
// never go backwards within a session.
//
// $1 id, $2 ttl (µs, 0 for none), $3 entry tags as jsonb ('{}' for none),
// $4 role, $5 agent, $6 content, $7 entry tags as json (NULL for none),
// $8 channel.
const appendSQL = `
WITH t AS (SELECT clock_timestamp() AS now),
up AS (
  INSERT INTO sessions AS s (id, gen, created, updated, expires, last_seq, tags)
  SELECT $1, nextval('session_gen'), t.now, t.now,
         CASE WHEN $2::bigint > 0 THEN t.now + $2::bigint * interval '1 microsecond' END, 1, $3::jsonb
  FROM t
  ON CONFLICT (id) DO UPDATE SET
    gen      = CASE WHEN s.expires <= excluded.updated THEN excluded.gen ELSE s.gen END,
    prev_gen = CASE WHEN s.expires <= excluded.updated THEN s.gen END,
    created  = CASE WHEN s.expires <= excluded.updated THEN excluded.created ELSE s.created END,
    last_seq = CASE WHEN s.expires <= excluded.updated THEN 1 ELSE s.last_seq + 1 END,
    tags     = CASE WHEN s.expires <= excluded.updated THEN excluded.tags ELSE s.tags || excluded.tags END,
    updated  = GREATEST(excluded.updated, s.updated + interval '1 microsecond'),
    expires  = CASE WHEN $2::bigint > 0
                 THEN GREATEST(excluded.updated, s.updated + interval '1 microsecond') + $2::bigint * interval '1 microsecond' END
  RETURNING s.id, s.gen, s.last_seq, s.updated, s.prev_gen
),
gone AS (
  -- The entries of the incarnation this append replaced, if any.
  DELETE FROM entries d USING up WHERE d.session = up.id AND d.gen = up.prev_gen
),
ins AS (
  INSERT INTO entries (session, gen, seq, time, role, agent, content, tags)
  SELECT up.id, up.gen, up.last_seq, up.updated, $4, $5, $6::json, $7::json FROM up
  RETURNING gen, seq, time
)
SELECT ins.seq, ins.time, pg_notify($8, ins.gen || ' ' || ins.seq || ' ' || $1) FROM ins`

// Append implements contextstore.Store.
func (s *Store) Append(ctx context.Context, id string, e contextstore.Entry) (contextstore.Entry, error) {
	e, err := contextstore.PrepareEntry(id, e)
	if err != nil {
		return contextstore.Entry{}, err
	}
	if s.closed.Load() {
		return contextstore.Entry{}, contextstore.ErrClosed
	}
	sessionTags, entryTags := "{}", (*string)(nil)
	if len(e.Tags) > 0 {
		b, err := json.Marshal(e.Tags)
		if err != nil {
			return contextstore.Entry{}, errs.E(errs.Invalid, "postgres append %q: tags: %w", id, err)
		}
		sessionTags = string(b)
		entryTags = &sessionTags
		e.Tags = cloneTags(e.Tags)
	} else {
		e.Tags = nil // as History returns it
	}
	ttl := int64(0)
	if s.ttl > 0 {
		ttl = max(s.ttl.Microseconds(), 1)
	}
	err = s.pool.QueryRow(ctx, appendSQL, id, ttl, sessionTags, e.Role, e.Agent, string(e.Content), entryTags, s.channel).
		Scan(&e.Seq, &e.Time, nil)
	if err != nil {
		return contextstore.Entry{}, s.wrap(ctx, "append", id, err)
	}
	e.Time = e.Time.UTC()
	e.Content = append(json.RawMessage(nil), e.Content...)
	return e, nil
}

// historySQL reads a page of the live generation of a session: the scalar
// subquery yields the gen (NULL for a missing or expired session), and the
// primary key (session, gen, seq) serves the range in order, so LIMIT
// stops the scan.
const historySQL = `
SELECT seq, time, role, agent, content, tags FROM entries
WHERE session = $1
  AND gen = (SELECT gen FROM sessions WHERE id = $1 AND (expires IS NULL OR expires > clock_timestamp()))
  AND seq > $2 AND seq < $3
ORDER BY seq `

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
	if before <= after+1 {
		return nil, nil
	}
	backward := q.After <= 0 && (q.Before > 0 || q.Last)
	query := historySQL + "ASC LIMIT $4"
	if backward {
		query = historySQL + "DESC LIMIT $4"
	}
	rows, err := s.pool.Query(ctx, query, id, after, before, limit)
	if err != nil {
		return nil, s.wrap(ctx, "history", id, err)
	}
	out, err := scanEntries(rows, id)
	if err != nil {
		return nil, s.wrap(ctx, "history", id, err)
	}
	if backward {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// scanEntries reads rows of (seq, time, role, agent, content, tags) and
// closes them.
func scanEntries(rows pgx.Rows, id string) ([]contextstore.Entry, error) {
	defer rows.Close()
	var out []contextstore.Entry
	for rows.Next() {
		e := contextstore.Entry{Session: id}
		// Scanned as bytes: scanning json into a json.RawMessage would
		// run it through json.Unmarshal.
		var content, tags []byte
		if err := rows.Scan(&e.Seq, &e.Time, &e.Role, &e.Agent, &content, &tags); err != nil {
			return nil, err
		}
		e.Time, e.Content = e.Time.UTC(), content
		if tags != nil {
			var err error
			if e.Tags, err = decodeTags(tags); err != nil {
				return nil, errs.E(errs.Internal, "entry %d tags: %w", e.Seq, err)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const sessionsSQL = `
SELECT id, created, updated, expires, last_seq, tags FROM sessions
WHERE (expires IS NULL OR expires > clock_timestamp()) AND updated < $1`

// Sessions implements contextstore.Store.
func (s *Store) Sessions(ctx context.Context, q contextstore.SessionQuery) ([]contextstore.SessionInfo, error) {
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	before := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	if !q.UpdatedBefore.IsZero() {
		before = pgtype.Timestamptz{Time: ceilMicro(q.UpdatedBefore), Valid: true}
	}
	limit := contextstore.ClampLimit(q.Limit)
	var rows pgx.Rows
	var err error
	if len(q.Tags) == 0 {
		rows, err = s.pool.Query(ctx, sessionsSQL+` ORDER BY updated DESC, id LIMIT $2`, before, limit)
	} else {
		tags, merr := json.Marshal(q.Tags)
		if merr != nil {
			return nil, errs.E(errs.Invalid, "postgres sessions: tags: %w", merr)
		}
		rows, err = s.pool.Query(ctx, sessionsSQL+` AND tags @> $3::jsonb ORDER BY updated DESC, id LIMIT $2`, before, limit, string(tags))
	}
	if err != nil {
		return nil, s.wrap(ctx, "sessions", "", err)
	}
	defer rows.Close()
	var out []contextstore.SessionInfo
	for rows.Next() {
		var (
			si      contextstore.SessionInfo
			expires *time.Time
			tags    []byte
		)
		if err := rows.Scan(&si.ID, &si.Created, &si.Updated, &expires, &si.Entries, &tags); err != nil {
			return nil, s.wrap(ctx, "sessions", "", err)
		}
		si.Created, si.Updated = si.Created.UTC(), si.Updated.UTC()
		if expires != nil {
			si.Expires = expires.UTC()
		}
		if err := json.Unmarshal(tags, &si.Tags); err != nil {
			return nil, errs.E(errs.Internal, "postgres sessions: session %q tags: %w", si.ID, err)
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

// ceilMicro rounds t up to PostgreSQL's resolution (µs), so that "updated <
// t" holds in the database exactly when it holds for t.
func ceilMicro(t time.Time) time.Time {
	r := t.Truncate(time.Microsecond)
	if r.Before(t) {
		r = r.Add(time.Microsecond)
	}
	return r
}

// Delete implements contextstore.Store. The two statements run in one
// implicit transaction (a batch); the second takes its snapshot after the
// first has locked the session row, so it also sees an entry whose append
// committed while Delete waited for that lock.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := contextstore.ValidateSession(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM sessions WHERE id = $1`, id)
	b.Queue(`DELETE FROM entries WHERE session = $1`, id)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.wrap(ctx, "delete", id, err)
	}
	return nil
}

// Watch implements contextstore.Store. It sees the appends of every store
// on the same database and schema.
func (s *Store) Watch(ctx context.Context, id string) (<-chan contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	return s.feed.Watch(ctx, id)
}

// Listen implements watchfeed.Source. The listener connection listens to
// every session of the schema already; this reads the session's position.
func (s *Store) Listen(ctx context.Context, id string) (watchfeed.Pos, error) {
	var p watchfeed.Pos
	err := s.pool.QueryRow(ctx,
		`SELECT gen, last_seq FROM sessions WHERE id = $1 AND (expires IS NULL OR expires > clock_timestamp())`, id).
		Scan(&p.Gen, &p.Seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, s.wrap(ctx, "watch", id, err)
	}
	return p, nil
}

// Unlisten implements watchfeed.Source; there is nothing to undo.
func (s *Store) Unlisten(context.Context, string) error { return nil }

// Since implements watchfeed.Source.
func (s *Store) Since(ctx context.Context, id string, pos watchfeed.Pos, limit int) (int64, []contextstore.Entry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT g.gen, e.seq, e.time, e.role, e.agent, e.content, e.tags
		FROM (SELECT gen FROM sessions WHERE id = $1 AND (expires IS NULL OR expires > clock_timestamp())) g
		CROSS JOIN LATERAL (
			SELECT seq, time, role, agent, content, tags FROM entries
			WHERE session = $1 AND gen = g.gen AND seq > CASE WHEN g.gen = $2 THEN $3 ELSE 0 END
			ORDER BY seq LIMIT $4) e`, id, pos.Gen, pos.Seq, limit)
	if err != nil {
		return 0, nil, s.wrap(ctx, "watch", id, err)
	}
	defer rows.Close()
	gen := pos.Gen
	var out []contextstore.Entry
	for rows.Next() {
		e := contextstore.Entry{Session: id}
		var content, tags []byte
		if err := rows.Scan(&gen, &e.Seq, &e.Time, &e.Role, &e.Agent, &content, &tags); err != nil {
			return 0, nil, s.wrap(ctx, "watch", id, err)
		}
		e.Time, e.Content = e.Time.UTC(), content
		if tags != nil {
			var err error
			if e.Tags, err = decodeTags(tags); err != nil {
				return 0, nil, errs.E(errs.Internal, "postgres watch %q: entry %d tags: %w", id, e.Seq, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, s.wrap(ctx, "watch", id, err)
	}
	return gen, out, nil
}

// connectListener opens a connection (outside the pool) and LISTENs on the
// schema's channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listen waits for notifications until the store closes, hands them to the
// feed, and reconnects (then resyncs the feed) when the connection fails.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer s.wg.Done()
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	backoff := 50 * time.Millisecond
	for {
		if conn == nil {
			c, err := s.connectListener(ctx)
			if ctx.Err() != nil {
				if c != nil {
					c.Close(context.Background())
				}
				return
			}
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			conn, backoff = c, 50*time.Millisecond
			s.logger.Info("context store watch connection restored", "store", "postgres", "addr", s.addr)
			s.feed.Resync(ctx)
		}
		n, err := conn.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.logger.Warn("context store watch connection failed; reconnecting", "store", "postgres", "addr", s.addr, "err", err)
			conn.Close(context.Background())
			conn = nil
			continue
		}
		s.announce(ctx, n.Payload)
	}
}

// announce parses a notification ("<gen> <seq> <session>") and hands it to
// the feed, which reads the entry.
func (s *Store) announce(ctx context.Context, payload string) {
	f := strings.SplitN(payload, " ", 3)
	if len(f) != 3 || !s.feed.Watching(f[2]) {
		return
	}
	gen, err1 := strconv.ParseInt(f[0], 10, 64)
	seq, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		s.logger.Warn("context store watch: bad notification", "store", "postgres", "payload", payload)
		return
	}
	s.feed.Announce(ctx, f[2], watchfeed.Pos{Gen: gen, Seq: seq}, nil)
}

// sweepInterval is how often the sweeper deletes expired sessions. Reads
// ignore expired sessions whether swept or not.
func sweepInterval(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return time.Minute // sessions of other stores with a TTL
	}
	return min(max(ttl/2, 100*time.Millisecond), time.Minute)
}

func (s *Store) sweeper(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(sweepInterval(s.ttl))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("context store sweep failed", "store", "postgres", "addr", s.addr, "err", err)
			}
		}
	}
}

// sweepBatch bounds how many sessions one sweep transaction deletes.
const sweepBatch = 500

// sweep deletes expired sessions and their entries, in batches. SKIP
// LOCKED lets replicas sweep at once without waiting on each other, and
// skips sessions being appended to (which are not expired any more).
func (s *Store) sweep(ctx context.Context) error {
	for {
		var n int
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				DELETE FROM sessions WHERE id IN (
					SELECT id FROM sessions WHERE expires <= clock_timestamp()
					ORDER BY expires LIMIT $1 FOR UPDATE SKIP LOCKED)
				RETURNING id`, sweepBatch)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(ids) == 0 {
				return err
			}
			n = len(ids)
			_, err = tx.Exec(ctx, `DELETE FROM entries WHERE session = ANY($1)`, ids)
			return err
		})
		if err != nil {
			return s.wrap(ctx, "sweep", "", err)
		}
		if n < sweepBatch {
			return nil
		}
	}
}

// Ping implements contextstore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	if err := s.pool.Ping(ctx); err != nil {
		return s.wrap(ctx, "ping", "", err)
	}
	return nil
}

// Drop drops the store's schema with everything in it, for tests and
// decommissioning. It refuses the public schema. The store is unusable
// afterwards; close it.
func (s *Store) Drop(ctx context.Context) error {
	if s.schema == "public" {
		return errs.E(errs.Invalid, "postgres drop: refusing to drop the public schema")
	}
	if _, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s.schema}.Sanitize()+" CASCADE"); err != nil {
		return s.wrap(ctx, "drop schema", s.schema, err)
	}
	return nil
}

// Close ends every Watch, stops the store's goroutines and closes its
// connections. Closing twice is harmless.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	s.feed.Close()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// wrap gives a database error its context and a domain code: Unavailable
// when PostgreSQL cannot be reached (or answers that it cannot serve),
// Timeout when the caller's deadline passed, Invalid for data it refuses
// to store, Internal otherwise.
func (s *Store) wrap(ctx context.Context, op, id string, err error) error {
	what := op
	if id != "" {
		what = fmt.Sprintf("%s %q", op, id)
	}
	var pe *pgconn.PgError
	switch {
	case s.closed.Load():
		return fmt.Errorf("postgres %s: %w", what, contextstore.ErrClosed)
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errs.E(errs.Timeout, "postgres at %s did not answer in time: %s: %w", s.addr, what, err)
		}
		return errs.E(errs.Unavailable, "postgres %s: %w", what, err)
	case errors.As(err, &pe):
		switch c := pe.Code; {
		case strings.HasPrefix(c, "08"), strings.HasPrefix(c, "53"), strings.HasPrefix(c, "57P"), c == "55006":
			// connection exception, insufficient resources, shutdown,
			// cannot connect now; object in use.
			return errs.E(errs.Unavailable, "postgres at %s cannot serve: %s: %w", s.addr, what, err)
		case strings.HasPrefix(c, "22"):
			// data exception: a NUL or invalid UTF-8 in a text or tag.
			return errs.E(errs.Invalid, "postgres cannot store this: %s: %w", what, err)
		case c == "3F000", c == "42P01":
			return errs.E(errs.Unavailable, "postgres at %s: %s: the store's schema %q is gone (%w); restart to recreate it", s.addr, what, s.schema, err)
		}
	case unreachable(err):
		return errs.E(errs.Unavailable, "postgres at %s is unreachable: %s: %w", s.addr, what, err)
	}
	return errs.E(errs.Internal, "postgres %s: %w", what, err)
}

// unreachable reports whether err means the connection to PostgreSQL
// failed or could not be made.
func unreachable(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		err.Error() == "closed pool"
}

func cloneTags(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
