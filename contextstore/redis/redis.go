// Package redis is a contextstore.Store in Redis (6.2 or later, standalone
// or behind Sentinel; not Redis Cluster), using go-redis. Several mcptower
// replicas pointed at one Redis and one key prefix share their sessions:
// each sees the others' appends, in History, Sessions and Watch.
//
// Importing the package registers the URL schemes "redis" and "rediss"
// (TLS) with contextstore.Open:
//
//	redis://[user:password@]host:port/db?prefix=mcptower:&ttl=24h
//
// "prefix" (default DefaultPrefix) starts every key the store uses, so that
// several deployments (or tests) can share one Redis; "ttl" is how long a
// session lives after its last append. Every other query parameter is
// go-redis's (pool_size, dial_timeout, read_timeout, max_retries, ...).
//
// # Data layout
//
// For a session id, under the prefix P:
//
//	P log:<id>      stream: one entry per Append, stream ID "<seq>-0", one
//	                field e, the entry's record (time, role, agent, content,
//	                tags; see record.go)
//	P meta:<id>     hash: seq, created, updated (µs), expires (ms, 0 = none), op
//	P tags:<id>     hash: the session's merged tags
//	P tagidx:<id>   set: the tag index keys that hold the session
//
// and, for all sessions:
//
//	P idx:updated          sorted set: session id → updated (µs)
//	P idx:expires          sorted set: session id → expires (ms), sessions with a TTL
//	P tag:<len(k)>:<k>=<v> sorted set per tag: session id → updated (µs)
//	P clock                the last time handed out (µs)
//	P watch:<id>           the pub/sub channel of a session's appends
//
// A stream keeps entries in Seq order and pages by ID in O(log n) both ways
// (XRANGE/XREVRANGE with exclusive bounds), in compact listpacks; a list
// would make a page in the middle of a long session cost O(n), a sorted set
// costs a skiplist node and a hash entry per entry.
//
// Append is one Lua script: it takes the time from one clock per prefix
// (strictly increasing, so sessions never tie on recency), increments the
// seq, merges the tags and updates the indexes, adds the entry, sets
// PEXPIREAT on every key of the session, and publishes the entry, all
// atomically. The three session keys expire together; the indexes do not
// expire, so reads check the session's meta hash, and a sweeper goroutine
// per store removes the index entries of expired sessions (tagidx:<id>
// outlives the session for that purpose). Each Append carries an op id,
// kept in meta: go-redis retries a command whose reply was lost, and the
// retried script finds its op and returns the first run's result instead
// of appending again.
//
// Watch subscribes (once per session and store) on one pub/sub connection
// owned by the store; a goroutine reads it and fans entries out in process.
// When that connection drops, go-redis reconnects and resubscribes, and the
// store reads what its watchers missed meanwhile from the stream.
package redis

import (
	"context"
	"crypto/rand"
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

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"mcptower/contextstore"
	"mcptower/contextstore/internal/watchfeed"
	"mcptower/internal/errs"
)

func init() {
	contextstore.Register("redis", openURL)
	contextstore.Register("rediss", openURL)
}

// DefaultPrefix starts every key when the URL sets no prefix.
const DefaultPrefix = "mcptower:"

// Timeouts for the network paths the store owns.
const (
	// subscribeTimeout bounds the wait for Redis to confirm a
	// subscription in Watch.
	subscribeTimeout = 5 * time.Second
	// receiveIdle is how long the subscriber waits for a message before
	// pinging.
	receiveIdle = 15 * time.Second
	// maxBackoff bounds the wait between reconnection attempts of the
	// subscriber, and so how long Watch takes to resume after an outage.
	maxBackoff = time.Second
)

// Store is a contextstore.Store in Redis.
type Store struct {
	client *goredis.Client
	ps     *goredis.PubSub
	addr   string // host:port, for messages
	prefix string
	ttl    time.Duration
	feed   *watchfeed.Feed
	logger *slog.Logger

	opPrefix string // makes the op id of every Append unique across stores
	ops      atomic.Uint64

	keyUpdated, keyExpires, keyClock string

	// confirms holds, per channel, the Watch calls waiting for Redis to
	// confirm their subscription.
	confirmMu sync.Mutex
	confirms  map[string][]chan struct{}

	closed atomic.Bool
	stop   context.CancelFunc // ends the subscriber and the sweeper
	wg     sync.WaitGroup
}

