package mcpkind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/internal/errs"
	"mcptower/internal/observe"
	"mcptower/internal/sse"
)

// Lean calls.
//
// A tools/call through the SDK's client costs the proxy CPU on top of
// serving the call (docs/BENCHMARKS.md, "Proxy overhead"): the SDK decodes
// every message several times with a fresh 32 KiB decoder buffer, decodes
// the request again to find its _meta, and passes each message through
// three goroutines. For an HTTP upstream whose session speaks a 2025
// protocol version, a lean call makes the request itself on the SDK
// session: one POST carrying the session id, whose answer (JSON, or an
// event stream read in place) is decoded once.
// The SDK client still owns the session: initialize, tools/list, ping, the
// standalone stream, and every other request.
//
// What arrives on the call's stream before its response belongs to the
// call, so it is handled in order, before the result is returned:
// progress and log notifications go to the call's client, list_changed
// re-lists the tools, and the upstream's requests (sampling, elicitation,
// ping) are answered with a POST of the response, as the SDK would.
// Cancelling the call sends notifications/cancelled upstream. A stream that
// breaks before the response is resumed with Last-Event-ID when the upstream
// gave event ids.

const (
	protocol2026 = "2026-07-28"
	// maxLeanMessage bounds one message (an event's data or a JSON body),
	// as the SDK's DefaultMaxEventSize does.
	maxLeanMessage = 16 << 20
	// maxLeanDrain bounds what is read after the response to keep the
	// connection for the next call, and drainWait how long that may take.
	maxLeanDrain = 256 << 10
	drainWait    = 250 * time.Millisecond
	// maxPooledReader is the most buffer memory a pooled reader may keep.
	maxPooledReader = 1 << 20
)

// leanResumeDelays are the waits before each attempt to resume a broken
// stream.
var leanResumeDelays = []time.Duration{50 * time.Millisecond, 250 * time.Millisecond}

// leanSession is what lean calls need of an SDK session: nil when the
// session is not eligible.
type leanSession struct {
	id       string // Mcp-Session-Id
	protocol string // negotiated version, sent as MCP-Protocol-Version
}

func (u *Upstream) leanFor(sess *mcp.ClientSession) *leanSession {
	if u.leanC == nil {
		return nil
	}
	ir := sess.InitializeResult()
	if sess.ID() == "" || ir == nil || ir.ProtocolVersion >= protocol2026 {
		return nil
	}
	return &leanSession{id: sess.ID(), protocol: ir.ProtocolVersion}
}

// readers are SSE readers reused across calls.
var readers = sync.Pool{New: func() any { return sse.NewReader(4096, maxLeanMessage) }}

// leanCall is one lean tools/call in progress.
type leanCall struct {
	u  *Upstream
	c  *connection
	f  *inflight
	ls *leanSession
	id []byte // the request id as JSON: the progress token, quoted

	rctx  context.Context   // the call's HTTP requests' (requestContext)
	trace map[string]string // traceparent, tracestate of the call, if any

	// The upstream's requests being answered; they end with ctx.
	ctx     context.Context
	cancel  context.CancelFunc
	serving sync.WaitGroup
	mu      sync.Mutex
	served  map[string]context.CancelFunc // by request id (raw JSON)
}

// callLean makes the call f of tool t on session c with a lean request.
func (u *Upstream) callLean(ctx context.Context, c *connection, f *inflight, t *Tool) (*agents.Result, error) {
	lc := &leanCall{u: u, c: c, f: f, ls: c.lean, id: quote(f.token)}
	lc.ctx, lc.cancel = context.WithCancel(f.ctx)
	var release func()
	lc.rctx, release = requestContext(f.ctx)
	defer func() {
		lc.cancel()
		lc.serving.Wait()
		release()
	}()

	res, err := lc.run(lc.encode(ctx, t))
	// An upstream that answers with JSON sends the call's notifications on
	// the session's standalone stream, which the SDK reads: let those read
	// before the response reach the client first (order.go).
	u.notes.drain()
	if ir := f.inputRequired(); ir != nil {
		lc.cancelled("the client answers in a retry of the call")
		return nil, ir
	}
	if err != nil {
		if f.ctx.Err() != nil && ctx.Err() != nil {
			lc.cancelled(context.Cause(ctx).Error())
		}
		return nil, u.callError(ctx, f, c, t, err)
	}
	return res, nil
}

