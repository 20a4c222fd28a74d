package server

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"mcptower/internal/logging"
	"mcptower/internal/observe"
)

// mcpMethods bounds the method label: anything else counts as "other".
var mcpMethods = map[string]bool{
	"initialize": true, "ping": true, "tools/list": true, "tools/call": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"prompts/list": true, "prompts/get": true, "completion/complete": true,
	"logging/setLevel": true, "server/discover": true, "subscriptions/listen": true,
	"notifications/initialized": true, "notifications/cancelled": true,
	"notifications/progress": true, "notifications/roots/list_changed": true,
}

// instrument adds a span and metrics to every MCP request the server
// receives. The span's parent is a traceparent in the request's _meta, else
// one in the HTTP headers of the request that carried it.
func (s *Server) instrument(m *observe.Metrics) {
	s.mcp.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			label := method
			if !mcpMethods[label] {
				label = "other"
			}
			start := time.Now()
			ctx = traceParent(ctx, req)
			if extra := req.GetExtra(); extra != nil && extra.Header != nil {
				if id := extra.Header.Get("X-Request-Id"); id != "" {
					ctx = logging.WithAttrs(ctx, slog.String("request_id", id))
				}
			}
			ctx, span := observe.StartSpan(ctx, "mcp "+label, attribute.String("mcp.method", method))
			res, err := next(ctx, method, req)
			observe.EndSpan(span, err)
			if m != nil {
				outcome := "ok"
				if err != nil {
					outcome = "error"
				}
				m.MCPRequests.WithLabelValues(label, outcome).Inc()
				m.MCPDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			}
			return res, err
		}
	})
}

func traceParent(ctx context.Context, req mcp.Request) context.Context {
	if p := req.GetParams(); p != nil && !isNilParams(p) {
		if meta := p.GetMeta(); meta != nil {
			if _, ok := meta["traceparent"]; ok {
				return observe.ExtractTraceparent(ctx, meta)
			}
		}
	}
	if extra := req.GetExtra(); extra != nil && extra.Header != nil && extra.Header.Get("Traceparent") != "" {
		return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(extra.Header))
	}
	return ctx
}

// isNilParams reports a typed nil behind the Params interface (a request
// without params).
func isNilParams(p mcp.Params) bool {
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// withMetrics mounts /metrics and times every route of mux.
func withMetrics(m *observe.Metrics, routes map[string]http.Handler, mux *http.ServeMux) {
	for pattern, h := range routes {
		if m != nil {
			h = m.HTTPMiddleware(pattern, h)
		}
		mux.Handle(pattern, nameSpan(pattern, h))
	}
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
}

// nameSpan names the request's server span after the route pattern, known
// only once the mux has routed it (paths with ids would make span names
// unbounded).
func nameSpan(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trace.SpanFromContext(r.Context()).SetName(pattern)
		h.ServeHTTP(w, r)
	})
}
