// Package mcpkind registers the agent kind "mcp": an upstream MCP server,
// reached over stdio (a command mcptower runs) or Streamable HTTP, whose
// tools become agents named <prefix><separator><tool>, with the upstream's
// schemas and annotations, behind the same pipeline as every other agent.
//
// # The set of tools changes at run time
//
// The kind builds one *Upstream per definition. It is an agents.Dynamic:
// building it connects to nothing (config validation builds agents too);
// Start connects (or, with start: lazy, begins connecting in the
// background), and once its owner has attached it to a registry it keeps
// one *Tool per upstream tool there, adding, replacing and removing them
// when the upstream sends notifications/tools/list_changed. The MCP server
// follows the registry, so our clients get list_changed in turn.
//
// # Relay
//
// A call of a Tool is a tools/call on the upstream with a progress token of
// our own: the upstream's progress notifications for that token go to the
// calling client (agents.Client.Progress). Cancelling our call (the client's
// notifications/cancelled, a timeout) cancels the upstream request, and the
// SDK sends notifications/cancelled upstream. The upstream's log messages,
// sampling requests and elicitation requests carry no reference to the
// request they belong to, so they are routed to the one call in progress on
// that connection, or, when several are, to the newest one if all come from
// the same context session; otherwise sampling and elicitation fail with an
// error that says why, and logs only go to mcptower's own log. When the
// calling client cannot sample or elicit, the upstream gets the client's
// reason as the error of its request.
//
// A client of the 2026-07-28 protocol answers sampling and elicitation in a
// retry of the whole call (agents.InputRequired). An upstream request cannot
// wait for that retry, so the upstream call is cancelled, the client is
// asked, and the retry calls the upstream tool again from the start; this
// time the client's answers are at hand and the upstream's requests are
// answered at once, in order. The upstream tool therefore runs once more
// per round of questions, and must ask the same questions in the same order
// each time: tools with side effects before their questions repeat them.
//
// # Lean calls
//
// For an HTTP upstream whose session speaks a 2025 protocol version, a
// tools/call is made by mcptower's own lean client on the SDK's session (one
// POST whose answer is read in place; lean.go), which costs the proxy much
// less than a call through the SDK's client (BenchmarkCall). The SDK client
// keeps the session and does everything else. Options.LeanCalls turns this
// off.
//
// # Supervision
//
// A supervisor goroutine per upstream watches the connection: it pings the
// upstream (PingInterval), restarts a stdio process that exited or
// reconnects an HTTP upstream that failed, with exponential backoff up to a
// cap, and logs the process's stderr line by line with attribute
// upstream=<name>. Calls in progress when a connection ends fail with an
// errs.Unavailable error that says what happened; calls made while it is
// being re-established wait for it, and fail at once while the upstream is
// down after a failed attempt. A stdio process runs in its own process
// group; stopping it closes its stdin, then sends SIGTERM and SIGKILL to
// the group, and reaps it. Close stops the supervisor and every goroutine
// the upstream started, and returns when the process is gone.
package mcpkind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
	"mcptower/internal/observe"
)

// Kind is the name the kind is registered under.
const Kind = "mcp"

// MetaSession is the request _meta key that carries the context session to
// the upstream when Options.ForwardSession is set (the key mcptower itself
// reads).
const MetaSession = "mcptower/session_id"

func init() {
	agents.RegisterKind(Kind, func(ctx context.Context, def *agents.Definition) ([]agents.Agent, error) {
		u, err := New(ctx, def)
		if err != nil {
			return nil, err
		}
		return []agents.Agent{u}, nil
	})
}