var _ contextstore.Store = (*Store)(nil)

func openURL(ctx context.Context, u *url.URL, opts contextstore.Options) (contextstore.Store, error) {
	return Open(ctx, u.String(), opts)
}

// Open connects to the Redis that rawURL names (see the package
// documentation) and checks that it answers. A "ttl" parameter in rawURL
// overrides opts.TTL.
func Open(ctx context.Context, rawURL string, opts contextstore.Options) (*Store, error) {
	ropts, prefix, ttl, err := parseURL(rawURL, opts.TTL)
	if err != nil {
		return nil, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	s := &Store{
		client:     goredis.NewClient(ropts),
		addr:       ropts.Addr,
		prefix:     prefix,
		ttl:        ttl,
		logger:     opts.Logger,
		opPrefix:   hex.EncodeToString(rnd[:]) + ":",
		keyUpdated: prefix + "idx:updated",
		keyExpires: prefix + "idx:expires",
		keyClock:   prefix + "clock",
		confirms:   map[string][]chan struct{}{},
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.feed = watchfeed.New(s, s.logger, "redis at "+s.addr)
	if err := s.client.Ping(ctx).Err(); err != nil {
		s.client.Close()
		return nil, s.wrap(ctx, "open", "", err)
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.ps = s.client.Subscribe(bg) // no channel yet; Watch adds them
	s.wg.Add(2)
	go s.receive(bg)
	go s.sweeper(bg)
	return s, nil
}

// parseURL splits rawURL into go-redis options and the store's own
// parameters.
func parseURL(rawURL string, ttl time.Duration) (*goredis.Options, string, time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", 0, errs.E(errs.Invalid, "redis URL: %w", err)
	}
	q := u.Query()
	prefix := DefaultPrefix
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		if prefix == "" {
			return nil, "", 0, errs.E(errs.Invalid, "redis URL %q: prefix is empty (omit it for the default %q)", u.Redacted(), DefaultPrefix)
		}
	}
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, "", 0, errs.E(errs.Invalid, "redis URL %q: ttl %q is not a positive duration like 24h", u.Redacted(), v)
		}
		ttl = d
	}
	q.Del("prefix")
	q.Del("ttl")
	u.RawQuery = q.Encode()
	ropts, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, "", 0, errs.E(errs.Invalid, "redis URL %q: %w (the store's own parameters are prefix and ttl)", u.Redacted(), err)
	}
	// Deadlines of the caller's context apply to the socket (so that
	// /readyz's short deadline holds), and an outage fails calls fast
	// rather than after many dial attempts.
	ropts.ContextTimeoutEnabled = true
	if ropts.DialerRetries == 0 {
		ropts.DialerRetries = 2
	}
	if !q.Has("max_retries") {
		ropts.MaxRetries = 2
	}
	if ropts.ClientName == "" {
		ropts.ClientName = "mcptower"
	}
	ropts.DisableIdentity = true
	ropts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return ropts, prefix, ttl, nil
}

// Prefix returns the key prefix of the store.
func (s *Store) Prefix() string { return s.prefix }

// Keys of a session.
func (s *Store) keyMeta(id string) string   { return s.prefix + "meta:" + id }
func (s *Store) keyTags(id string) string   { return s.prefix + "tags:" + id }
func (s *Store) keyLog(id string) string    { return s.prefix + "log:" + id }
func (s *Store) keyTagIdx(id string) string { return s.prefix + "tagidx:" + id }
func (s *Store) channel(id string) string   { return s.prefix + "watch:" + id }

// Append implements contextstore.Store.
func (s *Store) Append(ctx context.Context, id string, e contextstore.Entry) (contextstore.Entry, error) {
	return s.append(ctx, id, e, s.opPrefix+strconv.FormatUint(s.ops.Add(1), 36))
}

