// Package bench load-tests the tools/call method of an MCP server over
// Streamable HTTP.
//
// It speaks JSON-RPC over net/http directly rather than through an MCP SDK,
// so that what it measures is the server: the client side is a handful of
// small allocations per call on top of net/http's own. It supports the
// 2025-11-25 protocol (and older legacy versions), where every worker
// initializes its own session, and the stateless 2026-07-28 protocol, where
// every request carries its protocol version and no session exists.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Protocol versions that select how workers talk to the server.
const (
	// ProtocolLegacy is the default protocol: each worker runs the initialize
	// handshake, uses the negotiated version and its own Mcp-Session-Id, and
	// deletes its session at the end.
	ProtocolLegacy = "2025-11-25"
	// ProtocolStateless is the stateless protocol (SEP-2575): no initialize,
	// no session; every request carries the protocol version in the
	// MCP-Protocol-Version header and in params._meta.
	ProtocolStateless = "2026-07-28"
)

// Defaults applied to zero fields of [Options].
const (
	// DefaultDuration bounds a run when neither Duration nor Requests is set.
	DefaultDuration = 10 * time.Second
	// DefaultTimeout bounds each HTTP exchange when Timeout is zero.
	DefaultTimeout = 30 * time.Second
)

// clientName and clientVersion identify the load generator to the server, in
// initialize and in the 2026 per-request _meta.
const (
	clientName    = "mcptower-bench"
	clientVersion = "0.1.0"
)

// Options configures a load test. The zero value of every field but URL and
// Tool has a documented default.
type Options struct {
	// URL is the Streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp.
	URL string
	// Tool is the name of the tool to call.
	Tool string
	// Args are the tool arguments, a JSON object. Empty means {}.
	Args json.RawMessage
	// Concurrency is the number of workers, each with its own connection
	// and, for legacy protocols, its own session. Zero means 1.
	Concurrency int
	// Duration bounds the measured phase. Zero means no time bound when
	// Requests is set, and DefaultDuration otherwise. Calls in flight when
	// it elapses are completed and counted.
	Duration time.Duration
	// Requests, when positive, caps the number of calls across all workers.
	Requests int
	// Protocol is the MCP protocol version to speak. Empty means
	// ProtocolLegacy. Versions before ProtocolStateless run the initialize
	// handshake per worker; ProtocolStateless and later are sent stateless.
	Protocol string
	// Headers are added to every request (e.g. Authorization); they cannot
	// replace the headers the protocol requires. For stateless tools whose
	// input schema binds arguments to headers (x-mcp-header), the matching
	// Mcp-Param-* headers must be given here: the client does not read tool
	// schemas.
	Headers http.Header
	// Timeout bounds each HTTP exchange, from sending the request to reading
	// the end of the response. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Report summarizes a run. Latencies cover every completed call, failed or
// not, measured from sending the request to reading the end of its response.
type Report struct {
	// Requests is the number of completed tools/call exchanges, including
	// failed ones. Calls cut short by cancelling the run are not counted.
	Requests int
	// Errors is the number of failed calls: non-2xx status, JSON-RPC error,
	// a result with isError true, a malformed response, or a timeout. Failed
	// session handshakes are counted here too.
	Errors int
	// Duration is the wall time of the measured phase, from the moment all
	// workers were ready to the end of the last call.
	Duration time.Duration
	// RPS is Requests divided by Duration in seconds.
	RPS float64
	// P50, P95, P99 and Max are latency percentiles (nearest rank).
	P50, P95, P99, Max time.Duration
	// FirstError describes the earliest failure, if any.
	FirstError string
}

// String returns a human-readable summary of the report in one block.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests  %d in %s (%.1f req/s), %d errors\n",
		r.Requests, r.Duration.Round(time.Millisecond), r.RPS, r.Errors)
	fmt.Fprintf(&b, "latency   p50 %s  p95 %s  p99 %s  max %s",
		roundLatency(r.P50), roundLatency(r.P95), roundLatency(r.P99), roundLatency(r.Max))
	if r.FirstError != "" {
		fmt.Fprintf(&b, "\nfirst error: %s", r.FirstError)
	}
	return b.String()
}