// requestContext returns the context for the HTTP requests of a call whose
// context is ctx, and the function that releases it. While tracing, that is
// ctx itself: otelhttp starts the request's span under the call's.
// Otherwise it is a shallow context cancelled with ctx: net/http looks up
// several context keys per request, and a missing key walks the whole chain
// of contexts the MCP SDK and the engine have built, growing the stack on
// the way (~6µs per lookup in a profile of the front).
func requestContext(ctx context.Context) (context.Context, func()) {
	if observe.Tracing() {
		return ctx, func() {}
	}
	rctx, cancel := context.WithCancelCause(context.Background())
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	return rctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// encode encodes the tools/call request of lc, and keeps its trace
// context for the request's headers.
func (lc *leanCall) encode(ctx context.Context, t *Tool) []byte {
	u, f := lc.u, lc.f
	args := f.call.Args
	b := make([]byte, 0, 160+len(t.nameJSON)+len(args))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = appendQuoted(b, f.token)
	b = append(b, `,"method":"tools/call","params":{"name":`...)
	b = append(b, t.nameJSON...)
	if len(bytes.TrimSpace(args)) > 0 {
		b = append(b, `,"arguments":`...)
		b = append(b, args...)
	}
	// _meta: the progress token if our client asked for progress, the
	// context session if it is forwarded, the trace context if any.
	n := 0
	field := func(k string) {
		if n == 0 {
			b = append(b, `,"_meta":{`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendJSON(b, k)
		b = append(b, ':')
	}
	if f.progress {
		field("progressToken")
		b = appendQuoted(b, f.token)
	}
	if u.s.ForwardSession && f.call.Session != "" {
		field(MetaSession)
		b = appendJSON(b, f.call.Session)
	}
	meta := map[string]any{}
	observe.InjectMeta(ctx, meta)
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := meta[k].(string); ok {
			field(k)
			b = appendJSON(b, v)
			if lc.trace == nil {
				lc.trace = map[string]string{}
			}
			lc.trace[k] = v
		}
	}
	if n > 0 {
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// run posts the request and reads its answer, resuming a broken stream.
func (lc *leanCall) run(body []byte) (*agents.Result, error) {
	resp, err := lc.post(lc.rctx, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		// The upstream no longer knows the session: it did not run the call.
		return nil, fmt.Errorf("upstream %s answered 404 to session %s: %w", lc.u.spec.Name, lc.ls.id, mcp.ErrSessionMissing)
	}
	if err := statusError(lc.u, resp); err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		defer closeBody(resp)
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxLeanMessage+1))
		if err != nil {
			return nil, fmt.Errorf("read the answer of upstream %s: %w", lc.u.spec.Name, err)
		}
		if len(data) > maxLeanMessage {
			return nil, lc.badAnswer("its answer exceeds %d bytes", maxLeanMessage)
		}
		m, done, err := lc.handle(data)
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, lc.badAnswer("it answered with a JSON message that is not the response to the call: %.200s", data)
		}
		return m.toolResult(lc.u)
	case "text/event-stream":
	default:
		closeBody(resp)
		if resp.StatusCode == http.StatusAccepted {
			return nil, lc.badAnswer("it accepted the call without answering it (HTTP 202)")
		}
		return nil, lc.badAnswer("it answered the call with Content-Type %q", ct)
	}

	r := readers.Get().(*sse.Reader)
	defer func() {
		if r.Retained() <= maxPooledReader { // don't keep a huge event's buffers
			readers.Put(r)
		}
	}()
	var lastID []byte
	for attempt := 0; ; attempt++ {
		m, err := lc.stream(r, resp.Body, &lastID)
		if m != nil {
			return m.toolResult(lc.u)
		}
		if lc.f.ctx.Err() != nil {
			return nil, err
		}
		if lastID == nil || attempt >= len(leanResumeDelays) {
			if err == nil {
				err = lc.badAnswer("it ended the call's event stream without answering")
			}
			return nil, err
		}
		lc.u.logger.Debug("upstream call stream broke; resuming", "error", err, "last_event_id", string(lastID))
		if resp, err = lc.resume(lastID, leanResumeDelays[attempt]); err != nil {
			return nil, err
		}
	}
}

