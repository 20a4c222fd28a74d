package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"mcptower/internal/config"
	"mcptower/internal/observe"
	"mcptower/server"
)

const serveSynopsis = `Usage: mcptower serve [--stdio | --http ADDR] [--store URL] [--config FILE]

Serves every configured agent as an MCP tool, and the context of each
conversation as MCP resources. Without a config file it exposes the built-in
tools (context_history, context_search, context_append, agents_search) and
keeps context in a SQLite file in the user's data directory.

HTTP serves Streamable HTTP at /mcp (2025-11-25 sessions and 2026-07-28
stateless requests), plus /healthz and /readyz. --stdio serves one client on
stdin/stdout; logs always go to stderr.

The config file is reloaded when it changes and on SIGHUP. SIGINT/SIGTERM
shut down gracefully: in-flight calls finish (up to --shutdown-timeout),
then sessions, agents and the store are closed.`

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveSynopsis, stderr)
	var c common
	c.register(fs)
	stdio := fs.Bool("stdio", false, "serve one MCP client over stdin/stdout instead of HTTP")
	httpAddr := fs.String("http", "", "HTTP listen `address` (default: the config's, else $MCPTOWER_HTTP, else 127.0.0.1:8080; port 0 picks a free port)")
	shutdownTimeout := fs.Duration("shutdown-timeout", server.DefaultShutdownTimeout, "how long a graceful shutdown waits for in-flight calls")
	gcPercent := fs.Int("gc-percent", 400, "Go GC target percentage (GOGC) unless $GOGC is set; the MCP SDK allocates heavily per message, so a higher target trades memory for throughput")
	noReload := fs.Bool("no-reload", false, "do not reload the config file when it changes")
	pprofAddr := fs.String("pprof", "", "serve Go's /debug/pprof profiles on this `address` (keep it on loopback), for profiling under load")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("serve takes no arguments, got %q", rest)
	}
	if os.Getenv("GOGC") == "" && *gcPercent > 0 {
		debug.SetGCPercent(*gcPercent)
	}

	cfg, err := c.load(ctx)
	if err != nil {
		return err
	}
	if v := os.Getenv("MCPTOWER_HTTP"); v != "" {
		cfg.Server.HTTP = v
	}
	if *httpAddr != "" {
		cfg.Server.HTTP = *httpAddr
	}
	logger := c.logger(cfg, stderr)
	shutdownTracing, tracing, err := observe.SetupTracing(ctx, version)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}()
	if tracing {
		logger.Info("tracing to OTLP/HTTP", "endpoint", cmpOr(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
	}
	app, err := server.NewApp(ctx, cfg, logger, version)
	if err != nil {
		return err
	}
	defer app.Close()
	app.ShutdownTimeout = *shutdownTimeout

	if cfg.Path != "" && !*noReload {
		reload := func(why string) {
			next, err := c.load(ctx)
			if err == nil {
				next.Server.HTTP = cfg.Server.HTTP
				err = app.Reload(ctx, next)
			}
			if err != nil {
				logger.Error("config reload failed; keeping the running config", "file", cfg.Path, "trigger", why, "error", err)
				return
			}
			logger.Info("config reloaded", "file", cfg.Path, "trigger", why)
		}
		config.Watch(ctx, cfg.Path, time.Second, func() { reload("file changed") })
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					reload("SIGHUP")
				}
			}
		}()
	}

	if *pprofAddr != "" {
		go servePprof(*pprofAddr, logger)
	}
	if *stdio {
		logger.Info("serving MCP over stdio", "store", app.StoreURL, "agents", len(app.Registry.All()))
		return app.Server.ServeStdio(ctx, readCloser(stdin), writeCloser(stdout))
	}
	ln, err := app.Listen(cfg.Server.HTTP)
	if err != nil {
		return fmt.Errorf("%w (another mcptower running? pick another port with --http)", err)
	}
	return app.ServeHTTP(ctx, ln)
}

func readCloser(r io.Reader) io.ReadCloser {
	if rc, ok := r.(io.ReadCloser); ok {
		return rc
	}
	return io.NopCloser(r)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func writeCloser(w io.Writer) io.WriteCloser {
	if wc, ok := w.(io.WriteCloser); ok {
		return wc
	}
	return nopWriteCloser{w}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// servePprof serves the runtime profiles on their own listener, never on
// the public one.
func servePprof(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("serving pprof", "url", "http://"+addr+"/debug/pprof/")
	if err := http.ListenAndServe(addr, mux); err != nil {
		logger.Error("pprof listener", "error", err)
	}
}
