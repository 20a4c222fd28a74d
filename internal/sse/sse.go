// Package sse reads text/event-stream bodies (Server-Sent Events) the way
// MCP's Streamable HTTP transport uses them, reusing its buffers from one
// event and one stream to the next so that reading allocates nothing once
// warmed up. It serves mcptower's own lean clients: the load tester and the
// tools/call path to HTTP upstreams.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrTooLarge is returned for an event whose data exceeds the reader's
// limit.
var ErrTooLarge = errors.New("sse: event larger than the limit")

// Event is one event. Its slices are valid until the next call of Next.
type Event struct {
	Name []byte // the event field; empty means "message"
	ID   []byte // the id field; nil if the event had none
	Data []byte // the data lines, joined with '\n'
}

// Reader splits a stream into events, following the WHATWG parsing rules
// for the fields MCP uses (data, event, id; retry and others are ignored).
type Reader struct {
	br    *bufio.Reader
	limit int    // maximum data size, 0 for none
	line  []byte // a line longer than br's buffer, reassembled
	ev    Event
	name  []byte
	id    []byte
	data  []byte
}

// NewReader returns a Reader with a read buffer of size bytes and the given
// limit on an event's data (0: none). Call Reset before the first Next.
func NewReader(size, limit int) *Reader {
	return &Reader{br: bufio.NewReaderSize(nil, size), limit: limit, id: make([]byte, 0, 32)}
}

// Reset starts reading a new stream.
func (s *Reader) Reset(r io.Reader) { s.br.Reset(r) }

// Retained returns how many bytes of buffers the reader keeps between
// events (they grow with the largest event read).
func (s *Reader) Retained() int {
	return s.br.Size() + cap(s.line) + cap(s.data) + cap(s.name) + cap(s.id)
}

// Discard reads the rest of the stream, up to max bytes, and reports
// whether it reached the end.
func (s *Reader) Discard(max int64) (bool, error) {
	n, err := io.Copy(io.Discard, io.LimitReader(s.br, max))
	if err != nil {
		return false, err
	}
	return n < max, nil
}

// Next returns the next event that has a data, event or id field, or
// io.EOF at the end of the stream. An incomplete event at the end of the
// stream is discarded, as the SSE specification says.
func (s *Reader) Next() (*Event, error) {
	s.name, s.id, s.data = s.name[:0], s.id[:0], s.data[:0]
	fields, hasData, hasID := false, false, false
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if !fields {
				continue
			}
			s.ev = Event{Name: s.name, Data: s.data}
			if hasID {
				s.ev.ID = s.id
			}
			return &s.ev, nil
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			if s.limit > 0 && len(s.data)+len(value) > s.limit {
				return nil, ErrTooLarge
			}
			s.data = append(s.data, value...)
			fields, hasData = true, true
		case "event":
			s.name = append(s.name[:0], value...)
			fields = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 { // the spec ignores ids with NUL
				s.id = append(s.id[:0], value...)
				fields, hasID = true, true
			}
		}
	}
}

// readLine returns the next line without its line ending (LF or CRLF). A
// last line without a line ending is returned before io.EOF.
func (s *Reader) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if s.limit > 0 && len(s.line) > s.limit+64 {
				return nil, ErrTooLarge
			}
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil && !(err == io.EOF && len(line) > 0) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}
