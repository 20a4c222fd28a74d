package observe

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

type recordingRT struct{ got *http.Request }

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = req
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// TestTransportUntraced checks the transport while nothing records spans:
// requests reach the base transport directly, and a trace in the context
// (an incoming traceparent) is still propagated.
func TestTransportUntraced(t *testing.T) {
	if Tracing() {
		t.Fatal("a tracer provider is installed")
	}
	base := &recordingRT{}
	rt := Transport(base)

	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", http.NoBody)
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if base.got != req {
		t.Error("a request without trace context was not passed through as is")
	}
	if tp := base.got.Header.Get("traceparent"); tp != "" {
		t.Errorf("traceparent %q sent without a trace", tp)
	}

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:1/", http.NoBody)
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	const want = "00-01020300000000000000000000000000-0405060000000000-01"
	if got := base.got.Header.Get("traceparent"); got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
	if req.Header.Get("traceparent") != "" {
		t.Error("the caller's request was modified")
	}
}
