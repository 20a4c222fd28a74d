// Package server exposes the agents of an Engine over MCP. One
// transport-agnostic core (an *mcp.Server kept in sync with the registry)
// serves stdio and Streamable HTTP; the context store is exposed as MCP
// resources with subscriptions.
//
// The MCP SDK is confined to this package (and to agent kinds that speak MCP).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
	"mcptower/internal/observe"
)

// Name is the implementation name announced to clients.
const Name = "mcptower"

// Meta keys mcptower reads from tools/call and writes to results.
const (
	// MetaSession is the context session of a call (result _meta; also
	// accepted in request _meta).
	MetaSession = "mcptower/session_id"
	// MetaVersion selects an agent version in request _meta.
	MetaVersion = "mcptower/version"
	// MetaAgent is the resolved name@version (result _meta).
	MetaAgent = "mcptower/agent"
	// MetaSeq is the context entry that recorded the call (result _meta).
	MetaSeq = "mcptower/seq"
	// MetaErrorCode is the domain error code of a failed call (result _meta).
	MetaErrorCode = "mcptower/error_code"
	// MetaUsage is what the call consumed, when the agent reports it:
	// {"input_tokens", "output_tokens", "cost_usd"} (result _meta).
	MetaUsage = "mcptower/usage"
)

// ArgSession is the tool argument that selects the context session when the
// agent's own input schema does not declare it; it is removed before
// validation.
const ArgSession = "session_id"

// Options configure a Server. A nil *Options uses the documented defaults.
type Options struct {
	// Version is announced to clients; default "dev".
	Version string
	// Instructions are sent to clients at initialization.
	Instructions string
	// Logger logs server activity; nil uses slog.Default().
	Logger *slog.Logger
	// SessionTimeout closes HTTP sessions idle this long; zero means
	// DefaultSessionTimeout, negative means never.
	SessionTimeout time.Duration
	// MaxBodyBytes limits HTTP request bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// TrustedOrigins are extra browser Origins allowed to call /mcp
	// cross-origin. Same-origin and non-browser requests are always allowed.
	TrustedOrigins []string
	// JSONResponse answers POSTs with application/json instead of an SSE
	// stream; notifications and server requests made during a call then go
	// to the session's standalone SSE stream (GET), as the spec allows.
	JSONResponse bool
	// StateKey signs the requestState of multi-round-trip calls (SEP-2322),
	// so clients cannot forge earlier answers. Replicas behind one load
	// balancer must share it. Nil means a random key per process.
	StateKey []byte
	// Complete answers completion/complete requests; nil means no
	// completions capability.
	Complete func(ctx context.Context, req *CompleteRequest) (*CompleteResult, error)
	// Metrics, if set, receives MCP and HTTP metrics and is served at
	// /metrics (the engine's Observer records agent metrics).
	Metrics *observe.Metrics
	// ReadyCheck, if set, backs /readyz (e.g. the store's Ping).
	ReadyCheck func(context.Context) error
}

// Defaults.
const (
	DefaultSessionTimeout       = 30 * time.Minute
	DefaultMaxBodyBytes   int64 = 4 << 20
)

// Server is the MCP face of an Engine.
type Server struct {
	engine *agents.Engine
	opts   Options
	logger *slog.Logger
	mcp    *mcp.Server

	stateKey    []byte
	idPrefix    string        // request ids: prefix + counter
	requests    atomic.Uint64 // request id counter
	unsubscribe func()
	watches     *watches

	// inflight counts tools/call handlers and HTTP POSTs in progress, for
	// Drain. A POST outlives its handler by the time it takes to write the
	// response, so both are counted.
	inflight atomic.Int64

	mu         sync.Mutex
	sessionIDs map[*mcp.ServerSession]string // context sessions of transports without ids (stdio)
	closed     bool
}

