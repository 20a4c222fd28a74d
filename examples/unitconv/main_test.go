package main

import (
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/contextstore"
	"mcptower/contextstore/memory"
)

func TestUnitConverterOverHTTP(t *testing.T) {
	store := memory.New(contextstore.Options{})
	defer store.Close()
	srv, err := NewServer(store)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "convert_units", Arguments: map[string]any{"value": 100, "from": "c", "to": "f"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := res.StructuredContent.(map[string]any)
	if res.IsError || out["value"] != 212.0 || out["unit"] != "f" {
		t.Fatalf("100 c -> f = %+v %v, want 212 f", out, res.Content)
	}
	// Stateless (2026-07-28) clients have no MCP session: each call gets a
	// new context session unless it names one.
	session, _ := res.Meta["mcptower/session_id"].(string)
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "convert_units", Arguments: map[string]any{"value": 1, "from": "c", "to": "km", "session_id": session}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Fatalf("c -> km should be a tool error, got %+v", res.StructuredContent)
	}
	// Both calls were recorded in the session's context.
	entries, err := store.History(t.Context(), session, contextstore.HistoryQuery{})
	if err != nil || len(entries) != 2 {
		t.Fatalf("history of %s = %d entries, %v; want 2", session, len(entries), err)
	}
}
