// Package wire holds what the LLM provider packages (openai, anthropic)
// share: a Server-Sent Events reader and the error type of a failed provider
// call, which says in plain words what went wrong (authentication, unknown
// model, rate limit, context too long, ...) and whether a retry may help.
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventBytes bounds one SSE line and one event's data, so a misbehaving
// server cannot make the reader buffer without limit.
const MaxEventBytes = 4 << 20

// Event is one Server-Sent Event.
type Event struct {
	// Name is the event field ("message_start"); "" when the server sent
	// none (OpenAI sends none).
	Name string
	// Data is the event's data, its lines joined with "\n".
	Data []byte
}

// SSEReader reads Server-Sent Events (text/event-stream) from a response
// body, as the HTML standard defines them: "field: value" lines, an event
// ending at a blank line, comments starting with ':', LF or CRLF endings.
type SSEReader struct {
	br   *bufio.Reader
	line []byte
}

// NewSSEReader returns a reader of the events in r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{br: bufio.NewReaderSize(r, 16<<10)}
}

// ErrTruncated is returned by Next when the stream ends in the middle of an
// event: the connection was cut.
var ErrTruncated = errors.New("stream ended in the middle of an event")

// Next returns the next event with data. It returns io.EOF when the stream
// ends cleanly between events, ErrTruncated when it ends inside one, and
// the read error otherwise.
func (r *SSEReader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	pending := false // a field of the current event was read
	for {
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if pending || len(line) > 0 {
					return Event{}, ErrTruncated
				}
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if data.Len() > 0 {
				ev.Data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				return ev, nil
			}
			// An event without data is not dispatched.
			ev, pending = Event{}, false
			continue
		}
		if line[0] == ':' {
			continue // comment (keep-alive)
		}
		pending = true
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if data.Len()+len(value) > MaxEventBytes {
				return Event{}, fmt.Errorf("event data longer than %d bytes", MaxEventBytes)
			}
			data.Write(value)
			data.WriteByte('\n')
		}
		// id and retry are of no use to a one-shot reader; unknown fields
		// are ignored, as the standard says.
	}
}

// readLine returns the next line without its ending. At the end of the
// stream it returns the unterminated rest (if any) with io.EOF.
func (r *SSEReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.line)+len(chunk) > MaxEventBytes {
			return nil, fmt.Errorf("event line longer than %d bytes", MaxEventBytes)
		}
		r.line = append(r.line, chunk...)
		switch {
		case err == nil:
			line := bytes.TrimSuffix(r.line[:len(r.line)-1], []byte("\r"))
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return r.line, err
		}
	}
}
