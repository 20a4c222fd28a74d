package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"mcptower/agents"
	_ "mcptower/agents/httpkind" // registers kind "http"
	_ "mcptower/agents/llm"      // registers kind "llm"
	_ "mcptower/agents/mcpkind"  // registers kind "mcp"
	_ "mcptower/agents/sampling" // registers kind "sampling"
	"mcptower/contextstore"
	_ "mcptower/contextstore/memory"   // registers memory:
	_ "mcptower/contextstore/postgres" // registers postgres:// and postgresql://
	_ "mcptower/contextstore/redis"    // registers redis:// and rediss://
	"mcptower/contextstore/sqlite"
	"mcptower/internal/config"
	"mcptower/internal/observe"
	"mcptower/tools"
)

// StoreNone as the store URL runs without a context store: nothing is
// recorded and the context tools report that.
const StoreNone = "none"

// DefaultShutdownTimeout is how long a graceful shutdown waits for in-flight
// calls before closing connections.
const DefaultShutdownTimeout = 15 * time.Second

// App is a whole mcptower process: the context store, the registry filled
// from config, the engine and the MCP server over them.
type App struct {
	Logger   *slog.Logger
	Store    contextstore.Store // nil when running without a store
	StoreURL string             // redacted
	Registry *agents.Registry
	Engine   *agents.Engine
	Server   *Server
	Metrics  *observe.Metrics
	// ShutdownTimeout bounds ServeHTTP's graceful shutdown; zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	mu         sync.Mutex
	cfg        *config.Config
	configured map[string]configured // by name@version, agents from config

	// registrations is the file that keeps runtime registrations (REST);
	// "" keeps them in memory only. runtime is written with mu and
	// runtimeMu held, so that readers need only one.
	registrations string
	runtimeMu     sync.RWMutex
	runtime       []*registration
}

type configured struct {
	def   []byte // the definition as JSON, to tell a changed agent from an unchanged one
	agent agents.Agent
}

// NewApp opens the store named by cfg (the default SQLite file when unset),
// registers the built-ins and cfg's agents, and builds the MCP server.
// Version is announced to clients.
func NewApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, version string) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	storeURL := cfg.Store.URL
	if storeURL == "" {
		u, err := sqlite.DefaultURL()
		if err != nil {
			return nil, fmt.Errorf("default store: %w", err)
		}
		storeURL = u
	}
	var store contextstore.Store
	if storeURL != StoreNone {
		var err error
		store, err = contextstore.Open(ctx, storeURL, contextstore.Options{TTL: cfg.Store.TTL, Logger: logger})
		if err != nil {
			return nil, err
		}
	}
	a := &App{
		Logger:     logger,
		StoreURL:   contextstore.Redact(storeURL),
		Registry:   agents.NewRegistry(),
		configured: map[string]configured{},
	}
	callTimeout := cfg.Server.CallTimeout
	if callTimeout <= 0 {
		callTimeout = 365 * 24 * time.Hour // config: zero means no limit
	}
	a.Metrics = observe.NewMetrics()
	if store != nil {
		store = observe.Store(store, a.Metrics)
	}
	a.Store = store
	a.Engine = &agents.Engine{Registry: a.Registry, Store: store, Logger: logger, Timeout: callTimeout,
		Observer: &observe.Observer{Metrics: a.Metrics}}
	var ready func(context.Context) error
	if store != nil {
		ready = store.Ping
	}
	if cfg.Server.Builtins {
		for _, t := range tools.Defaults() {
			if err := a.Registry.Add(t); err != nil {
				a.Close()
				return nil, err
			}
		}
	}
	if err := a.applyAgents(ctx, cfg); err != nil {
		a.Close()
		return nil, err
	}
	a.cfg = cfg
	if path, err := RegistrationsPath(cfg.Path); err != nil {
		logger.Warn("agents registered at run time will not survive a restart", "error", err)
	} else {
		a.registrations = path
	}
	if err := a.loadRegistrations(ctx); err != nil {
		a.Close()
		return nil, err
	}
	sessionTimeout := cfg.Server.SessionTimeout
	if sessionTimeout == 0 {
		sessionTimeout = -1 // config: zero means never
	}
	maxBody := cfg.Server.MaxBodyBytes
	if maxBody == 0 {
		maxBody = -1 // config: zero means no limit
	}
	a.Server = New(a.Engine, &Options{
		Version:        version,
		Logger:         logger,
		SessionTimeout: sessionTimeout,
		MaxBodyBytes:   maxBody,
		TrustedOrigins: cfg.Server.TrustedOrigins,
		ReadyCheck:     ready,
		Metrics:        a.Metrics,
		Instructions:   instructions,
	})
	return a, nil
}

const instructions = `mcptower exposes agents as tools and keeps the context of this conversation. ` +
	`Use agents_search to find the right agent by what it does, context_history to read what was done so far, ` +
	`and context_append to keep notes for later calls.`