// Upstream is one upstream MCP server: the Dynamic agent whose members are
// its tools. Build it with New (or through the kind); it connects to
// nothing until Start.
type Upstream struct {
	spec   agents.Spec
	def    agents.Definition
	s      *settings
	logger *slog.Logger
	client *mcp.Client
	httpTr *http.Transport // HTTP upstreams: closed on Close
	httpC  *http.Client    // the SDK client's
	leanC  *http.Client    // lean calls' (lean.go); nil when they are off

	wg      sync.WaitGroup // every goroutine the upstream owns
	refresh chan struct{}  // list_changed seen: re-list the tools
	notes   *notes         // relayed notifications read and handled (order.go)

	mu       sync.Mutex
	state    state
	conn     *connection   // when stateReady
	changed  chan struct{} // closed and replaced on every state change
	lastErr  error
	retryAt  time.Time
	started  bool
	stop     context.CancelFunc // ends the supervisor
	calls    map[string]*inflight
	nextCall uint64

	syncMu     sync.Mutex // serializes changes of the member set
	members    map[string]*Tool
	registry   *agents.Registry
	registered map[string]*Tool // members currently in registry
}

var (
	_ agents.Dynamic       = (*Upstream)(nil)
	_ agents.Starter       = (*Upstream)(nil)
	_ agents.HealthChecker = (*Upstream)(nil)
)

type state int

const (
	stateIdle       state = iota // built, not started
	stateConnecting              // first connection attempt in progress
	stateReady                   // connected
	stateRestarting              // a connection ended; reconnecting shortly
	stateFailing                 // the last attempt failed; retrying with backoff
	stateClosed
)

func (s state) String() string {
	return [...]string{"not started", "connecting", "ready", "restarting", "unavailable", "closed"}[s]
}

// New builds the upstream of def without connecting to it. The logger comes
// from ctx (agents.ContextWithLogger).
func New(ctx context.Context, def *agents.Definition) (*Upstream, error) {
	s, err := parseOptions(def)
	if err != nil {
		return nil, err
	}
	u := &Upstream{
		def:     *def,
		s:       s,
		logger:  agents.LoggerFrom(ctx).With("upstream", def.Name),
		refresh: make(chan struct{}, 1),
		notes:   newNotes(),
		changed: make(chan struct{}),
		calls:   map[string]*inflight{},
		members: map[string]*Tool{},
	}
	u.spec = agents.Spec{Name: def.Name, Version: "1.0.0", Kind: Kind,
		Description: "MCP server " + s.target() + "; its tools are agents named " + s.prefix + "<tool>"}
	def.ApplyTo(&u.spec)
	if s.URL != "" {
		u.httpTr = http.DefaultTransport.(*http.Transport).Clone()
		// Concurrent calls each hold a connection (the response streams):
		// keep them for reuse rather than redialling (the default keeps 2).
		u.httpTr.MaxIdleConnsPerHost = 64
		base := observe.Transport(u.httpTr)
		u.httpC = &http.Client{Transport: &headerTransport{base: base, headers: s.Headers, tokenEnv: s.BearerTokenEnv, sdk: true, notes: u.notes}}
		if s.leanCalls {
			u.leanC = &http.Client{Transport: &headerTransport{base: base, headers: s.Headers, tokenEnv: s.BearerTokenEnv}}
		}
	}
	u.client = mcp.NewClient(&mcp.Implementation{Name: "mcptower", Version: buildVersion()}, &mcp.ClientOptions{
		Logger:                      slog.New(minLevel{Handler: u.logger.Handler(), min: slog.LevelWarn}),
		Capabilities:                &mcp.ClientCapabilities{}, // no roots
		CreateMessageHandler:        u.handleSample,
		ElicitationHandler:          u.handleElicit,
		ToolListChangedHandler:      u.handleToolListChanged,
		LoggingMessageHandler:       u.handleLog,
		ProgressNotificationHandler: u.handleProgress,
	})
	return u, nil
}

// Spec describes the upstream itself. It is not registered: its tools are.
func (u *Upstream) Spec() *agents.Spec { return &u.spec }

// Invoke fails: an upstream is called through its tools.
func (u *Upstream) Invoke(context.Context, *agents.Call) (*agents.Result, error) {
	return nil, errs.E(errs.Invalid, "%s is an upstream MCP server, not a tool: call one of its tools (%s<tool>)", u.spec.Name, u.s.prefix)
}