// New builds a Server over engine, publishing every agent of its registry as
// a tool and following the registry's changes.
func New(engine *agents.Engine, opts *Options) *Server {
	s := &Server{engine: engine, sessionIDs: map[*mcp.ServerSession]string{}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Version == "" {
		s.opts.Version = "dev"
	}
	if s.opts.SessionTimeout == 0 {
		s.opts.SessionTimeout = DefaultSessionTimeout
	}
	if s.opts.MaxBodyBytes == 0 {
		s.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s.logger = s.opts.Logger
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.stateKey = s.opts.StateKey
	if len(s.stateKey) == 0 {
		s.stateKey = make([]byte, 32)
		_, _ = rand.Read(s.stateKey)
	}
	var p [4]byte
	_, _ = rand.Read(p[:])
	s.idPrefix = hex.EncodeToString(p[:])
	s.watches = newWatches(s)
	var complete func(context.Context, *mcp.CompleteRequest) (*mcp.CompleteResult, error)
	if s.opts.Complete != nil {
		complete = s.complete
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: Name, Title: "mcptower", Version: s.opts.Version}, &mcp.ServerOptions{
		CompletionHandler:  complete,
		Instructions:       s.opts.Instructions,
		Logger:             sdkLogger(s.logger),
		SubscribeHandler:   s.watches.subscribe,
		UnsubscribeHandler: s.watches.unsubscribe,
		Capabilities: &mcp.ServerCapabilities{
			Logging:   &mcp.LoggingCapabilities{},
			Tools:     &mcp.ToolCapabilities{ListChanged: true},
			Resources: &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
		},
	})
	s.instrument(s.opts.Metrics)
	if m := s.opts.Metrics; m != nil {
		m.WatchSessions(s.sessionCount)
		m.WatchUpstreams(engine.Registry)
	}
	s.addResources()
	// Subscribe before listing so no change falls between the two.
	s.unsubscribe = engine.Registry.Subscribe(s.onChange)
	for _, a := range engine.Registry.Latest() {
		s.addTool(a)
	}
	return s
}

// sdkLogger keeps the SDK's per-connection chatter (every stateless request
// "connects") out of info logs.
func sdkLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelWarn})
}

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

func (s *Server) sessionCount() int {
	n := 0
	for range s.mcp.Sessions() {
		n++
	}
	return n
}

// MCP returns the underlying SDK server.
func (s *Server) MCP() *mcp.Server { return s.mcp }

// Close stops following the registry and ends resource watches. Sessions
// end with their transports.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.unsubscribe()
	s.watches.close()
	return nil
}

// Drain waits until no tools/call is in progress, or ctx is done (then it
// returns ctx's error). Callers stop accepting new requests first.
func (s *Server) Drain(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// CloseSessions closes every connected MCP session (ending their SSE
// streams), as the last step of a graceful shutdown.
func (s *Server) CloseSessions() {
	for ss := range s.mcp.Sessions() {
		_ = ss.Close()
	}
}

// Connect serves one MCP session over t (stdio, in-memory, ...) and returns
// it. The session gets its own context session id, which it keeps for its
// lifetime.
func (s *Server) Connect(ctx context.Context, t mcp.Transport) (*mcp.ServerSession, error) {
	ss, err := s.mcp.Connect(ctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("connect MCP session: %w", err)
	}
	if ss.ID() == "" {
		s.mu.Lock()
		s.sessionIDs[ss] = agents.NewSessionID()
		s.mu.Unlock()
		go func() {
			_ = ss.Wait()
			s.mu.Lock()
			delete(s.sessionIDs, ss)
			s.mu.Unlock()
		}()
	}
	return ss, nil
}

// ServeStdio serves one session over r and w (the process's stdin and
// stdout) until the client disconnects or ctx is done.
func (s *Server) ServeStdio(ctx context.Context, r io.ReadCloser, w io.WriteCloser) error {
	ss, err := s.Connect(ctx, &mcp.IOTransport{Reader: r, Writer: w})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- ss.Wait() }()
	select {
	case err := <-done:
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	case <-ctx.Done():
		_ = ss.Close()
		<-done
		return nil
	}
}

// contextSession returns the context session of an MCP session: its id for
// HTTP sessions, the id Connect gave it for stdio, or "" (stateless).
func (s *Server) contextSession(ss *mcp.ServerSession) string {
	if ss == nil {
		return ""
	}
	if id := ss.ID(); id != "" {
		return id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionIDs[ss]
}

// onChange keeps the MCP tool list equal to the registry's newest versions.
// The SDK debounces and sends notifications/tools/list_changed.
func (s *Server) onChange(c agents.Change) {
	name := c.Agent.Spec().Name
	if c.Latest != nil {
		s.addTool(c.Latest)
	} else {
		s.mcp.RemoveTools(name)
	}
	s.watches.catalogChanged()
}

func (s *Server) addTool(a agents.Agent) {
	spec := a.Spec()
	t := &mcp.Tool{
		Name:        spec.Name,
		Title:       spec.Title,
		Description: spec.Description,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Annotations: annotations(spec),
	}
	if spec.Input != nil {
		t.InputSchema = spec.Input.JSON()
	}
	if spec.Output != nil {
		t.OutputSchema = spec.Output.JSON()
	}
	if spec.Version != "" {
		t.Meta = mcp.Meta{MetaVersion: spec.Version}
	}
	s.mcp.AddTool(t, s.toolHandler(spec.Name))
}

func annotations(spec *agents.Spec) *mcp.ToolAnnotations {
	h := spec.Hints
	return &mcp.ToolAnnotations{
		Title:           spec.Title,
		ReadOnlyHint:    h.ReadOnly,
		DestructiveHint: h.Destructive,
		IdempotentHint:  h.Idempotent,
		OpenWorldHint:   h.OpenWorld,
	}
}

// toolHandler adapts one agent name to the engine. Everything but "no such
// agent" is reported as a tool result (isError) the model can read.
func (s *Server) toolHandler(name string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		p := req.Params
		ref := name
		session := ""
		if p.Meta != nil {
			if v, ok := p.Meta[MetaVersion].(string); ok && v != "" {
				ref = name + "@" + v
			}
			if v, ok := p.Meta[MetaSession].(string); ok {
				session = v
			}
		}
		args, argSession, err := s.splitSession(ref, p.Arguments)
		if err != nil {
			return errorResult(err, "", "", 0), nil
		}
		if session == "" {
			session = argSession
		}
		if session == "" {
			session = s.contextSession(req.Session)
		}
		c, err := newClient(req.Session, req.ClientCapabilities(), req.Extra, s.stateKey,
			inputParams{token: p.GetProgressToken(), responses: p.InputResponses, state: p.RequestState})
		if err != nil {
			return nil, err
		}
		resp, err := s.engine.Invoke(ctx, agents.Request{
			Agent:   ref,
			Args:    args,
			Session: session,
			Client:  c,
		})
		if ir, ok := errors.AsType[*agents.InputRequired](err); ok {
			reqs, state, err := c.inputRequests(ir)
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{InputRequests: reqs, RequestState: state}, nil
		}
		if perr := c.capabilityError(err); perr != nil {
			return nil, perr
		}
		if err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
			}
			return errorResult(err, resp.Session, resp.Agent, resp.Seq), nil
		}
		return toolResult(resp), nil
	}
}

