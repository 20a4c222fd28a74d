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
	"mcptower/contextstore"
	_ "mcptower/contextstore/memory" // registers memory:
	"mcptower/contextstore/sqlite"
	"mcptower/internal/config"
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
	// ShutdownTimeout bounds ServeHTTP's graceful shutdown; zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	mu         sync.Mutex
	cfg        *config.Config
	configured map[string]configured // by name@version, agents from config
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
		store, err = contextstore.Open(ctx, storeURL, contextstore.Options{TTL: cfg.Store.TTL})
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
	a.Store = store
	a.Engine = &agents.Engine{Registry: a.Registry, Store: store, Logger: logger, Timeout: callTimeout}
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
// nothing), then applies the difference to the registry.
func (a *App) applyAgents(ctx context.Context, cfg *config.Config) error {
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
	for ref, c := range a.configured {
		if _, keep := next[ref]; !keep {
			name, version := agents.SplitRef(ref)
			a.Registry.Remove(name, version)
			closeAgent(c.agent, a.Logger)
			a.Logger.Info("agent removed", "agent", ref)
		}
	}
	for ref, c := range next {
		if prev, ok := a.configured[ref]; ok && bytes.Equal(prev.def, c.def) {
			next[ref] = prev // unchanged: keep the running instance
			continue
		}
		if s, ok := c.agent.(agents.Starter); ok {
			if err := s.Start(ctx); err != nil {
				return fmt.Errorf("start agent %s: %w", ref, err)
			}
		}
		if err := a.Registry.Put(c.agent); err != nil {
			return fmt.Errorf("register agent %s: %w", ref, err)
		}
		if prev, ok := a.configured[ref]; ok {
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
		Handler:           a.Server.Handler(),
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

// Close closes the server, the configured agents and the store.
func (a *App) Close() error {
	if a.Server != nil {
		a.Server.Close()
	}
	a.mu.Lock()
	for _, c := range a.configured {
		closeAgent(c.agent, a.Logger)
	}
	a.configured = nil
	a.mu.Unlock()
	if a.Store != nil {
		return a.Store.Close()
	}
	return nil
}