// stream reads events from body until the call's response, which it
// returns; otherwise it returns why the stream ended (nil: it just ended).
// The last event id seen is kept in lastID for resuming.
func (lc *leanCall) stream(r *sse.Reader, body io.ReadCloser, lastID *[]byte) (*wireMessage, error) {
	r.Reset(body)
	defer func() {
		r.Reset(nil)
		_ = body.Close()
	}()
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the event stream of upstream %s: %w", lc.u.spec.Name, err)
		}
		if ev.ID != nil {
			*lastID = append((*lastID)[:0], ev.ID...)
		}
		if len(ev.Data) == 0 || len(ev.Name) > 0 && string(ev.Name) != "message" {
			continue // a priming event, or an event MCP does not use
		}
		m, done, err := lc.handle(ev.Data)
		if err != nil {
			return nil, err
		}
		if done {
			// Read to the end of the stream (the upstream ends it after the
			// response) so the connection carries the next call; an
			// upstream that keeps it open costs its connection, not the
			// call's time.
			cut := time.AfterFunc(drainWait, func() { _ = body.Close() })
			_, _ = r.Discard(maxLeanDrain)
			cut.Stop()
			return m, nil
		}
	}
}

// resume asks for the rest of the stream after lastID.
func (lc *leanCall) resume(lastID []byte, delay time.Duration) (*http.Response, error) {
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-lc.f.ctx.Done():
		t.Stop()
		return nil, lc.f.ctx.Err()
	}
	req, err := http.NewRequestWithContext(lc.rctx, http.MethodGet, lc.u.s.URL, nil)
	if err != nil {
		return nil, err
	}
	lc.setHeaders(req.Header)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", string(lastID))
	resp, err := lc.u.leanC.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resume the call's stream on upstream %s: %w", lc.u.spec.Name, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		closeBody(resp)
		return nil, fmt.Errorf("resume the call's stream on upstream %s: HTTP %s", lc.u.spec.Name, resp.Status)
	}
	return resp, nil
}

// post sends one JSON-RPC message on the session.
func (lc *leanCall) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lc.u.s.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	lc.setHeaders(req.Header)
	req.Header["Content-Type"] = jsonType
	req.Header["Accept"] = acceptBoth
	resp, err := lc.u.leanC.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post to upstream %s: %w", lc.u.spec.Name, err)
	}
	return resp, nil
}

var (
	jsonType   = []string{"application/json"}
	acceptBoth = []string{"application/json, text/event-stream"}
)

func (lc *leanCall) setHeaders(h http.Header) {
	h["Mcp-Session-Id"] = []string{lc.ls.id}
	h["Mcp-Protocol-Version"] = []string{lc.ls.protocol}
	for k, v := range lc.trace { // while tracing, otelhttp replaces them
		h.Set(k, v)
	}
}

// wireMessage is a JSON-RPC message as lean calls read it.
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *jsonrpc.Error  `json:"error"`
}

// handle reads one message of the call's stream: the call's response
// (done), or a notification or request of the upstream, which it handles.
func (lc *leanCall) handle(data []byte) (m *wireMessage, done bool, err error) {
	m = new(wireMessage)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, false, lc.badAnswer("it sent a malformed message: %v (%.200q)", err, data)
	}
	hasID := len(m.ID) > 0 && string(m.ID) != "null"
	switch {
	case m.Method == "" && bytes.Equal(m.ID, lc.id):
		return m, true, nil
	case m.Method == "" && !hasID && m.Error != nil:
		// An error the upstream could not tie to a request id (it could
		// not read ours): the POST carried only the call.
		return m, true, nil
	case m.Method == "":
		lc.u.logger.Debug("upstream sent a response to no request of this call", "id", string(m.ID))
	case !hasID:
		lc.notification(m)
	default:
		lc.request(m)
	}
	return nil, false, nil
}

