package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/config"
	"mcptower/server"
)

// TestGracefulShutdown: a call in flight when shutdown starts finishes and
// its client gets the result; then the server stops accepting.
func TestGracefulShutdown(t *testing.T) {
	cfg := config.Default()
	cfg.Store.URL = "memory:"
	app, err := server.NewApp(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	started := make(chan struct{})
	release := make(chan struct{})
	slow, err := agents.Typed(agents.Spec{Name: "slow_ok"}, func(ctx context.Context, _ *agents.Call, _ struct{}) (convertOut, error) {
		close(started)
		select {
		case <-release:
			return convertOut{Value: 1, Unit: "done"}, nil
		case <-ctx.Done():
			return convertOut{}, ctx.Err()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Registry.Add(slow); err != nil {
		t.Fatal(err)
	}
	ln, err := app.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- app.ServeHTTP(serveCtx, ln) }()

	url := "http://" + ln.Addr().String() + "/mcp"
	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "slow_ok", Arguments: map[string]any{}})
		done <- outcome{res, err}
	}()
	<-started
	stop() // shutdown begins while the call runs
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("ServeHTTP returned before the in-flight call finished: %v", err)
	default:
	}
	close(release)
	o := <-done
	if o.err != nil || o.res.IsError {
		t.Fatalf("in-flight call did not complete cleanly: %v %+v", o.err, o.res)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ServeHTTP did not return after the call finished")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}