// Tools returns the current members, sorted by name.
func (u *Upstream) Tools() []*Tool {
	u.syncMu.Lock()
	defer u.syncMu.Unlock()
	out := make([]*Tool, 0, len(u.members))
	for _, t := range u.members {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// PID returns the process id of a stdio upstream's current process, or 0.
func (u *Upstream) PID() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil || u.conn.proc == nil {
		return 0
	}
	return u.conn.proc.pid()
}

// Start connects to the upstream and lists its tools (start: eager), or
// starts doing so in the background (start: lazy). ctx bounds only the
// eager connection; the upstream runs until Close.
func (u *Upstream) Start(ctx context.Context) error {
	u.mu.Lock()
	if u.started || u.state == stateClosed {
		u.mu.Unlock()
		return errs.E(errs.Conflict, "upstream %s: Start called twice, or after Close", u.spec.Name)
	}
	u.started = true
	sctx, stop := context.WithCancel(context.Background())
	u.stop = stop
	u.mu.Unlock()

	var c *connection
	if u.s.Start == StartEager {
		u.setState(stateConnecting, nil, nil)
		var err error
		if c, err = u.connect(ctx); err != nil {
			u.setState(stateFailing, nil, err)
			stop()
			return err
		}
	}
	u.mu.Lock()
	closed := u.state == stateClosed
	if !closed {
		u.wg.Add(1)
	}
	u.mu.Unlock()
	if closed { // Close ran meanwhile
		if c != nil {
			c.close()
		}
		return errs.E(errs.Unavailable, "upstream %s was closed while starting", u.spec.Name)
	}
	go u.supervise(sctx, c)
	return nil
}

// Attach makes the upstream keep its tools in r from now on.
func (u *Upstream) Attach(r *agents.Registry) {
	u.syncMu.Lock()
	defer u.syncMu.Unlock()
	u.registry = r
	u.registered = map[string]*Tool{}
	u.applyLocked()
}

// CheckHealth pings the upstream; an upstream that is not connected is
// errs.Unavailable with the reason.
func (u *Upstream) CheckHealth(ctx context.Context) error {
	u.mu.Lock()
	st, c, lastErr := u.state, u.conn, u.lastErr
	u.mu.Unlock()
	if st != stateReady {
		return u.unavailable(st, lastErr)
	}
	if err := c.sess.Ping(ctx, nil); err != nil {
		return errs.Wrap(errs.Unavailable, err, "upstream "+u.spec.Name+" did not answer ping")
	}
	return nil
}

// Close removes the tools from the registry, stops the supervisor, closes
// the connection and waits for the process (stdio) and for every goroutine
// the upstream started. It is safe to call more than once, and without
// Start.
func (u *Upstream) Close() error {
	u.mu.Lock()
	if u.state == stateClosed {
		u.mu.Unlock()
		return nil
	}
	stop := u.stop
	u.state, u.conn = stateClosed, nil
	close(u.changed)
	u.changed = make(chan struct{})
	u.mu.Unlock()

	u.syncMu.Lock()
	for _, t := range u.registered {
		u.unregister(t)
	}
	u.registry, u.registered = nil, nil
	u.syncMu.Unlock()

	start := time.Now()
	if stop != nil {
		stop()
	}
	u.wg.Wait()
	if u.httpTr != nil {
		u.httpTr.CloseIdleConnections()
	}
	u.logger.Debug("upstream closed", "duration", time.Since(start))
	return nil
}

func (u *Upstream) setState(st state, c *connection, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == stateClosed {
		return
	}
	u.state, u.conn = st, c
	if err != nil {
		u.lastErr = err
	}
	close(u.changed)
	u.changed = make(chan struct{})
}

// unavailable is the error of a call that finds the upstream in state st.
func (u *Upstream) unavailable(st state, lastErr error) error {
	switch st {
	case stateClosed:
		return errs.E(errs.Unavailable, "upstream %s is closed", u.spec.Name)
	case stateFailing:
		u.mu.Lock()
		retry := time.Until(u.retryAt).Round(time.Millisecond)
		u.mu.Unlock()
		return errs.E(errs.Unavailable, "upstream %s (%s) is unavailable: %v; next attempt in %s", u.spec.Name, u.s.target(), lastErr, max(retry, 0))
	}
	if lastErr != nil {
		return errs.E(errs.Unavailable, "upstream %s is %s (last error: %v)", u.spec.Name, st, lastErr)
	}
	return errs.E(errs.Unavailable, "upstream %s is %s", u.spec.Name, st)
}

// ready returns the live connection, waiting while one is being made.
func (u *Upstream) ready(ctx context.Context) (*connection, error) {
	for {
		u.mu.Lock()
		st, c, ch, lastErr := u.state, u.conn, u.changed, u.lastErr
		u.mu.Unlock()
		switch st {
		case stateReady:
			return c, nil
		case stateConnecting, stateRestarting:
		default:
			return nil, u.unavailable(st, lastErr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for upstream %s (%s): %w", u.spec.Name, st, ctx.Err())
		}
	}
}

// supervise owns the upstream's connection from Start to Close: it
// re-establishes it when it ends, with backoff, pings it, and re-lists the
// tools on list_changed. c is the connection Start made, or nil.
func (u *Upstream) supervise(ctx context.Context, c *connection) {
	defer u.wg.Done()
	delay := u.s.backoff
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		if c == nil {
			u.mu.Lock()
			if u.state == stateIdle {
				u.mu.Unlock()
				u.setState(stateConnecting, nil, nil)
			} else {
				u.mu.Unlock()
			}
			var err error
			c, err = u.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				u.mu.Lock()
				u.retryAt = time.Now().Add(delay)
				u.mu.Unlock()
				u.setState(stateFailing, nil, err)
				u.logger.Warn("upstream unavailable", "target", u.s.target(), "error", err, "retry_in", delay)
				if !sleep(delay) {
					return
				}
				delay = min(delay*2, u.s.maxBackoff)
				continue
			}
		}
		connectedAt := time.Now()
		u.setState(stateReady, c, nil)
		attrs := []any{"target", u.s.target(), "tools", len(u.Tools())}
		if ir := c.sess.InitializeResult(); ir != nil {
			attrs = append(attrs, "protocol", ir.ProtocolVersion)
		}
		if c.proc != nil {
			attrs = append(attrs, "pid", c.proc.pid())
		}
		u.logger.Info("upstream connected", attrs...)

		alive := u.watch(ctx, c)
		c.close()
		if !alive {
			return
		}
		if time.Since(connectedAt) >= stableAfter {
			delay = u.s.backoff
		}
		cause := c.failure()
		u.setState(stateRestarting, nil, cause)
		u.logger.Warn("upstream connection ended; reconnecting", "error", cause, "restart_in", delay)
		c = nil
		if !sleep(delay) {
			return
		}
		delay = min(delay*2, u.s.maxBackoff)
	}
}