// roundLatency keeps three significant digits or so, enough to read.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// Run calls opts.Tool over and over from opts.Concurrency workers until
// opts.Duration elapses, opts.Requests calls have been made, or ctx is done.
//
// Run always returns a non-nil Report. It returns an error if the options are
// invalid, if a session could not be set up, if any call failed (the report
// then says how many and what the first failure was), or if ctx was done
// before the run completed (the error then wraps context.Cause(ctx)).
func Run(ctx context.Context, opts Options) (*Report, error) {
	r, err := newRunner(opts)
	if err != nil {
		return &Report{}, err
	}
	defer r.transport.CloseIdleConnections()

	workers := make([]*worker, r.concurrency)
	for i := range workers {
		workers[i] = newWorker(r, r.latencyCap)
	}

	// Phase 1: every worker sets up its session, then waits for the start.
	// Setup is not part of the measurement.
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var aborted atomic.Bool
	var setupFailures atomic.Int64
	for _, w := range workers {
		ready.Add(1)
		done.Go(func() {
			// A setup cut short by ctx is an interruption, not a failure.
			if err := w.setup(ctx); err != nil && ctx.Err() == nil {
				w.recordError(err)
				setupFailures.Add(1)
			}
			ready.Done()
			<-start
			if !aborted.Load() {
				w.loop(ctx)
			}
			w.teardown(ctx)
			w.stopTimer()
		})
	}
	ready.Wait()

	// Phase 2: measure. Both the duration and ctx stop workers between
	// calls; ctx also interrupts calls in flight.
	if setupFailures.Load() > 0 || ctx.Err() != nil {
		aborted.Store(true)
	}
	began := time.Now()
	stopAfterCtx := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	defer stopAfterCtx()
	if r.duration > 0 {
		t := time.AfterFunc(r.duration, func() { r.stop.Store(true) })
		defer t.Stop()
	}
	close(start)
	done.Wait()

	rep := summarize(workers, began)
	var errs []error
	if n := setupFailures.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("set up %d of %d sessions failed; first: %s", n, len(workers), rep.FirstError))
	} else if rep.Errors > 0 {
		errs = append(errs, fmt.Errorf("%d of %d calls failed; first: %s", rep.Errors, rep.Requests, rep.FirstError))
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("bench interrupted: %w", context.Cause(ctx)))
	}
	return rep, errors.Join(errs...)
}

// summarize merges the workers' counters and latencies into a Report.
func summarize(workers []*worker, began time.Time) *Report {
	rep := &Report{}
	var lat []time.Duration
	var end time.Time
	var firstAt time.Time
	n := 0
	for _, w := range workers {
		n += len(w.latencies)
	}
	lat = make([]time.Duration, 0, n)
	for _, w := range workers {
		lat = append(lat, w.latencies...)
		rep.Errors += w.errors
		if w.end.After(end) {
			end = w.end
		}
		if w.firstErr != "" && (firstAt.IsZero() || w.firstErrAt.Before(firstAt)) {
			firstAt, rep.FirstError = w.firstErrAt, w.firstErr
		}
	}
	rep.Requests = len(lat)
	if end.After(began) {
		rep.Duration = end.Sub(began)
	}
	if rep.Duration > 0 {
		rep.RPS = float64(rep.Requests) / rep.Duration.Seconds()
	}
	slices.Sort(lat)
	rep.P50 = percentile(lat, 50)
	rep.P95 = percentile(lat, 95)
	rep.P99 = percentile(lat, 99)
	rep.Max = percentile(lat, 100)
	return rep
}

