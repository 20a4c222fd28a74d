package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// protocol2026 is the first protocol version that is stateless by design:
// clients send MCP-Protocol-Version on every request and never initialize.
const protocol2026 = "2026-07-28"

// Handler returns the HTTP face of the server:
//
//	/mcp      Streamable HTTP: 2025-11-25 sessions and 2026-07-28 stateless requests
//	/healthz  200 while the process serves
//	/readyz   200 when dependencies (the store) answer, 503 otherwise
//
// /mcp is protected against DNS rebinding (a loopback listener rejects a
// non-loopback Host) and cross-origin browser requests (403 unless the
// Origin is trusted), and request bodies are limited (413).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.MCPHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}

// MCPHandler returns the Streamable HTTP handler for /mcp. Requests carrying
// the 2026-07-28 protocol (MCP-Protocol-Version header, no session id) are
// served statelessly; everything else by the stateful 2025-11-25 handler.
func (s *Server) MCPHandler() http.Handler {
	getServer := func(*http.Request) *mcp.Server { return s.mcp }
	timeout := s.opts.SessionTimeout
	if timeout < 0 {
		timeout = 0
	}
	stateful := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		SessionTimeout:      timeout,
		JSONResponse:        s.opts.JSONResponse,
		// Resumability (Last-Event-ID) for 2025-11-25 sessions.
		EventStore: mcp.NewMemoryEventStore(nil),
		MaxRequestBodyBytes: s.opts.MaxBodyBytes,
		Logger:              sdkLogger(s.logger),
	})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		MaxRequestBodyBytes:          s.opts.MaxBodyBytes,
		Logger:                       sdkLogger(s.logger),
		PropagateRequestCancellation: true,
	})
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= protocol2026 {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
	cop := http.NewCrossOriginProtection()
	for _, o := range s.opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			s.logger.Warn("ignoring invalid trusted origin", "origin", o, "error", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeRPCError(w, http.StatusForbidden, -32600, fmt.Sprintf("cross-origin request from %q is not allowed; add the origin to server.trusted_origins", r.Header.Get("Origin")))
	}))
	return s.countPOSTs(rpcErrorBodies(cop.Handler(route)))
}

// countPOSTs counts requests in flight for Drain: every POST but a 2026
// subscriptions/listen stream, which lives until the client goes away.
// Standalone GET streams are not counted either; sessions close them.
func (s *Server) countPOSTs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Mcp-Method") == "subscriptions/listen" {
			h.ServeHTTP(w, r)
			return
		}
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.ReadyCheck != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.opts.ReadyCheck(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRPCError(w http.ResponseWriter, status int, code int64, msg string) {
	writeJSON(w, status, map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": code, "message": msg},
	})
}
