package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"mcptower/internal/logging"
	"mcptower/internal/observe"
)

// protocol2026 is the first protocol version that is stateless by design:
// clients send MCP-Protocol-Version on every request and never initialize.
const protocol2026 = "2026-07-28"

// Handler returns the HTTP face of the server:
//
//	/mcp      Streamable HTTP: 2025-11-25 sessions and 2026-07-28 stateless requests
//	/healthz  200 while the process serves
//	/readyz   200 when dependencies (the store) answer, 503 otherwise
//	/v1/...   the REST API (rest.go; GET /v1/openapi.json describes it)
//	/invoke   the seed's REST invoke
//
// /mcp and the REST API are protected against DNS rebinding (a loopback
// listener rejects a non-loopback Host) and cross-origin browser requests
// (403 unless the Origin is trusted), and request bodies are limited (413).
// Without a Registrar (see App.Handler), POST and DELETE /v1/agents answer
// 403.
func (s *Server) Handler() http.Handler { return s.handler(nil) }

// handler is Handler with reg backing runtime registration.
func (s *Server) handler(reg Registrar) http.Handler {
	mux := http.NewServeMux()
	withMetrics(s.opts.Metrics, s.allRoutes(reg), mux)
	return observe.HTTPHandler(s.requestIDs(mux))
}

// routes are the HTTP routes by mux pattern.
func (s *Server) routes() map[string]http.Handler {
	return map[string]http.Handler{
		"/mcp": s.MCPHandler(),
		"GET /healthz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}),
		"GET /readyz": http.HandlerFunc(s.readyz),
	}
}

// requestIDs gives every request an id (the client's X-Request-Id, if
// sane, else a new one), echoed in the response and attached to every log
// line written while serving it.
func (s *Server) requestIDs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 128 {
			id = s.newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r.Header.Set("X-Request-Id", id) // MCP handlers see it in RequestExtra.Header
		// The MCP handler of a session does not run in this request's
		// context; hand it the request's span (started by observe.HTTPHandler)
		// as a traceparent header it reads back in the MCP middleware.
		if trace.SpanContextFromContext(r.Context()).IsValid() {
			otel.GetTextMapPropagator().Inject(r.Context(), propagation.HeaderCarrier(r.Header))
		}
		h.ServeHTTP(w, r.WithContext(logging.WithAttrs(r.Context(), slog.String("request_id", id))))
	})
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
		SessionTimeout: timeout,
		JSONResponse:   s.opts.JSONResponse,
		// Resumability (Last-Event-ID) for 2025-11-25 sessions.
		EventStore:          newEventStore(8<<20, 64), // bounded; see eventstore.go
		MaxRequestBodyBytes: s.opts.MaxBodyBytes,
		Logger:              sdkLogger(s.logger),
	})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		MaxRequestBodyBytes:          s.opts.MaxBodyBytes,
		Logger:                       sdkLogger(s.logger),
		PropagateRequestCancellation: true,
	})
	route := coalesceFlushes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= protocol2026 {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
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

// newRequestID returns a process-unique id: a random prefix chosen at
// start and a counter (no crypto/rand read per request).
func (s *Server) newRequestID() string {
	n := s.requests.Add(1)
	b := make([]byte, 0, len(s.idPrefix)+17)
	b = append(b, s.idPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 16)
	return string(b)
}