// stableAfter is how long a connection must last for the backoff to start
// over.
var stableAfter = 30 * time.Second

// watch serves c until it ends (true) or ctx is done (false).
func (u *Upstream) watch(ctx context.Context, c *connection) bool {
	var tick <-chan time.Time
	if u.s.pingInterval > 0 {
		t := time.NewTicker(u.s.pingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-c.done:
			return true
		case <-u.refresh:
			lctx, cancel := context.WithTimeout(ctx, u.s.connectTimeout)
			err := u.syncTools(lctx, c)
			cancel()
			if err != nil && ctx.Err() == nil {
				u.logger.Warn("upstream tools/list failed after list_changed", "error", err)
			}
		case <-tick:
			pctx, cancel := context.WithTimeout(ctx, min(u.s.pingInterval, 10*time.Second))
			err := c.sess.Ping(pctx, nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				u.logger.Warn("upstream did not answer ping; reconnecting", "error", err)
				c.fail(fmt.Errorf("no answer to ping: %w", err))
			}
		}
	}
}

// connect starts (stdio) or dials (HTTP) the upstream, initializes a
// session, lists the tools and updates the members.
func (u *Upstream) connect(ctx context.Context) (*connection, error) {
	ctx, cancel := context.WithTimeout(ctx, u.s.connectTimeout)
	defer cancel()
	c := &connection{up: u, done: make(chan struct{})}
	var t mcp.Transport
	if u.s.Command != "" {
		p, err := startProcess(u.s, u.logger, &u.wg)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.spec.Name, err)
		}
		c.proc = p
		t = &mcp.IOTransport{Reader: &countingReader{r: p.stdout, notes: u.notes}, Writer: p.stdin}
	} else {
		if env := u.s.BearerTokenEnv; env != "" && os.Getenv(env) == "" {
			return nil, errs.E(errs.Unavailable, "upstream %s: bearer_token_env %s is not set", u.spec.Name, env)
		}
		t = &mcp.StreamableClientTransport{Endpoint: u.s.URL, HTTPClient: u.httpC}
	}
	sess, err := u.client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: u.s.Protocol})
	if err != nil {
		cause := err
		if c.proc != nil {
			c.proc.stop()
			if perr := c.proc.exitError(); perr != nil {
				cause = fmt.Errorf("%w (%v)", err, perr)
			}
		}
		return nil, fmt.Errorf("upstream %s (%s): connect: %w", u.spec.Name, u.s.target(), cause)
	}
	c.sess = sess
	c.lean = u.leanFor(sess)
	c.start()
	// Logging is deprecated in 2026-07-28 (and go-sdk v1.8.0 sends
	// logging/setLevel without the per-request _meta that protocol needs).
	if ir := sess.InitializeResult(); u.s.LogLevel != "off" && ir != nil && ir.ProtocolVersion < "2026-07-28" && ir.Capabilities != nil && ir.Capabilities.Logging != nil {
		if err := sess.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: mcp.LoggingLevel(u.s.LogLevel)}); err != nil {
			u.logger.Warn("upstream refused logging/setLevel", "level", u.s.LogLevel, "error", err)
		}
	}
	if err := u.syncTools(ctx, c); err != nil {
		c.close()
		return nil, fmt.Errorf("upstream %s (%s): tools/list: %w", u.spec.Name, u.s.target(), err)
	}
	return c, nil
}

