package mcpkind

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The SDK retires a call as soon as its response is read, but hands the
// notifications read before it (progress, log messages) to a handler
// goroutine: without care, the last progress notification or a log message
// written just before the result would reach the call's record after the
// call has returned, and be dropped. So the bytes the upstream sends are
// scanned for those notifications as they are read, and a call, once
// answered, waits (briefly, and only if some are outstanding) until as many
// have been handled as had been read by then.

// relayedMethods are the notifications whose handlers count as handled.
var relayedMethods = [][]byte{
	[]byte(`"method":"notifications/progress"`),
	[]byte(`"method":"notifications/message"`),
}

// maxPattern is the length of the longest relayed pattern.
var maxPattern = func() int {
	n := 0
	for _, p := range relayedMethods {
		n = max(n, len(p))
	}
	return n
}()

// drainTimeout bounds the wait for outstanding notifications; it only
// matters when a pattern was seen whose notification the SDK then dropped.
const drainTimeout = 250 * time.Millisecond

// notes counts relayed notifications read from the wire and handled.
type notes struct {
	seen atomic.Int64

	mu      sync.Mutex
	handled int64
	wake    chan struct{}
}

func newNotes() *notes { return &notes{wake: make(chan struct{})} }

// done records one handled notification.
func (n *notes) done() {
	n.mu.Lock()
	n.handled++
	close(n.wake)
	n.wake = make(chan struct{})
	n.mu.Unlock()
}

// drain waits until every relayed notification read so far is handled, or
// drainTimeout passes.
func (n *notes) drain() {
	target := n.seen.Load()
	var timer *time.Timer
	for {
		n.mu.Lock()
		if n.handled >= target {
			n.mu.Unlock()
			break
		}
		wake := n.wake
		n.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(drainTimeout)
		}
		select {
		case <-wake:
		case <-timer.C:
			return
		}
	}
	if timer != nil {
		timer.Stop()
	}
}

// countingReader counts relayed notifications in what passes through it.
// The tail of each chunk is kept so that a pattern split between two reads
// is still found.
type countingReader struct {
	r     io.ReadCloser
	notes *notes
	tail  []byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.scan(p[:n])
	}
	return n, err
}

func (c *countingReader) scan(chunk []byte) {
	buf := chunk
	if len(c.tail) > 0 {
		buf = append(c.tail, chunk...)
	}
	var found int64
	for _, pat := range relayedMethods {
		found += int64(bytes.Count(buf, pat))
	}
	// Patterns wholly inside the kept tail were counted last time.
	for _, pat := range relayedMethods {
		found -= int64(bytes.Count(c.tail, pat))
	}
	if found > 0 {
		c.notes.seen.Add(found)
	}
	keep := min(len(buf), maxPattern-1)
	c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
}

func (c *countingReader) Close() error { return c.r.Close() }

// countSSE wraps an event-stream response body of an HTTP upstream.
func countSSE(resp *http.Response, n *notes) {
	if resp != nil && resp.Body != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = &countingReader{r: resp.Body, notes: n}
	}
}