// percentile returns the nearest-rank p-th percentile of sorted, or 0 if it
// is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest value with at least p% of values <= it.
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// runner is the state shared by all workers of a run. Everything but issued
// and stop is read-only once the run starts.
type runner struct {
	url         string
	tool        string
	protocol    string
	stateless   bool
	headers     http.Header
	timeout     time.Duration
	duration    time.Duration
	limit       int64 // 0: no cap
	concurrency int
	latencyCap  int
	transport   *http.Transport

	// callPrefix and callSuffix surround the request id in a tools/call
	// body, so that a call costs one append of the id.
	callPrefix, callSuffix []byte

	issued atomic.Int64 // calls started, for the Requests cap
	stop   atomic.Bool  // set when the duration elapses or ctx is done
}

// newRunner validates opts and prepares what the workers share.
func newRunner(opts Options) (*runner, error) {
	if opts.URL == "" {
		return nil, errors.New("bench: URL is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("bench: parse URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bench: URL %q: scheme must be http or https", opts.URL)
	}
	if opts.Tool == "" {
		return nil, errors.New("bench: Tool is required")
	}
	if opts.Concurrency < 0 || opts.Requests < 0 || opts.Duration < 0 || opts.Timeout < 0 {
		return nil, errors.New("bench: Concurrency, Requests, Duration and Timeout must not be negative")
	}
	args := bytes.TrimSpace(opts.Args)
	if len(args) == 0 {
		args = []byte("{}")
	}
	if !json.Valid(args) || args[0] != '{' {
		return nil, fmt.Errorf("bench: Args must be a JSON object, got %.100q", args)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, args); err != nil {
		return nil, fmt.Errorf("bench: Args: %w", err)
	}

	r := &runner{
		url:         opts.URL,
		tool:        opts.Tool,
		protocol:    opts.Protocol,
		headers:     opts.Headers,
		timeout:     opts.Timeout,
		duration:    opts.Duration,
		limit:       int64(opts.Requests),
		concurrency: max(opts.Concurrency, 1),
	}
	if r.protocol == "" {
		r.protocol = ProtocolLegacy
	}
	// Protocol versions are dates, so they compare as strings (go-sdk does
	// the same).
	r.stateless = r.protocol >= ProtocolStateless
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.duration == 0 && r.limit == 0 {
		r.duration = DefaultDuration
	}
	r.latencyCap = latencyCap(r.duration, opts.Requests, r.concurrency)

	name, _ := json.Marshal(opts.Tool)
	r.callPrefix = []byte(`{"jsonrpc":"2.0","id":`)
	suffix := []byte(`,"method":"tools/call","params":{"name":`)
	suffix = append(suffix, name...)
	suffix = append(suffix, `,"arguments":`...)
	suffix = append(suffix, compact.Bytes()...)
	if r.stateless {
		meta, _ := json.Marshal(map[string]any{
			"io.modelcontextprotocol/protocolVersion":    r.protocol,
			"io.modelcontextprotocol/clientInfo":         map[string]string{"name": clientName, "version": clientVersion},
			"io.modelcontextprotocol/clientCapabilities": struct{}{},
		})
		suffix = append(suffix, `,"_meta":`...)
		suffix = append(suffix, meta...)
	}
	r.callSuffix = append(suffix, "}}"...)

	// HTTP/1.1 only (ForceAttemptHTTP2 is off with a custom dialer): one
	// connection per worker, as most MCP clients have.
	r.transport = &http.Transport{
		// No proxy: the point is to measure the server.
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: r.concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// MCP responses are small; gzip would cost both sides CPU.
		DisableCompression: true,
	}
	return r, nil
}

// latencyCap estimates how many latencies one worker records, so that the
// hot loop rarely grows its slice. The estimate assumes at most 50k calls/s
// in total and is capped at 256Ki samples (2 MiB) per worker.
func latencyCap(d time.Duration, requests, concurrency int) int {
	const maxCap = 1 << 18
	n := maxCap
	if requests > 0 {
		n = min(n, requests/concurrency+1)
	}
	if d > 0 {
		n = min(n, int(d.Seconds()*50_000)/concurrency+1)
	}
	return n
}