// Reload applies a new config's agents: agents no longer configured are
// removed (and closed), new or changed ones are (re)registered, unchanged
// ones are left alone, so connected clients see one list_changed per
// effective change. Server and store settings need a restart; a change to
// them is logged.
func (a *App) Reload(ctx context.Context, cfg *config.Config) error {
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	if old != nil && (old.Server.HTTP != cfg.Server.HTTP || old.Store != cfg.Store) {
		a.Logger.Warn("config reload: server address and store changes take effect after a restart")
	}
	if err := a.applyAgents(ctx, cfg); err != nil {
		return err
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	return nil
}

// applyAgents builds cfg's agents first (so a broken config changes
// nothing), starts the new and changed ones (so one that cannot start, such
// as an unreachable upstream, changes nothing either), then applies the
// difference to the registry. A Dynamic agent (an upstream MCP server) is
// not registered itself: it is attached to the registry and keeps its
// members there.
func (a *App) applyAgents(ctx context.Context, cfg *config.Config) error {
	ctx = agents.ContextWithLogger(ctx, a.Logger)
	next := map[string]configured{}
	var problems []error
	for i := range cfg.Agents {
		def := &cfg.Agents[i].Definition
		raw, _ := json.Marshal(def)
		built, err := agents.Build(ctx, def)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s:%d: %w", cfg.Path, cfg.Agents[i].Line, err))
			continue
		}
		for _, ag := range built {
			next[ag.Spec().Ref()] = configured{def: raw, agent: ag}
		}
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var changed []string
	for ref, c := range next {
		if prev, ok := a.configured[ref]; ok && bytes.Equal(prev.def, c.def) {
			next[ref] = prev // unchanged: keep the running instance
			continue
		}
		changed = append(changed, ref)
	}
	for i, ref := range changed {
		s, ok := next[ref].agent.(agents.Starter)
		if !ok {
			continue
		}
		if err := s.Start(ctx); err != nil {
			for _, r := range changed[:i+1] { // started or not, they hold nothing registered
				closeAgent(next[r].agent, a.Logger)
			}
			return fmt.Errorf("start agent %s: %w", ref, err)
		}
	}
	a.dropShadowedLocked(next) // the config wins over runtime registrations

	for ref, c := range a.configured {
		if _, keep := next[ref]; !keep {
			if _, dynamic := c.agent.(agents.Dynamic); !dynamic {
				name, version := agents.SplitRef(ref)
				a.Registry.Remove(name, version)
			}
			closeAgent(c.agent, a.Logger) // a Dynamic agent removes its members
			a.Logger.Info("agent removed", "agent", ref)
		}
	}
	for _, ref := range changed {
		c := next[ref]
		prev, had := a.configured[ref]
		if d, ok := c.agent.(agents.Dynamic); ok {
			// The previous instance goes first, members and all, so that the
			// new one's members do not collide with them.
			if had {
				if _, dynamic := prev.agent.(agents.Dynamic); !dynamic {
					name, version := agents.SplitRef(ref)
					a.Registry.Remove(name, version)
				}
				closeAgent(prev.agent, a.Logger)
			}
			d.Attach(a.Registry)
			a.Logger.Info("agent set attached", "agent", ref, "kind", c.agent.Spec().Kind, "replaced", had)
			continue
		}
		if err := a.Registry.Put(c.agent); err != nil {
			return fmt.Errorf("register agent %s: %w", ref, err)
		}
		if had {
			closeAgent(prev.agent, a.Logger)
			a.Logger.Info("agent replaced", "agent", ref)
		} else {
			a.Logger.Info("agent added", "agent", ref, "kind", c.agent.Spec().Kind)
		}
	}
	a.configured = next
	return nil
}

func closeAgent(ag agents.Agent, logger *slog.Logger) {
	if c, ok := ag.(io.Closer); ok {
		if err := c.Close(); err != nil {
			logger.Warn("close agent", "agent", ag.Spec().Ref(), "error", err)
		}
	}
}

// Listen binds the HTTP address (port 0 picks a free one).
func (a *App) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// ServeHTTP serves the HTTP handler on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight calls finish within
// ShutdownTimeout, then closes the remaining sessions and connections.
func (a *App) ServeHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Logger.Info("serving MCP over HTTP", "url", "http://"+ln.Addr().String()+"/mcp", "store", a.StoreURL, "agents", len(a.Registry.All()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	timeout := a.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	a.Logger.Info("shutting down: finishing in-flight calls", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(sctx) }()
	if err := a.Server.Drain(sctx); err != nil {
		a.Logger.Warn("shutdown: calls still running at the deadline were cut off", "error", err)
	}
	a.Server.CloseSessions() // ends SSE streams so Shutdown can finish
	if err := <-shutdown; err != nil {
		_ = srv.Close()
	}
	<-errc // Serve returns ErrServerClosed
	return nil
}

// Handler is the Server's HTTP handler with runtime registration (POST and
// DELETE /v1/agents) backed by the App.
func (a *App) Handler() http.Handler { return a.Server.handler(a) }

// Close closes the server, the configured agents, the agents registered at
// run time and the store.
func (a *App) Close() error {
	if a.Server != nil {
		a.Server.Close()
	}
	a.mu.Lock()
	for _, c := range a.configured {
		closeAgent(c.agent, a.Logger)
	}
	a.configured = nil
	a.closeRuntimeLocked()
	a.mu.Unlock()
	if a.Store != nil {
		return a.Store.Close()
	}
	return nil
}