// append appends e; op identifies this append, so that running the script
// again with the same op (a retry) appends nothing more.
func (s *Store) append(ctx context.Context, id string, e contextstore.Entry, op string) (contextstore.Entry, error) {
	e, err := contextstore.PrepareEntry(id, e)
	if err != nil {
		return contextstore.Entry{}, err
	}
	if s.closed.Load() {
		return contextstore.Entry{}, contextstore.ErrClosed
	}
	if len(e.Tags) == 0 {
		e.Tags = nil // as History returns it
	}
	ttlMS := int64(0)
	if s.ttl > 0 {
		ttlMS = max(s.ttl.Milliseconds(), 1)
	}
	args := make([]any, 0, 6+2*len(e.Tags))
	args = append(args, id, s.prefix, ttlMS, op, encodeRecord(e), s.channel(id))
	for k, v := range e.Tags {
		args = append(args, k, v)
	}
	keys := []string{s.keyMeta(id), s.keyTags(id), s.keyLog(id), s.keyTagIdx(id), s.keyUpdated, s.keyExpires, s.keyClock}
	res, err := appendScript.Run(ctx, s.client, keys, args...).StringSlice()
	if err != nil {
		return contextstore.Entry{}, s.wrap(ctx, "append", id, err)
	}
	if len(res) != 4 {
		return contextstore.Entry{}, errs.E(errs.Internal, "redis append %q: script returned %d values, want 4", id, len(res))
	}
	seq, err1 := strconv.ParseInt(res[0], 10, 64)
	us, err2 := strconv.ParseInt(res[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return contextstore.Entry{}, errs.E(errs.Internal, "redis append %q: %w", id, err)
	}
	e.Seq, e.Time = seq, time.UnixMicro(us).UTC()
	e.Content = append(json.RawMessage(nil), e.Content...)
	e.Tags = cloneTags(e.Tags)
	return e, nil
}

// History implements contextstore.Store.
func (s *Store) History(ctx context.Context, id string, q contextstore.HistoryQuery) ([]contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	limit := int64(contextstore.ClampLimit(q.Limit))
	after := max(q.After, 0)
	if q.Before > 0 && q.Before <= after+1 {
		return nil, nil // nothing between
	}
	start, end := "-", "+"
	if after > 0 {
		start = "(" + strconv.FormatInt(after, 10) + "-0"
	}
	if q.Before > 0 {
		end = "(" + strconv.FormatInt(q.Before, 10) + "-0"
	}
	backward := q.After <= 0 && (q.Before > 0 || q.Last)
	var cmd *goredis.XMessageSliceCmd
	if backward {
		cmd = s.client.XRevRangeN(ctx, s.keyLog(id), end, start, limit)
	} else {
		cmd = s.client.XRangeN(ctx, s.keyLog(id), start, end, limit)
	}
	msgs, err := cmd.Result()
	if err != nil {
		return nil, s.wrap(ctx, "history", id, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	out := make([]contextstore.Entry, len(msgs))
	for i, m := range msgs {
		j := i
		if backward {
			j = len(msgs) - 1 - i
		}
		if out[j], err = decodeMessage(id, m.ID, m.Values); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeMessage turns a stream entry into an Entry.
func decodeMessage(id, streamID string, values map[string]any) (contextstore.Entry, error) {
	rec, _ := values["e"].(string)
	return decodeStreamEntry(id, streamID, rec)
}

func decodeStreamEntry(id, streamID, rec string) (contextstore.Entry, error) {
	e := contextstore.Entry{Session: id}
	seq, _, _ := strings.Cut(streamID, "-")
	var err error
	if e.Seq, err = strconv.ParseInt(seq, 10, 64); err != nil {
		return e, errs.E(errs.Internal, "redis history %q: stream ID %q: %w", id, streamID, err)
	}
	if err := decodeRecord(rec, &e); err != nil {
		return e, errs.E(errs.Internal, "redis history %q: entry %d: %w", id, e.Seq, err)
	}
	return e, nil
}

// Sessions implements contextstore.Store.
func (s *Store) Sessions(ctx context.Context, q contextstore.SessionQuery) ([]contextstore.SessionInfo, error) {
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	maxScore := "+inf"
	if !q.UpdatedBefore.IsZero() {
		maxScore = "(" + strconv.FormatInt(ceilMicro(q.UpdatedBefore), 10)
	}
	args := make([]any, 0, 3+2*len(q.Tags))
	args = append(args, s.prefix, maxScore, contextstore.ClampLimit(q.Limit))
	for k, v := range q.Tags {
		args = append(args, k, v)
	}
	res, err := sessionsScript.Run(ctx, s.client, nil, args...).Slice()
	if err != nil {
		return nil, s.wrap(ctx, "sessions", "", err)
	}
	out := make([]contextstore.SessionInfo, 0, len(res))
	for _, r := range res {
		si, err := decodeSession(r)
		if err != nil {
			return nil, errs.E(errs.Internal, "redis sessions: %w", err)
		}
		out = append(out, si)
	}
	return out, nil
}

// ceilMicro returns t in µs since the epoch, rounded up, so that "updated <
// t" holds for µs values exactly when it holds for t.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 && us >= 0 {
		us++
	}
	return us
}

// decodeSession decodes one row of sessionsScript.
func decodeSession(r any) (contextstore.SessionInfo, error) {
	var si contextstore.SessionInfo
	row, ok := r.([]any)
	if !ok || len(row) != 6 {
		return si, fmt.Errorf("malformed session row %v", r)
	}
	str := func(i int) string { v, _ := row[i].(string); return v }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	si.ID = str(0)
	si.Created = time.UnixMicro(num(1)).UTC()
	si.Updated = time.UnixMicro(num(2)).UTC()
	si.Entries = num(3)
	if ms := num(4); ms > 0 {
		si.Expires = time.UnixMilli(ms).UTC()
	}
	if tags, _ := row[5].([]any); len(tags) > 0 {
		si.Tags = make(map[string]string, len(tags)/2)
		for i := 0; i+1 < len(tags); i += 2 {
			k, _ := tags[i].(string)
			v, _ := tags[i+1].(string)
			si.Tags[k] = v
		}
	}
	return si, nil
}

// Delete implements contextstore.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := contextstore.ValidateSession(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	keys := []string{s.keyMeta(id), s.keyTags(id), s.keyLog(id), s.keyTagIdx(id), s.keyUpdated, s.keyExpires}
	if err := deleteScript.Run(ctx, s.client, keys, id).Err(); err != nil {
		return s.wrap(ctx, "delete", id, err)
	}
	return nil
}

// Watch implements contextstore.Store. It sees the appends of every store
// on the same Redis and prefix.
func (s *Store) Watch(ctx context.Context, id string) (<-chan contextstore.Entry, error) {
	if err := contextstore.ValidateSession(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, contextstore.ErrClosed
	}
	return s.feed.Watch(ctx, id)
}

// Listen implements watchfeed.Source: it subscribes to id's channel, waits
// for Redis to confirm, and reads the session's position.
func (s *Store) Listen(ctx context.Context, id string) (watchfeed.Pos, error) {
	ch := s.channel(id)
	confirmed := make(chan struct{}, 1)
	s.confirmMu.Lock()
	s.confirms[ch] = append(s.confirms[ch], confirmed)
	s.confirmMu.Unlock()
	defer s.dropConfirm(ch, confirmed)

	if err := s.ps.Subscribe(ctx, ch); err != nil {
		return watchfeed.Pos{}, s.wrap(ctx, "watch", id, err)
	}
	timer := time.NewTimer(subscribeTimeout)
	defer timer.Stop()
	select {
	case <-confirmed:
	case <-ctx.Done():
		return watchfeed.Pos{}, s.wrap(ctx, "watch", id, ctx.Err())
	case <-timer.C:
		return watchfeed.Pos{}, errs.E(errs.Unavailable, "redis at %s is unreachable: watch %q: no subscription confirmed within %v", s.addr, id, subscribeTimeout)
	}
	vals, err := s.client.HMGet(ctx, s.keyMeta(id), "created", "seq").Result()
	if err != nil {
		return watchfeed.Pos{}, s.wrap(ctx, "watch", id, err)
	}
	var p watchfeed.Pos
	if gen, ok := vals[0].(string); ok {
		p.Gen, _ = strconv.ParseInt(gen, 10, 64)
		seq, _ := vals[1].(string)
		p.Seq, _ = strconv.ParseInt(seq, 10, 64)
	}
	return p, nil
}

func (s *Store) dropConfirm(ch string, c chan struct{}) {
	s.confirmMu.Lock()
	defer s.confirmMu.Unlock()
	list := s.confirms[ch]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.confirms, ch)
	} else {
		s.confirms[ch] = list
	}
}