// splitSession removes the session_id argument unless the agent declares it.
func (s *Server) splitSession(ref string, args json.RawMessage) (json.RawMessage, string, error) {
	if !strings.Contains(string(args), `"`+ArgSession+`"`) {
		return args, "", nil
	}
	a, err := s.engine.Registry.Resolve(ref)
	if err != nil {
		return args, "", nil // the engine reports it
	}
	if in := a.Spec().Input; in != nil && in.HasProperty(ArgSession) {
		return args, "", nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return args, "", nil // the engine reports malformed arguments
	}
	raw, ok := m[ArgSession]
	if !ok {
		return args, "", nil
	}
	var session string
	if err := json.Unmarshal(raw, &session); err != nil {
		return nil, "", errs.E(errs.Invalid, "invalid arguments: field /%s: must be a string", ArgSession)
	}
	delete(m, ArgSession)
	out, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("re-encode arguments: %w", err)
	}
	return out, session, nil
}

func resultMeta(session, agent string, seq int64) mcp.Meta {
	m := mcp.Meta{}
	if session != "" {
		m[MetaSession] = session
	}
	if agent != "" {
		m[MetaAgent] = agent
	}
	if seq > 0 {
		m[MetaSeq] = seq
	}
	return m
}

func toolResult(resp *agents.Response) *mcp.CallToolResult {
	r := resp.Result
	meta := resultMeta(resp.Session, resp.Agent, resp.Seq)
	if r.Usage != nil {
		meta[MetaUsage] = r.Usage
	}
	out := &mcp.CallToolResult{
		Meta:    meta,
		IsError: r.IsError,
	}
	if len(r.Output) > 0 {
		out.StructuredContent = r.Output
	}
	if len(r.Content) > 0 {
		out.Content = make([]mcp.Content, 0, len(r.Content))
		for i := range r.Content {
			out.Content = append(out.Content, toMCPContent(&r.Content[i]))
		}
	} else if len(r.Output) > 0 {
		out.Content = []mcp.Content{&mcp.TextContent{Text: string(r.Output)}}
	} else {
		out.Content = []mcp.Content{}
	}
	return out
}

func errorResult(err error, session, agent string, seq int64) *mcp.CallToolResult {
	m := resultMeta(session, agent, seq)
	m[MetaErrorCode] = errs.CodeOf(err).String()
	return &mcp.CallToolResult{
		Meta:    m,
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}},
	}
}

func toMCPContent(c *agents.Content) mcp.Content {
	switch c.Type {
	case "image":
		return &mcp.ImageContent{Data: c.Data, MIMEType: c.MIMEType}
	case "audio":
		return &mcp.AudioContent{Data: c.Data, MIMEType: c.MIMEType}
	case "resource_link":
		return &mcp.ResourceLink{URI: c.URI, Name: c.Name, MIMEType: c.MIMEType}
	case "resource":
		rc := &mcp.ResourceContents{URI: c.URI, MIMEType: c.MIMEType, Text: c.Text}
		if c.Data != nil {
			rc.Text, rc.Blob = "", c.Data
		}
		return &mcp.EmbeddedResource{Resource: rc}
	default:
		return &mcp.TextContent{Text: c.Text}
	}
}

func mcpLevel(l slog.Level) mcp.LoggingLevel {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	default:
		return "debug"
	}
}
