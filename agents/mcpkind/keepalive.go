package mcpkind

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// A tools/call to an HTTP upstream is a POST whose answer is usually an
// event stream. The SDK reads that stream to its end so that the TCP
// connection can carry the next call, but it hands the result to the caller
// first, and the caller's context (the request's) is cancelled as soon as the
// call returns. A request whose context is cancelled before its body has
// reached EOF costs its connection: the transport closes it, and the next
// call dials again (measured: one call in three opened a new connection,
// with its connect/accept and slow-start on both sides).
//
// keepAlive therefore gives each POST a context of its own. Until the
// response arrives it is cancelled with the caller's, so a call cancelled
// while the upstream works is abandoned at once; once the body is being
// read, the caller's cancellation leaves the body a short grace to reach its
// end before the request is cancelled. The SDK sends notifications/cancelled
// upstream in its own request either way, so the upstream learns of a
// cancellation just as fast.

// streamGrace is how long a response body may go on being read after its
// caller's context is done. A stream that was answered ends within
// microseconds; one abandoned mid-call is cut when the upstream ends it on
// notifications/cancelled, or after this.
var streamGrace = 2 * time.Second

// keepAlive detaches POSTs from their caller's cancellation as described
// above; other requests (the standalone GET stream, DELETE) pass through.
func keepAlive(base http.RoundTripper, req *http.Request) (*http.Response, error) {
	orig := req.Context()
	if req.Method != http.MethodPost || orig.Done() == nil {
		return base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(orig))
	b := &detachedBody{cancel: cancel}
	b.stop = context.AfterFunc(orig, func() { b.callerDone(context.Cause(orig)) })
	resp, err := base.RoundTrip(req.WithContext(ctx))
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		b.stop()
		cancel(context.Canceled)
		return resp, err
	}
	b.mu.Lock()
	b.rc = resp.Body
	if b.state == waitingHeaders {
		b.state = reading
	}
	b.mu.Unlock()
	resp.Body = b
	return resp, nil
}

type bodyState int

const (
	waitingHeaders bodyState = iota
	reading
	finished // EOF read or body closed
)

// detachedBody is a response body whose request context is cancelled a
// grace after its caller's, unless it has reached EOF by then.
type detachedBody struct {
	cancel context.CancelCauseFunc
	stop   func() bool // unregisters callerDone

	mu    sync.Mutex
	rc    io.ReadCloser
	state bodyState
	timer *time.Timer
}

// callerDone runs when the caller's context is done.
func (b *detachedBody) callerDone(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case waitingHeaders:
		b.cancel(cause)
	case reading:
		b.timer = time.AfterFunc(streamGrace, func() { b.cancel(cause) })
	}
}

func (b *detachedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		// At EOF the transport has already taken the connection back: the
		// context must not be cancelled now, or the transport may still see
		// the cancellation first and close the connection after all.
		b.finish(errors.Is(err, io.EOF))
	}
	return n, err
}

func (b *detachedBody) Close() error {
	err := b.rc.Close()
	b.finish(false)
	return err
}

// finish retires the body; unless it ended at EOF, the request's context is
// cancelled (the transport closes a connection whose body was not read to
// the end in any case).
func (b *detachedBody) finish(eof bool) {
	b.mu.Lock()
	if b.state == finished {
		b.mu.Unlock()
		return
	}
	b.state = finished
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	b.stop()
	if !eof {
		b.cancel(context.Canceled)
	}
}