// confirm wakes the Watch calls waiting for ch's subscription.
func (s *Store) confirm(ch string) {
	s.confirmMu.Lock()
	defer s.confirmMu.Unlock()
	for _, c := range s.confirms[ch] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Unlisten implements watchfeed.Source.
func (s *Store) Unlisten(ctx context.Context, id string) error {
	return s.ps.Unsubscribe(ctx, s.channel(id))
}

// Since implements watchfeed.Source.
func (s *Store) Since(ctx context.Context, id string, pos watchfeed.Pos, limit int) (int64, []contextstore.Entry, error) {
	res, err := sinceScript.Run(ctx, s.client, []string{s.keyMeta(id), s.keyLog(id)},
		pos.Gen, pos.Seq, limit).Slice()
	if err != nil {
		return 0, nil, s.wrap(ctx, "watch", id, err)
	}
	if len(res) != 2 {
		return pos.Gen, nil, nil // no such session
	}
	gs, _ := res[0].(string)
	gen, err := strconv.ParseInt(gs, 10, 64)
	if err != nil {
		return 0, nil, errs.E(errs.Internal, "redis watch %q: generation %q: %w", id, gs, err)
	}
	msgs, _ := res[1].([]any)
	out := make([]contextstore.Entry, 0, len(msgs))
	for _, m := range msgs {
		pair, _ := m.([]any)
		if len(pair) != 2 {
			return 0, nil, errs.E(errs.Internal, "redis watch %q: malformed stream entry %v", id, m)
		}
		sid, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		var rec string
		if len(fields) == 2 {
			rec, _ = fields[1].(string)
		}
		e, err := decodeStreamEntry(id, sid, rec)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, e)
	}
	return gen, out, nil
}