// connection is one session with the upstream (and its process, for stdio).
type connection struct {
	up   *Upstream
	sess *mcp.ClientSession
	lean *leanSession // non-nil: tools/call goes the lean way (lean.go)
	proc *process
	done chan struct{} // closed when the session has ended

	cause     error // why it ended; guarded by up.mu
	closeOnce sync.Once
}

// start runs the goroutines that notice the end of the connection.
func (c *connection) start() {
	u := c.up
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		err := c.sess.Wait()
		cause := fmt.Errorf("connection closed: %v", err)
		if err == nil {
			cause = errors.New("connection closed")
		}
		if c.proc != nil { // the process's fate is the better explanation
			t := time.NewTimer(time.Second)
			select {
			case <-c.proc.exited:
				cause = c.proc.exitError()
			case <-t.C:
			}
			t.Stop()
		}
		c.fail(cause)
		close(c.done)
	}()
	if c.proc != nil {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			select {
			case <-c.proc.exited:
				c.fail(c.proc.exitError())
			case <-c.done:
			}
		}()
	}
}

// fail records why c ended (the first reason wins), takes it out of
// service, cuts short the calls in progress on it with that cause, and
// closes the session.
func (c *connection) fail(cause error) {
	u := c.up
	u.mu.Lock()
	if c.cause != nil {
		u.mu.Unlock()
		return
	}
	c.cause = cause
	if u.conn == c && u.state == stateReady {
		u.state, u.conn, u.lastErr = stateRestarting, nil, cause
		close(u.changed)
		u.changed = make(chan struct{})
	}
	var cut []*inflight
	for _, f := range u.calls {
		if f.conn == c {
			cut = append(cut, f)
		}
	}
	u.mu.Unlock()
	for _, f := range cut {
		f.cancel(&connectionError{cause: cause})
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = c.sess.Close()
	}()
}

