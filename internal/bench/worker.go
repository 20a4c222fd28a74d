package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mcptower/internal/sse"
	"net/http"
	"strconv"
	"time"
)

// teardownTimeout bounds the DELETE that ends a worker's session, which is
// sent even when the run's context is done.
const teardownTimeout = 5 * time.Second

// A worker is one simulated client: one connection, at most one session, one
// call in flight. Only its own goroutine touches it until the run ends.
type worker struct {
	r *runner

	sessionID string // Mcp-Session-Id, if the server assigned one
	version   string // MCP-Protocol-Version to send, once known
	id        int64  // last request id used

	// call is the tools/call request, reused for every call: only Body and
	// ContentLength change, which the RoundTripper contract allows once the
	// previous response body is closed. Its context is cancelled by timer
	// when a call exceeds the timeout; then a new one is made.
	call   *http.Request
	cancel context.CancelFunc
	timer  *time.Timer

	// Response parsing state, reused across calls.
	buf   bytes.Buffer
	sse   *sse.Reader
	dec   valueDecoder
	drain io.LimitedReader
	msg   message
	tool  toolResult
	idBuf []byte

	// Results.
	latencies  []time.Duration
	errors     int
	firstErr   string
	firstErrAt time.Time
	end        time.Time // when the last call finished
}

func newWorker(r *runner, latencyCap int) *worker {
	return &worker{
		r:         r,
		sse:       sse.NewReader(4096, 0),
		latencies: make([]time.Duration, 0, latencyCap),
	}
}

// setup runs the initialize handshake for legacy protocols and prepares the
// tools/call request.
func (w *worker) setup(ctx context.Context) error {
	if w.r.stateless {
		w.version = w.r.protocol
	} else {
		if err := w.initialize(ctx); err != nil {
			return fmt.Errorf("initialize: %w", err)
		}
		if err := w.notifyInitialized(ctx); err != nil {
			return fmt.Errorf("notifications/initialized: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.r.url, nil)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	req.Header = w.header()
	if w.r.stateless {
		// go-sdk rejects 2026 requests whose standard headers are missing
		// or do not match the body. The name is sent as is, like go-sdk's
		// client does (its server compares it with the body undecoded).
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", w.r.tool)
	}
	w.call = req
	w.renew(ctx)
	return nil
}

// header returns the headers for a POST from this worker.
func (w *worker) header() http.Header {
	h := make(http.Header, len(w.r.headers)+6)
	for k, v := range w.r.headers {
		h[k] = append([]string(nil), v...)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", clientName+"/"+clientVersion)
	}
	if w.version != "" {
		h.Set("Mcp-Protocol-Version", w.version)
	}
	if w.sessionID != "" {
		h.Set("Mcp-Session-Id", w.sessionID)
	}
	return h
}

// initialize sends the initialize request and records the session id and
// the negotiated protocol version.
func (w *worker) initialize(ctx context.Context) error {
	type implementation struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      0,
		"method":  "initialize",
		"params": map[string]any{
			"protocolVersion": w.r.protocol,
			"capabilities":    struct{}{},
			"clientInfo":      implementation{clientName, clientVersion},
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.r.timeout)
	defer cancel()
	resp, err := w.post(ctx, body, w.header())
	if err != nil {
		return err
	}
	defer closeBody(resp)
	w.sessionID = resp.Header.Get("Mcp-Session-Id")
	if err := w.readResponse(resp, 0); err != nil {
		return err
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(w.msg.Result, &res); err != nil {
		return fmt.Errorf("decode result: %w", err)
	}
	if res.ProtocolVersion == "" {
		return errors.New("result has no protocolVersion")
	}
	w.version = res.ProtocolVersion
	return nil
}

// notifyInitialized completes the handshake.
func (w *worker) notifyInitialized(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.r.timeout)
	defer cancel()
	body := []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp, err := w.post(ctx, body, w.header())
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if !is2xx(resp.StatusCode) {
		return statusError(resp)
	}
	return nil
}

// teardown deletes the worker's session, if it has one. It runs even when
// ctx is done, so that an interrupted run does not leave sessions behind.
// Failures are ignored: the measurement is over, and servers may answer 405
// when they do not allow clients to end sessions.
func (w *worker) teardown(ctx context.Context) {
	if w.sessionID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.r.url, nil)
	if err != nil {
		return
	}
	req.Header = w.header()
	req.Header.Del("Content-Type")
	resp, err := w.r.transport.RoundTrip(req)
	if err != nil {
		return
	}
	closeBody(resp)
}

// post sends body to the server outside the hot loop.
func (w *worker) post(ctx context.Context, body []byte, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.r.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	return w.r.transport.RoundTrip(req)
}

// renew gives the tools/call request a fresh cancellable context and a timer
// that cancels it, after the previous one fired.
func (w *worker) renew(ctx context.Context) {
	w.stopTimer()
	callCtx, cancel := context.WithCancel(ctx)
	w.call = w.call.WithContext(callCtx)
	w.cancel = cancel
	// Created stopped; callTool arms it for each call.
	w.timer = time.AfterFunc(time.Duration(math.MaxInt64), cancel)
	w.timer.Stop()
}

// stopTimer releases the call timer and context.
func (w *worker) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.cancel != nil {
		w.cancel()
	}
}

// loop calls the tool until the run stops, recording latencies and errors.
func (w *worker) loop(ctx context.Context) {
	defer func() { w.end = time.Now() }()
	for !w.r.stop.Load() {
		if w.r.limit > 0 && w.r.issued.Add(1) > w.r.limit {
			return
		}
		began := time.Now()
		err := w.callTool(ctx)
		if err != nil && ctx.Err() != nil {
			return // interrupted by the caller: not the server's failure
		}
		w.latencies = append(w.latencies, time.Since(began))
		if err != nil {
			w.recordError(err)
		}
	}
}

// callTool makes one tools/call and reports whether it failed.
func (w *worker) callTool(ctx context.Context) error {
	w.id++
	// The body is allocated per call: the transport may still read it after
	// the response arrives, and a *bytes.Reader (unlike a reusable custom
	// reader) lets it write headers and body in one packet.
	r := w.r
	body := make([]byte, 0, len(r.callPrefix)+20+len(r.callSuffix))
	body = append(body, r.callPrefix...)
	body = strconv.AppendInt(body, w.id, 10)
	body = append(body, r.callSuffix...)
	w.call.Body = io.NopCloser(bytes.NewReader(body))
	w.call.ContentLength = int64(len(body))

	w.timer.Reset(r.timeout)
	err := w.exchangeCall()
	if !w.timer.Stop() {
		// The timer fired: this call's context is cancelled.
		w.renew(ctx)
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", r.timeout, err)
		}
	}
	return err
}

// exchangeCall sends the prepared tools/call and checks its result.
func (w *worker) exchangeCall() error {
	resp, err := w.r.transport.RoundTrip(w.call)
	if err != nil {
		return err
	}
	defer drainAndClose(resp, &w.drain)
	if err := w.readResponse(resp, w.id); err != nil {
		return err
	}
	w.tool = toolResult{}
	if err := w.dec.decode(w.msg.Result, &w.tool); err != nil {
		return fmt.Errorf("decode tools/call result: %w", err)
	}
	if w.tool.IsError {
		return toolError(w.msg.Result)
	}
	return nil
}

// recordError counts a failure and remembers the first one.
func (w *worker) recordError(err error) {
	w.errors++
	if w.firstErr == "" {
		w.firstErr = err.Error()
		w.firstErrAt = time.Now()
	}
}
