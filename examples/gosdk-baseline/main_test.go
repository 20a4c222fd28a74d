package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mcptower/internal/bench"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBaselineEcho(t *testing.T) {
	ts := httptest.NewServer(newHandler())
	defer ts.Close()
	for _, protocol := range []string{"", "2025-06-18"} {
		t.Run("protocol="+protocol, func(t *testing.T) {
			rep, err := bench.Run(t.Context(), bench.Options{
				URL:         ts.URL + "/mcp",
				Tool:        "echo",
				Args:        []byte(`{"text":"hi"}`),
				Concurrency: 4,
				Requests:    300,
				Protocol:    protocol,
			})
			if err != nil {
				t.Fatalf("bench.Run: %v\n%v", err, rep)
			}
			if rep.Requests != 300 || rep.Errors != 0 {
				t.Errorf("Requests, Errors = %d, %d, want 300, 0", rep.Requests, rep.Errors)
			}
			t.Logf("\n%v", rep)
		})
	}
}

func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	rep, err := bench.Run(t.Context(), bench.Options{
		URL:         "http://" + ln.Addr().String() + "/mcp",
		Tool:        "echo",
		Args:        []byte(`{"text":"hi"}`),
		Concurrency: 2,
		Requests:    50,
	})
	if err != nil {
		t.Fatalf("bench.Run: %v\n%v", err, rep)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v, want nil after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context was cancelled")
	}
}

// TestBaselineRejectsStateless documents that the baseline, with default
// options, is stateful: go-sdk refuses the 2026-07-28 protocol there.
func TestBaselineRejectsStateless(t *testing.T) {
	ts := httptest.NewServer(newHandler())
	defer ts.Close()
	rep, err := bench.Run(t.Context(), bench.Options{
		URL:      ts.URL + "/mcp",
		Tool:     "echo",
		Args:     []byte(`{"text":"hi"}`),
		Requests: 3,
		Protocol: bench.ProtocolStateless,
	})
	if err == nil || rep.Errors != 3 {
		t.Errorf("bench.Run = %d errors, %v; want 3 errors", rep.Errors, err)
	}
}

// BenchmarkBaselineEcho drives the baseline in-process with 16 workers.
// Client and server share the CPUs, as they do in docs/BENCHMARKS.md.
func BenchmarkBaselineEcho(b *testing.B) {
	ts := httptest.NewServer(newHandler())
	defer ts.Close()
	b.ReportAllocs()
	rep, err := bench.Run(b.Context(), bench.Options{
		URL:         ts.URL + "/mcp",
		Tool:        "echo",
		Args:        []byte(`{"text":"hi"}`),
		Concurrency: 16,
		Requests:    b.N,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.RPS, "calls/s")
	b.ReportMetric(float64(rep.P99.Microseconds()), "p99-µs")
}