func (c *connection) failure() error {
	c.up.mu.Lock()
	defer c.up.mu.Unlock()
	return c.cause
}

// close ends c and waits until it is over: the session closed, the process
// (stdio) stopped and reaped.
func (c *connection) close() {
	c.closeOnce.Do(func() {
		if c.sess == nil {
			if c.proc != nil {
				c.proc.stop()
			}
			return
		}
		c.fail(errClosing)
		if c.proc != nil {
			t := time.NewTimer(terminateGrace)
			select {
			case <-c.done:
			case <-t.C:
			}
			t.Stop()
			c.proc.stop() // EOF on its stdout ends the session if nothing else did
		}
		<-c.done
	})
}

var errClosing = errors.New("mcptower closed the connection")

// codeRejected is the SDK's code for a request the transport could not send
// (for HTTP: the POST failed); the connection is then in doubt.
const codeRejected = -32005

// connectionError is the cause of calls cut short by the end of their
// connection.
type connectionError struct{ cause error }

func (e *connectionError) Error() string { return e.cause.Error() }
func (e *connectionError) Unwrap() error { return e.cause }

// callTool calls t on the upstream for call.
func (u *Upstream) callTool(ctx context.Context, call *agents.Call, t *Tool) (*agents.Result, error) {
	for attempt := 0; ; attempt++ {
		c, err := u.ready(ctx)
		if err != nil {
			return nil, err
		}
		res, err := u.callOnce(ctx, c, call, t)
		if attempt == 0 && errors.Is(err, mcp.ErrSessionMissing) {
			// The upstream no longer knows our session (it restarted): it
			// never ran the call, so send it again on a new session.
			u.logger.Info("upstream lost the session; reconnecting and retrying the call", "tool", t.upstream)
			c.fail(fmt.Errorf("session unknown to the upstream: %w", err))
			continue
		}
		if errors.Is(err, mcp.ErrSessionMissing) {
			err = errs.Wrap(errs.Unavailable, err, "upstream "+u.spec.Name+" keeps losing its session")
		}
		return res, err
	}
}

func (u *Upstream) callOnce(ctx context.Context, c *connection, call *agents.Call, t *Tool) (*agents.Result, error) {
	f := u.track(ctx, c, call)
	defer u.untrack(f)
	if c.lean != nil {
		return u.callLean(ctx, c, f, t)
	}
	params := &mcp.CallToolParams{Meta: mcp.Meta{}, Name: t.upstream, Arguments: call.Args}
	observe.InjectMeta(ctx, params.Meta) // traceparent: the upstream's spans join our trace
	if f.progress {
		params.SetProgressToken(f.token)
	}
	if u.s.ForwardSession && call.Session != "" {
		params.Meta[MetaSession] = call.Session
	}
	res, err := c.sess.CallTool(f.ctx, params)
	u.notes.drain() // let the notifications sent before the result reach the client first
	if ir := f.inputRequired(); ir != nil {
		return nil, ir
	}
	if err != nil {
		return nil, u.callError(ctx, f, c, t, err)
	}
	return resultFrom(res)
}

