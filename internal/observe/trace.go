package observe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"mcptower/agents"
)

// TracerName names mcptower's tracer.
const TracerName = "mcptower"

func init() {
	// W3C traceparent/tracestate, honoured on the way in and propagated on
	// the way out, whether or not an exporter is configured.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

// SetupTracing installs an OTLP/HTTP exporter when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
// otherwise tracing stays off (spans are no-ops, propagation still works).
// The returned function flushes and stops the exporter.
func SetupTracing(ctx context.Context, serviceVersion string) (shutdown func(context.Context) error, enabled bool, err error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return func(context.Context) error { return nil }, false, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource(serviceVersion)))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, true, nil
}

func tracer() trace.Tracer { return otel.Tracer(TracerName) }

// Observer records metrics and a span for every agent invocation; it
// implements agents.Observer.
type Observer struct {
	Metrics *Metrics // nil: spans only
}

var _ agents.Observer = (*Observer)(nil)

// StartCall starts the invocation span and returns the function that ends it.
func (o *Observer) StartCall(ctx context.Context, agent, session string) (context.Context, func(agents.Outcome)) {
	span := noopSpan
	if Tracing() {
		ctx, span = tracer().Start(ctx, "invoke "+agentLabel(agent), trace.WithAttributes(
			attribute.String("mcptower.agent", agent), attribute.String("mcptower.session", session)))
	}
	return ctx, func(out agents.Outcome) {
		label := agentLabel(agent)
		if m := o.Metrics; m != nil {
			m.Invocations.WithLabelValues(label, out.Result).Inc()
			m.InvokeDuration.WithLabelValues(label).Observe(out.Duration.Seconds())
			if u := out.Usage; u != nil {
				if u.InputTokens > 0 {
					m.Tokens.WithLabelValues(label, "input").Add(float64(u.InputTokens))
				}
				if u.OutputTokens > 0 {
					m.Tokens.WithLabelValues(label, "output").Add(float64(u.OutputTokens))
				}
				if u.CostUSD > 0 {
					m.Cost.WithLabelValues(label).Add(u.CostUSD)
				}
			}
		}
		span.SetAttributes(attribute.String("mcptower.outcome", out.Result))
		if out.Err != nil {
			span.RecordError(out.Err)
			span.SetStatus(codes.Error, out.Result)
		}
		span.End()
	}
}

// Tracing reports whether spans are recorded: an SDK tracer provider is
// installed (SetupTracing with an exporter, or a test's recorder).
func Tracing() bool {
	_, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	return ok
}

// HTTPHandler wraps the whole HTTP face: a server span per request, parented
// by an incoming traceparent header. When nothing records spans it returns h
// as is: the MCP middleware still reads an incoming traceparent, so
// propagation to upstreams keeps working, and the hot path pays nothing.
func HTTPHandler(h http.Handler) http.Handler {
	if !Tracing() {
		return h
	}
	return otelhttp.NewHandler(h, "mcptower", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method // renamed to the route pattern once routed
	}))
}

// Transport wraps an outgoing transport (LLM providers, HTTP agents,
// upstream MCP servers): a client span per request and traceparent injected
// into its headers. A nil base means http.DefaultTransport.
//
// While nothing records spans, requests skip otelhttp: it would still
// allocate a span and metric attributes per request, and its body wrapper
// hides an in-memory body from net/http, which then writes a POST's headers
// and body in two syscalls instead of one. The context's trace, if any
// (an incoming traceparent), is still propagated.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, traced: otelhttp.NewTransport(base)}
}

type transport struct {
	base, traced http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if Tracing() {
		return t.traced.RoundTrip(req)
	}
	ctx := req.Context()
	if trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0 {
		req = req.Clone(ctx) // a RoundTripper must not modify its request
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return t.base.RoundTrip(req)
}

// HTTPClient returns a client whose requests are traced and carry
// traceparent, with the given overall timeout (0 = none).
func HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(nil), Timeout: timeout}
}

// StartSpan starts an internal span (MCP methods, store operations).
// When nothing records spans it returns ctx and a no-op span without
// allocating: the hot path pays for tracing only when tracing is on.
func StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !Tracing() {
		return ctx, noopSpan
	}
	return tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

var noopSpan = trace.SpanFromContext(context.Background()) // non-recording

// EndSpan ends span, recording err.
func EndSpan(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// ExtractTraceparent returns ctx parented by a W3C traceparent (and
// tracestate) carried in an MCP request's _meta, if any.
func ExtractTraceparent(ctx context.Context, meta map[string]any) context.Context {
	tp, _ := meta["traceparent"].(string)
	if tp == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": tp}
	if ts, _ := meta["tracestate"].(string); ts != "" {
		carrier["tracestate"] = ts
	}
	return otel.GetTextMapPropagator().Extract(ctx, carrier)
}

// InjectMeta writes the W3C traceparent (and tracestate) of ctx's span into
// an MCP request's _meta, so that an upstream MCP server's spans join the
// trace. It does nothing when ctx has no span.
func InjectMeta(ctx context.Context, meta map[string]any) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return // nothing to propagate; skip the propagator's allocations
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := carrier[k]; v != "" {
			meta[k] = v
		}
	}
}
