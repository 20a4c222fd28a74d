// Command gosdk-baseline is a plain go-sdk MCP server with one typed echo
// tool, served over Streamable HTTP with default options. It is the
// comparison point for mcptower's throughput in docs/BENCHMARKS.md:
//
//	go run ./examples/gosdk-baseline -addr 127.0.0.1:8090
//	mcptower bench --url http://127.0.0.1:8090/mcp --tool echo --args '{"text":"hi"}' -c 16 -d 10s
//
// It deliberately does nothing to go faster: no JSONResponse, no stateless
// mode, no GC tuning, no session timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// EchoIn is the echo tool's input.
type EchoIn struct {
	Text string `json:"text" jsonschema:"the text to echo"`
}

// EchoOut is the echo tool's output.
type EchoOut struct {
	Text string `json:"text" jsonschema:"the echoed text"`
}

// echo returns its input.
func echo(_ context.Context, _ *mcp.CallToolRequest, in EchoIn) (*mcp.CallToolResult, EchoOut, error) {
	return nil, EchoOut(in), nil
}

// newHandler returns the MCP endpoint: one server with one tool, behind
// go-sdk's Streamable HTTP handler with default (nil) options.
func newHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "gosdk-baseline", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echo the text back."}, echo)
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first signal, a second one kills the process

	ln, err := net.Listen("tcp", *addr)
	if err == nil {
		err = serve(ctx, ln, logger)
	}
	if err != nil {
		logger.Error("gosdk-baseline failed", "err", err)
		os.Exit(1)
	}
}

// serve serves the MCP endpoint on ln until ctx is done, then shuts down
// gracefully: it stops accepting and waits up to five seconds for requests in
// flight.
func serve(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	srv := &http.Server{Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving", "url", "http://"+ln.Addr().String()+"/mcp")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Open SSE streams of idle sessions keep Shutdown waiting until the
	// deadline; Close then ends them.
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("graceful shutdown incomplete", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