// callError explains why a tools/call failed.
func (u *Upstream) callError(ctx context.Context, f *inflight, c *connection, t *Tool, err error) error {
	if ctx.Err() != nil {
		u.logger.Debug("upstream call cancelled; notifications/cancelled sent upstream", "tool", t.upstream, "reason", context.Cause(ctx))
		return ctx.Err()
	}
	var jerr *jsonrpc.Error
	if errors.As(err, &jerr) && jerr.Code != codeRejected {
		code := errs.Internal
		if jerr.Code == jsonrpc.CodeInvalidParams {
			code = errs.Invalid
		}
		return errs.E(code, "upstream %s: %s", u.spec.Name, jerr.Message)
	}
	if errors.Is(err, mcp.ErrSessionMissing) {
		return err
	}
	if _, ok := errors.AsType[*errs.Error](err); ok {
		return err // already says what happened
	}
	cause := context.Cause(f.ctx)
	var ce *connectionError
	if !errors.As(cause, &ce) {
		// The connection broke under the call; wait a moment to learn why
		// (a process exit is reported a little after its stdout closes).
		t := time.NewTimer(2 * time.Second)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.fail(err)
		cause = c.failure()
	}
	if c.proc != nil {
		return errs.E(errs.Unavailable, "upstream %s exited during the call (%v); mcptower is restarting it: retry the call", u.spec.Name, cause)
	}
	return errs.E(errs.Unavailable, "lost the connection to upstream %s (%s) during the call: %v; mcptower is reconnecting: retry the call", u.spec.Name, u.s.target(), cause)
}

// inflight is one tools/call in progress upstream. Its ctx is the upstream
// request's: per-call state, cancelled with a cause when the connection
// ends or the client must be asked in a retry.
type inflight struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	conn   *connection
	call   *agents.Call
	token  string // the progress token, and the request id of a lean call
	seq    uint64
	// progress is set when the client asked for progress: only then is the
	// upstream asked for it (a progress token costs it work, and it may
	// send notifications nobody reads).
	progress bool

	mu sync.Mutex
	ir *agents.InputRequired
}

func (u *Upstream) track(ctx context.Context, c *connection, call *agents.Call) *inflight {
	fctx, cancel := context.WithCancelCause(ctx)
	f := &inflight{ctx: fctx, cancel: cancel, conn: c, call: call, progress: call.Client != nil && call.Client.Supports("progress")}
	u.mu.Lock()
	u.nextCall++
	f.seq = u.nextCall
	f.token = "mcptower-" + strconv.FormatUint(f.seq, 10)
	u.calls[f.token] = f
	cause := c.cause
	u.mu.Unlock()
	if cause != nil {
		cancel(&connectionError{cause: cause})
	}
	return f
}

func (u *Upstream) untrack(f *inflight) {
	u.mu.Lock()
	delete(u.calls, f.token)
	u.mu.Unlock()
	f.cancel(context.Canceled)
}

func (f *inflight) inputRequired() *agents.InputRequired {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ir
}

// needInput records that the client answers in a retry, and ends the
// upstream call.
func (f *inflight) needInput(ir *agents.InputRequired) {
	f.mu.Lock()
	if f.ir == nil {
		f.ir = ir
	}
	f.mu.Unlock()
	f.cancel(errInputRequired)
}

var errInputRequired = errors.New("the client answers in a retry of the call")

// headerTransport adds the configured headers and bearer token to every
// request to an HTTP upstream. For the SDK's client (sdk set) it also counts
// the relayed notifications in event streams (order.go) and keeps
// connections alive across cancelled calls (keepalive.go); lean calls
// (lean.go) read their streams themselves and need neither.
type headerTransport struct {
	base     http.RoundTripper
	headers  map[string]string
	tokenEnv string
	sdk      bool
	notes    *notes
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 || t.tokenEnv != "" {
		req = req.Clone(req.Context())
		for k, v := range t.headers {
			req.Header.Set(k, v)
		}
		if t.tokenEnv != "" {
			if tok := os.Getenv(t.tokenEnv); tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
		}
	}
	if !t.sdk {
		return t.base.RoundTrip(req)
	}
	resp, err := keepAlive(t.base, req)
	countSSE(resp, t.notes)
	return resp, err
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// minLevel keeps the SDK's chatter below min out of our logs.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