// notification handles a notification that came with the call.
func (lc *leanCall) notification(m *wireMessage) {
	u := lc.u
	switch m.Method {
	case "notifications/progress":
		var p mcp.ProgressNotificationParams
		if err := json.Unmarshal(m.Params, &p); err != nil {
			u.logger.Debug("malformed progress notification from upstream", "error", err)
			return
		}
		u.relayProgress(&p)
	case "notifications/message":
		var p mcp.LoggingMessageParams
		if err := json.Unmarshal(m.Params, &p); err != nil {
			u.logger.Debug("malformed log message from upstream", "error", err)
			return
		}
		u.logger.Debug("upstream log message", "level", string(p.Level), "logger", p.Logger, "data", p.Data)
		u.relayLog(lc.f, &p)
	case "notifications/tools/list_changed":
		u.toolsChanged()
	case "notifications/cancelled":
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			lc.mu.Lock()
			cancel := lc.served[string(p.RequestID)]
			lc.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		}
	}
}

// request answers a request of the upstream made during the call, in a
// goroutine: the upstream may go on sending notifications meanwhile.
func (lc *leanCall) request(m *wireMessage) {
	ctx, cancel := context.WithCancel(lc.ctx)
	lc.mu.Lock()
	if lc.served == nil {
		lc.served = map[string]context.CancelFunc{}
	}
	lc.served[string(m.ID)] = cancel
	lc.mu.Unlock()
	lc.serving.Add(1)
	go func() {
		defer lc.serving.Done()
		defer func() {
			lc.mu.Lock()
			delete(lc.served, string(m.ID))
			lc.mu.Unlock()
			cancel()
		}()
		result, err := lc.answer(ctx, m)
		if ctx.Err() != nil {
			return // the upstream cancelled its request, or the call ended
		}
		lc.respond(ctx, m.ID, result, err)
	}()
}

// answer computes the result of an upstream request.
func (lc *leanCall) answer(ctx context.Context, m *wireMessage) (any, error) {
	u, f := lc.u, lc.f
	switch m.Method {
	case "ping":
		return struct{}{}, nil
	case "sampling/createMessage":
		var p mcp.CreateMessageParams
		if err := json.Unmarshal(m.Params, &p); err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid sampling/createMessage params: " + err.Error()}
		}
		return u.sample(ctx, f, &p)
	case "elicitation/create":
		var p mcp.ElicitParams
		if err := json.Unmarshal(m.Params, &p); err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid elicitation/create params: " + err.Error()}
		}
		return u.elicit(ctx, f, &p)
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("mcptower does not serve %q to upstreams", m.Method)}
}

// respond posts the response to an upstream request.
func (lc *leanCall) respond(ctx context.Context, id json.RawMessage, result any, rerr error) {
	msg := struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  any             `json:"result,omitempty"`
		Error   *jsonrpc.Error  `json:"error,omitempty"`
	}{JSONRPC: "2.0", ID: id, Result: result}
	if rerr != nil {
		msg.Result = nil
		if !errors.As(rerr, &msg.Error) {
			msg.Error = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: rerr.Error()}
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		body, _ = json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   *jsonrpc.Error  `json:"error"`
		}{"2.0", id, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "mcptower could not encode its answer: " + err.Error()}})
	}
	resp, err := lc.post(ctx, body)
	if err != nil {
		lc.u.logger.Warn("could not answer the upstream's request", "error", err)
		return
	}
	closeBody(resp)
	if resp.StatusCode/100 != 2 {
		lc.u.logger.Warn("upstream refused mcptower's answer to its request", "status", resp.Status)
	}
}