// receive reads the pub/sub connection until the store closes: it confirms
// subscriptions to Listen, hands entries to the feed, and after the
// connection failed and came back, resyncs the feed.
func (s *Store) receive(ctx context.Context) {
	defer s.wg.Done()
	broken := false
	backoff := 50 * time.Millisecond
	for {
		msg, err := s.ps.ReceiveTimeout(ctx, receiveIdle)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// Quiet for a while: ping, so that idle-connection reapers
			// leave the connection alone and a failed write makes
			// go-redis reconnect. (A peer that vanished without a trace
			// is noticed by TCP keepalive.)
			_ = s.ps.Ping(ctx)
			continue
		}
		if err != nil {
			if !broken {
				s.logger.Warn("context store watch connection failed; reconnecting", "store", "redis", "addr", s.addr, "err", err)
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		if broken {
			// go-redis reconnected and resubscribed: Redis answers the
			// SUBSCRIBE before any message on the new connection, so
			// every channel is live again; read what was missed.
			broken = false
			s.logger.Info("context store watch connection restored", "store", "redis", "addr", s.addr)
			s.feed.Resync(ctx)
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				s.confirm(m.Channel)
			}
		case *goredis.Message:
			s.announce(ctx, m)
		}
	}
}

// announce decodes a published entry and hands it to the feed.
func (s *Store) announce(ctx context.Context, m *goredis.Message) {
	id, ok := strings.CutPrefix(m.Channel, s.prefix+"watch:")
	if !ok || !s.feed.Watching(id) {
		return
	}
	e, gen, err := decodePayload(id, m.Payload)
	if err != nil {
		s.logger.Warn("context store watch: bad message", "store", "redis", "session", id, "err", err)
		return
	}
	s.feed.Announce(ctx, id, watchfeed.Pos{Gen: gen, Seq: e.Seq}, &e)
}

