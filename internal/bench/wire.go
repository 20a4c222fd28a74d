package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxErrorBody bounds how much of a failed response's body goes into an
// error message.
const maxErrorBody = 512

// maxDrain bounds how much of an unread response body is discarded to keep
// its connection reusable.
const maxDrain = 256 << 10

// message is the part of a JSON-RPC message the client looks at. Its fields
// are raw so that decoding into a reused message reuses their capacity.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method json.RawMessage `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// toolResult is the part of a CallToolResult that decides success.
type toolResult struct {
	IsError bool `json:"isError"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string {
	s := fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message)
	if len(e.Data) > 0 && string(e.Data) != "null" {
		s += " (data: " + truncate(string(e.Data), 200) + ")"
	}
	return s
}

// readResponse reads resp, a reply to the call with the given id, into
// w.msg. It fails on a non-2xx status, a malformed body, a response that is
// not for id, or a JSON-RPC error. On success w.msg.Result holds the result.
func (w *worker) readResponse(resp *http.Response, id int64) error {
	if !is2xx(resp.StatusCode) {
		return statusError(resp)
	}
	w.idBuf = strconv.AppendInt(w.idBuf[:0], id, 10)
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, "application/json"):
		w.buf.Reset()
		if _, err := w.buf.ReadFrom(resp.Body); err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		if err := w.msg.decode(&w.dec, w.buf.Bytes()); err != nil {
			return err
		}
		if !w.msg.isResponseTo(w.idBuf) {
			return fmt.Errorf("response is not for request id %d: %.200s", id, w.buf.Bytes())
		}
		return w.msg.check()
	case strings.EqualFold(mt, "text/event-stream"):
		w.sse.Reset(resp.Body)
		for {
			ev, err := w.sse.Next()
			if err == io.EOF {
				return fmt.Errorf("event stream ended without a response to request id %d", id)
			}
			if err != nil {
				return fmt.Errorf("read event stream: %w", err)
			}
			if len(ev.Data) == 0 {
				continue // e.g. a priming event
			}
			if err := w.msg.decode(&w.dec, ev.Data); err != nil {
				return err
			}
			// Notifications and server requests may come first.
			if w.msg.isResponseTo(w.idBuf) {
				// Read to the end of the stream so the connection can be
				// reused; the server closes it after the last response.
				if _, err := w.sse.Discard(maxDrain); err != nil {
					return fmt.Errorf("read event stream: %w", err)
				}
				return w.msg.check()
			}
		}
	case ct == "" && resp.StatusCode == http.StatusAccepted:
		return errors.New("HTTP 202 Accepted without a response")
	default:
		return fmt.Errorf("unexpected Content-Type %q (HTTP %d)", ct, resp.StatusCode)
	}
}

// decode parses data into m with d, reusing m's buffers.
func (m *message) decode(d *valueDecoder, data []byte) error {
	// Decoding leaves absent fields alone, so clear them first; keeping
	// their capacity makes decoding allocation-free once warmed up.
	m.ID, m.Method, m.Result, m.Error = m.ID[:0], m.Method[:0], m.Result[:0], m.Error[:0]
	if err := d.decode(data, m); err != nil {
		return fmt.Errorf("malformed JSON-RPC message %.200q: %w", data, err)
	}
	return nil
}

// valueDecoder decodes one JSON value from a byte slice at a time. It keeps
// a json.Decoder, whose scanner and decode state are reused from one value
// to the next, where json.Unmarshal would allocate them for every message.
type valueDecoder struct {
	rd  bytes.Reader
	dec *json.Decoder
}

// decode decodes data, which must hold exactly one JSON value, into v.
func (d *valueDecoder) decode(data []byte, v any) error {
	d.rd.Reset(data)
	if d.dec == nil {
		d.dec = json.NewDecoder(&d.rd)
	}
	err := d.dec.Decode(v)
	if err == nil && d.dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err != nil {
		// A Decoder's read errors are sticky, and it may hold leftover
		// bytes: start afresh.
		d.dec = nil
		return err
	}
	return nil
}

// isResponseTo reports whether m is a response (not a request or
// notification) whose id is the JSON number id.
func (m *message) isResponseTo(id []byte) bool {
	return !present(m.Method) && bytes.Equal(m.ID, id)
}

// check returns the JSON-RPC error carried by m, if any, and fails if m has
// no result.
func (m *message) check() error {
	if present(m.Error) {
		e := new(rpcError)
		if err := json.Unmarshal(m.Error, e); err != nil {
			return fmt.Errorf("malformed JSON-RPC error %.200s: %w", m.Error, err)
		}
		return e
	}
	if !present(m.Result) {
		return errors.New("JSON-RPC response has neither result nor error")
	}
	return nil
}

// present reports whether a raw field was set to something other than null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// toolError describes a result with isError set, quoting its text content.
func toolError(result json.RawMessage) error {
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	_ = json.Unmarshal(result, &res) // best effort: the flag already decided
	var texts []string
	for _, c := range res.Content {
		if c.Type == "text" {
			texts = append(texts, c.Text)
		}
	}
	return fmt.Errorf("tool error: %s", truncate(strings.Join(texts, " "), 200))
}

// statusError describes a non-2xx response, including a JSON-RPC error or
// the start of the body.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := fmt.Sprintf("HTTP %s", resp.Status)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		var m message
		if json.Unmarshal(body, &m) == nil && present(m.Error) {
			return fmt.Errorf("%s: %w", msg, m.check())
		}
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		msg += ": " + truncate(s, 200)
	}
	return errors.New(msg)
}

// closeBody drains (a bounded amount of) and closes resp.Body, so that its
// connection can be reused.
func closeBody(resp *http.Response) {
	var drain io.LimitedReader
	drainAndClose(resp, &drain)
}

// drainAndClose is closeBody with a caller-provided LimitedReader, which
// would otherwise be allocated for every call.
func drainAndClose(resp *http.Response, drain *io.LimitedReader) {
	drain.R, drain.N = resp.Body, maxDrain
	_, _ = io.Copy(io.Discard, drain)
	drain.R = nil
	_ = resp.Body.Close()
}

func is2xx(code int) bool { return code >= 200 && code < 300 }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
