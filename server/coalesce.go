package server

import (
	"bytes"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The SDK answers a POST with an event stream and flushes after every
// event: the response headers with the priming event (2025-11-25), then the
// JSON-RPC response, then net/http ends the chunked body when the handler
// returns. That is three writes to the socket for one answer, and the
// client wakes up for each. coalesceFlushes holds back the two flushes that
// only matter when more follows soon:
//
//   - after the priming event, until the next event or flushDelay, so that
//     a quick call sends headers, priming event, response and end of body in
//     one write, and a slow one still shows its headers at once;
//   - after a JSON-RPC response, which is the last event of a POST's stream:
//     the handler returns right after, and net/http sends the response and
//     the end of the body together. The timer covers a handler that does
//     not return at once.
//
// Every other event (progress, log messages, server requests) is flushed as
// it is written, as before.

// flushDelay is how long a held-back flush may wait, in nanoseconds (an
// atomic for tests, which change it).
var flushDelay atomic.Int64

func init() { flushDelay.Store(int64(time.Millisecond)) }

// coalesceFlushes wraps h's POSTs as described above.
func coalesceFlushes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		f, ok := w.(http.Flusher)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		cw := &coalescingWriter{rw: w, f: f}
		h.ServeHTTP(cw, r)
		cw.finish()
	})
}

// coalescingWriter is the ResponseWriter the SDK writes a POST's stream
// to. The SDK writes each event with one Write followed by a flush, from
// whichever goroutine delivers the message; mu serializes them with the
// timer's flush.
type coalescingWriter struct {
	rw http.ResponseWriter
	f  http.Flusher

	mu      sync.Mutex
	last    []byte // start of the last Write
	held    bool   // a flush is being held back
	timer   *time.Timer
	handled bool // the handler has returned: rw is no longer ours
}

func (w *coalescingWriter) Header() http.Header { return w.rw.Header() }

func (w *coalescingWriter) WriteHeader(status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rw.WriteHeader(status)
}

func (w *coalescingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = p[:min(len(p), eventPeek)]
	return w.rw.Write(p)
}

// Flush flushes now, or holds the flush back if the last event written was
// a priming event or a JSON-RPC response.
func (w *coalescingWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *coalescingWriter) FlushError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handled {
		return nil
	}
	if holdFlush(w.last) {
		w.held = true
		d := time.Duration(flushDelay.Load())
		if w.timer == nil {
			w.timer = time.AfterFunc(d, w.timedFlush)
		} else {
			w.timer.Reset(d)
		}
		return nil
	}
	w.held = false
	return flush(w.rw, w.f)
}

func (w *coalescingWriter) timedFlush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held && !w.handled {
		w.held = false
		_ = flush(w.rw, w.f)
	}
}

// finish runs when the handler has returned; net/http flushes what is held.
func (w *coalescingWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handled = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer for
// deadlines.
func (w *coalescingWriter) Unwrap() http.ResponseWriter { return w.rw }

func flush(rw http.ResponseWriter, f http.Flusher) error {
	if fe, ok := rw.(interface{ FlushError() error }); ok {
		return fe.FlushError()
	}
	f.Flush()
	return nil
}

// eventPeek is how much of an event holdFlush looks at: enough for the
// event and id fields and the start of the JSON-RPC message.
const eventPeek = 256

var (
	primeEvent  = []byte("event: prime\n")
	dataField   = []byte("\ndata: ")
	methodKey   = []byte(`"method"`)
	resultKey   = []byte(`"result"`)
	errorKey    = []byte(`"error"`)
	eventPrefix = []byte("data: ")
)

// holdFlush reports whether ev, the start of an SSE event, is a priming
// event or a JSON-RPC response. A message is a response when a "result" or
// "error" member comes before any "method" member (the SDK writes id and
// method before params, result and error). Misjudging one only moves a
// flush by up to flushDelay.
func holdFlush(ev []byte) bool {
	if bytes.HasPrefix(ev, primeEvent) {
		return true
	}
	var data []byte
	if bytes.HasPrefix(ev, eventPrefix) {
		data = ev[len(eventPrefix):]
	} else if i := bytes.Index(ev, dataField); i >= 0 {
		data = ev[i+len(dataField):]
	} else {
		return false
	}
	m := bytes.Index(data, methodKey)
	r := bytes.Index(data, resultKey)
	if r < 0 {
		r = bytes.Index(data, errorKey)
	}
	return r >= 0 && (m < 0 || r < m)
}
