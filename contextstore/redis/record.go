package redis

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"mcptower/contextstore"
)

// An entry is stored as one string, its record (one field of a stream
// entry, rather than one field per attribute, so that reading a page costs
// a few allocations per entry, not a map and a dozen strings):
//
//	<time µs> <len role> <len agent> <len content>\n<role><agent><content><tags>
//
// where tags is a sequence of <len>:<bytes>, alternately key and value.
// Go builds everything after the time (encodeRecord); the append script
// prepends the time it assigns.

// encodeRecord returns e's record without the time.
func encodeRecord(e contextstore.Entry) []byte {
	n := 24 + len(e.Role) + len(e.Agent) + len(e.Content)
	for k, v := range e.Tags {
		n += len(k) + len(v) + 8
	}
	b := make([]byte, 0, n)
	b = strconv.AppendInt(b, int64(len(e.Role)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(e.Agent)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(e.Content)), 10)
	b = append(b, '\n')
	b = append(b, e.Role...)
	b = append(b, e.Agent...)
	b = append(b, e.Content...)
	for k, v := range e.Tags {
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(b, ':')
		b = append(b, k...)
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b
}

var errRecord = errors.New("malformed record")

// decodeRecord decodes a record (with its time) into e's Time, Role,
// Agent, Content and Tags. The results do not share rec's memory.
func decodeRecord(rec string, e *contextstore.Entry) error {
	var h [4]int64
	for i := range h {
		sep := byte(' ')
		if i == len(h)-1 {
			sep = '\n'
		}
		var ok bool
		if h[i], rec, ok = cutInt(rec, sep); !ok || h[i] < 0 {
			return errRecord
		}
	}
	lr, la, lc := h[1], h[2], h[3]
	if lr+la+lc > int64(len(rec)) {
		return errRecord
	}
	e.Time = time.UnixMicro(h[0]).UTC()
	e.Role = role(rec[:lr])
	e.Agent = strings.Clone(rec[lr : lr+la])
	e.Content = []byte(rec[lr+la : lr+la+lc])
	rest := rec[lr+la+lc:]
	if rest == "" {
		e.Tags = nil
		return nil
	}
	e.Tags = make(map[string]string, 2)
	for rest != "" {
		var k, v string
		var ok bool
		if k, rest, ok = cutString(rest); !ok {
			return errRecord
		}
		if v, rest, ok = cutString(rest); !ok {
			return errRecord
		}
		e.Tags[k] = v
	}
	return nil
}

// role returns r as one of the role constants where it is one, so that
// decoding a role allocates nothing.
func role(r string) string {
	switch r {
	case contextstore.RoleUser:
		return contextstore.RoleUser
	case contextstore.RoleAgent:
		return contextstore.RoleAgent
	case contextstore.RoleTool:
		return contextstore.RoleTool
	case contextstore.RoleSystem:
		return contextstore.RoleSystem
	}
	return strings.Clone(r)
}

// cutInt parses the decimal number at the start of s up to sep and returns
// it and what follows sep.
func cutInt(s string, sep byte) (int64, string, bool) {
	i := strings.IndexByte(s, sep)
	if i <= 0 || i > 19 {
		return 0, s, false
	}
	var n int64
	for j := 0; j < i; j++ {
		c := s[j]
		if c < '0' || c > '9' {
			return 0, s, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, s[i+1:], true
}

// cutString reads "<len>:<bytes>" at the start of s and returns a copy of
// the bytes and what follows them.
func cutString(s string) (string, string, bool) {
	n, rest, ok := cutInt(s, ':')
	if !ok || n > int64(len(rest)) {
		return "", s, false
	}
	return strings.Clone(rest[:n]), rest[n:], true
}