// cancelled tells the upstream that the call is cancelled, in the
// background: the call returns at once.
func (lc *leanCall) cancelled(reason string) {
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"method":  "notifications/cancelled",
		"params":  map[string]any{"requestId": json.RawMessage(lc.id), "reason": reason},
	})
	u := lc.u
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := lc.post(ctx, body)
		if err != nil {
			u.logger.Warn("could not send notifications/cancelled upstream", "error", err)
			return
		}
		closeBody(resp)
		u.logger.Debug("upstream answered notifications/cancelled", "status", resp.StatusCode)
	}()
}

// statusError describes a non-2xx answer: the upstream's JSON-RPC error
// when it sent one, else the status and the start of the body.
func statusError(u *Upstream, resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	defer closeBody(resp)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var m wireMessage
	if json.Unmarshal(body, &m) == nil && m.Error != nil {
		return m.Error
	}
	code := errs.Internal
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		code = errs.Unavailable
	}
	return errs.E(code, "upstream %s answered HTTP %s: %.200s", u.spec.Name, resp.Status, bytes.TrimSpace(body))
}

// badAnswer is the error of a call the upstream answered in a way MCP does
// not allow; the session itself is not in doubt.
func (lc *leanCall) badAnswer(format string, args ...any) error {
	return errs.E(errs.Unavailable, "upstream %s answered the call wrongly: "+format, append([]any{lc.u.spec.Name}, args...)...)
}

// closeBody reads a little of what is left of an answer, so that its
// connection can be reused, and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxLeanDrain))
	_ = resp.Body.Close()
}

// toolResult converts the call's response.
func (m *wireMessage) toolResult(u *Upstream) (*agents.Result, error) {
	if m.Error != nil {
		return nil, m.Error
	}
	var r wireResult
	if err := json.Unmarshal(m.Result, &r); err != nil {
		return nil, errs.E(errs.Internal, "upstream %s answered with a malformed tool result: %v", u.spec.Name, err)
	}
	out := &agents.Result{IsError: r.IsError, Content: make([]agents.Content, 0, len(r.Content))}
	if len(r.StructuredContent) > 0 && string(r.StructuredContent) != "null" {
		out.Output = r.StructuredContent
	}
	for _, raw := range r.Content {
		out.Content = append(out.Content, contentFromWire(raw))
	}
	return out, nil
}

// wireResult is a CallToolResult as lean calls read it.
type wireResult struct {
	Content           []json.RawMessage `json:"content"`
	StructuredContent json.RawMessage   `json:"structuredContent"`
	IsError           bool              `json:"isError"`
}

// wireContent is a content block as lean calls read it.
type wireContent struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Data     []byte `json:"data"`
	MIMEType string `json:"mimeType"`
	URI      string `json:"uri"`
	Name     string `json:"name"`
	Resource *struct {
		URI      string `json:"uri"`
		MIMEType string `json:"mimeType"`
		Text     string `json:"text"`
		Blob     []byte `json:"blob"`
	} `json:"resource"`
}

// contentFromWire converts a content block as contentFrom converts the
// SDK's; a block it does not model stays readable as its JSON text.
func contentFromWire(raw json.RawMessage) agents.Content {
	var c wireContent
	if json.Unmarshal(raw, &c) == nil {
		switch c.Type {
		case "text":
			return agents.Text(c.Text)
		case "image", "audio":
			return agents.Content{Type: c.Type, Data: c.Data, MIMEType: c.MIMEType}
		case "resource_link":
			return agents.Content{Type: c.Type, URI: c.URI, Name: c.Name, MIMEType: c.MIMEType}
		case "resource":
			if r := c.Resource; r != nil {
				return agents.Content{Type: c.Type, URI: r.URI, MIMEType: r.MIMEType, Text: r.Text, Data: r.Blob}
			}
		}
	}
	return agents.Text(string(raw))
}

// quote returns s as a JSON string; s needs no escaping (a progress token).
func quote(s string) []byte { return appendQuoted(nil, s) }

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSON appends v encoded as JSON (a string or other simple value).
func appendJSON(b []byte, v any) []byte {
	enc, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

// leanActive reports whether calls on the current connection are lean.
func (u *Upstream) leanActive() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conn != nil && u.conn.lean != nil
}