// decodePayload decodes what appendScript publishes: "<seq> <gen> "
// followed by the entry's record.
func decodePayload(id, p string) (contextstore.Entry, int64, error) {
	e := contextstore.Entry{Session: id}
	seq, rest, ok1 := cutInt(p, ' ')
	gen, rec, ok2 := cutInt(rest, ' ')
	if !ok1 || !ok2 {
		return e, 0, errRecord
	}
	e.Seq = seq
	if err := decodeRecord(rec, &e); err != nil {
		return e, 0, err
	}
	return e, gen, nil
}

// sweepBatch bounds how many expired sessions one sweep script removes, so
// that a mass expiry does not block Redis for long.
const sweepBatch = 200

// sweepInterval is how often the sweeper removes the index entries of
// expired sessions. Reads skip expired sessions whether swept or not.
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
				s.logger.Warn("context store sweep failed", "store", "redis", "addr", s.addr, "err", err)
			}
		}
	}
}

// sweep removes the index entries of every expired session.
func (s *Store) sweep(ctx context.Context) error {
	for {
		n, err := sweepScript.Run(ctx, s.client, []string{s.keyExpires, s.keyUpdated}, s.prefix, sweepBatch).Int()
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
	if err := s.client.Ping(ctx).Err(); err != nil {
		return s.wrap(ctx, "ping", "", err)
	}
	return nil
}

// Drop deletes every key under the store's prefix (every session, the
// indexes, the clock), for tests and decommissioning. Other stores on the
// same prefix see their sessions vanish.
func (s *Store) Drop(ctx context.Context) error {
	if s.closed.Load() {
		return contextstore.ErrClosed
	}
	iter := s.client.Scan(ctx, 0, globEscape(s.prefix)+"*", 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.client.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return s.wrap(ctx, "drop", s.prefix, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return s.wrap(ctx, "drop", s.prefix, err)
	}
	if err := flush(); err != nil {
		return s.wrap(ctx, "drop", s.prefix, err)
	}
	return nil
}

// globEscape escapes the characters that SCAN MATCH patterns treat
// specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close ends every Watch, stops the store's goroutines and closes its
// connections. Closing twice is harmless.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	s.feed.Close()
	_ = s.ps.Close()
	s.wg.Wait()
	if err := s.client.Close(); err != nil {
		return errs.E(errs.Unavailable, "redis at %s: close: %w", s.addr, err)
	}
	return nil
}

// wrap gives a Redis error its context and a domain code: Unavailable when
// Redis cannot be reached (or answers that it cannot serve), Timeout when
// the caller's deadline passed, Internal otherwise.
func (s *Store) wrap(ctx context.Context, op, id string, err error) error {
	what := op
	if id != "" {
		what = fmt.Sprintf("%s %q", op, id)
	}
	switch {
	case s.closed.Load() || errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("redis %s: %w", what, contextstore.ErrClosed)
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errs.E(errs.Timeout, "redis at %s did not answer in time: %s: %w", s.addr, what, err)
		}
		return errs.E(errs.Unavailable, "redis %s: %w", what, err)
	case unreachable(err):
		return errs.E(errs.Unavailable, "redis at %s is unreachable: %s: %w", s.addr, what, err)
	case busy(err):
		return errs.E(errs.Unavailable, "redis at %s cannot serve: %s: %w", s.addr, what, err)
	}
	return errs.E(errs.Internal, "redis %s: %w", what, err)
}

// unreachable reports whether err means the connection to Redis failed.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// busy reports whether Redis answered that it cannot serve now: loading its
// data, a read-only replica, a running script, out of memory, no master.
func busy(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	for _, p := range []string{"LOADING", "READONLY", "BUSY", "OOM", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "MAXCLIENTS"} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
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
