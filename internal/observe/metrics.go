// Package observe holds mcptower's observability: Prometheus metrics,
// OpenTelemetry traces, and the decorators and middleware that produce them.
// It is the one package that imports client_golang and the OTel SDK.
package observe

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mcptower/agents"
)

// Metrics are mcptower's Prometheus metrics, in their own registry. Labels
// are bounded: agent names (not versions or sessions), MCP method names,
// HTTP route patterns, store operations and outcome codes.
type Metrics struct {
	Registry *prometheus.Registry

	Invocations    *prometheus.CounterVec   // agent, outcome
	InvokeDuration *prometheus.HistogramVec // agent
	Tokens         *prometheus.CounterVec   // agent, direction
	Cost           *prometheus.CounterVec   // agent
	MCPRequests    *prometheus.CounterVec   // method, outcome
	MCPDuration    *prometheus.HistogramVec // method
	HTTPRequests   *prometheus.CounterVec   // route, code
	HTTPDuration   *prometheus.HistogramVec // route
	StoreDuration  *prometheus.HistogramVec // op
	StoreErrors    *prometheus.CounterVec   // op, code
}

// Metric names, for dashboards (see docs/OBSERVABILITY.md).
const (
	MetricInvocations    = "mcptower_agent_invocations_total"
	MetricInvokeDuration = "mcptower_agent_invocation_duration_seconds"
	MetricTokens         = "mcptower_agent_tokens_total"
	MetricCost           = "mcptower_agent_cost_usd_total"
	MetricMCPRequests    = "mcptower_mcp_requests_total"
	MetricMCPDuration    = "mcptower_mcp_request_duration_seconds"
	MetricHTTPRequests   = "mcptower_http_requests_total"
	MetricHTTPDuration   = "mcptower_http_request_duration_seconds"
	MetricStoreDuration  = "mcptower_store_operation_duration_seconds"
	MetricStoreErrors    = "mcptower_store_errors_total"
	MetricSessions       = "mcptower_mcp_sessions_active"
	MetricUpstreamUp     = "mcptower_upstream_up"
)

// latencyBuckets span a cached tool call (100 µs) to a slow LLM (2 min).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// NewMetrics creates the metrics in a fresh registry, with Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricInvocations,
			Help: "Agent invocations by agent and outcome (ok, tool_error, or the error code)."}, []string{"agent", "outcome"}),
		InvokeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricInvokeDuration,
			Help: "Agent invocation latency, through the whole pipeline.", Buckets: latencyBuckets}, []string{"agent"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTokens,
			Help: "Model tokens used by agent and direction (input, output)."}, []string{"agent", "direction"}),
		Cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricCost,
			Help: "Model cost in US dollars by agent, from the configured price table."}, []string{"agent"}),
		MCPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricMCPRequests,
			Help: "MCP requests by method and outcome (ok or error)."}, []string{"method", "outcome"}),
		MCPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricMCPDuration,
			Help: "MCP request latency by method.", Buckets: latencyBuckets}, []string{"method"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricHTTPRequests,
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricHTTPDuration,
			Help: "HTTP request latency by route pattern (SSE streams included until they end).", Buckets: latencyBuckets}, []string{"route"}),
		StoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricStoreDuration,
			Help: "Context store operation latency by operation.", Buckets: latencyBuckets}, []string{"op"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricStoreErrors,
			Help: "Context store operation errors by operation and error code."}, []string{"op", "code"}),
	}
	m.Registry.MustRegister(m.Invocations, m.InvokeDuration, m.Tokens, m.Cost, m.MCPRequests, m.MCPDuration,
		m.HTTPRequests, m.HTTPDuration, m.StoreDuration, m.StoreErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format (/metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// WatchSessions exports the number of connected MCP sessions, read at
// scrape time.
func (m *Metrics) WatchSessions(count func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricSessions,
		Help: "MCP sessions currently connected (2025-11-25 sessions and stdio)."}, func() float64 { return float64(count()) }))
}

// WatchUpstreams exports, per agent that can report its health (upstream
// MCP servers and endpoints), 1 if healthy and 0 if not, checked at scrape
// time with a short timeout.
func (m *Metrics) WatchUpstreams(reg *agents.Registry) {
	m.Registry.MustRegister(&upstreamCollector{reg: reg, desc: prometheus.NewDesc(MetricUpstreamUp,
		"1 if the agent's upstream answers its health check, 0 if not.", []string{"agent"}, nil)})
}

type upstreamCollector struct {
	reg  *agents.Registry
	desc *prometheus.Desc
}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.reg.Latest() {
		hc, ok := a.(agents.HealthChecker)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		up := 1.0
		if hc.CheckHealth(ctx) != nil {
			up = 0
		}
		cancel()
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, up, a.Spec().Name)
	}
}

// agentLabel bounds the agent label: the name without the version.
func agentLabel(ref string) string {
	name, _ := agents.SplitRef(ref)
	if name == "" || agents.ValidName(name) != nil {
		return "(invalid)"
	}
	return name
}

// HTTPMiddleware counts and times requests by route pattern (the mux's
// pattern, so path parameters never become labels).
func (m *Metrics) HTTPMiddleware(route string, h http.Handler) http.Handler {
	hist := m.HTTPDuration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		hist.Observe(time.Since(start).Seconds())
		m.HTTPRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(p)
}

// Flush keeps SSE streaming through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
