package mcpkind

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
)

// BenchmarkCall compares one tools/call through an Upstream's Tool, with
// lean calls (the default) and through the SDK's client (lean_calls:
// false), with the same call made by a bare go-sdk client session, against
// one in-process go-sdk server over Streamable HTTP. The server's share of
// each figure is the same.
//
//	go test ./agents/mcpkind -run x -bench Call -benchmem
func BenchmarkCall(b *testing.B) {
	server := testServer()
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer srv.Close()
	defer func() {
		for ss := range server.Sessions() {
			ss.Close()
		}
	}()
	args := json.RawMessage(`{"text":"hi"}`)

	tool := func(b *testing.B, lean bool) {
		raw, _ := json.Marshal(map[string]any{"url": srv.URL, "ping_interval": 0, "lean_calls": lean})
		ctx := agents.ContextWithLogger(context.Background(), slog.New(slog.DiscardHandler))
		built, err := agents.Build(ctx, &agents.Definition{Name: "up", Kind: Kind, Options: raw})
		if err != nil {
			b.Fatal(err)
		}
		u := built[0].(*Upstream)
		defer u.Close()
		if err := u.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		var echo *Tool
		for _, t := range u.Tools() {
			if t.upstream == "echo" {
				echo = t
			}
		}
		call := &agents.Call{Args: args, Client: agents.NoClient{}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := echo.Invoke(context.Background(), call); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("upstream-tool", func(b *testing.B) { tool(b, true) })
	b.Run("upstream-tool-sdk", func(b *testing.B) { tool(b, false) })
	b.Run("gosdk-client", func(b *testing.B) {
		c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL}, &mcp.ClientSessionOptions{ProtocolVersion: DefaultProtocol})
		if err != nil {
			b.Fatal(err)
		}
		defer cs.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: args}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
