package postgres

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// decodeTags decodes a JSON object of strings, as json.Marshal wrote it
// for a map[string]string. Without escapes in it (the usual case) it is
// parsed here, with one allocation per key and value; otherwise
// encoding/json does the work.
func decodeTags(b []byte) (map[string]string, error) {
	if m, ok := decodeSimpleTags(b); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeSimpleTags parses {"k":"v",...} in valid UTF-8 with no whitespace
// and no backslash anywhere; ok is false for anything else.
func decodeSimpleTags(b []byte) (m map[string]string, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || bytes.IndexByte(b, '\\') >= 0 || !utf8.Valid(b) {
		return nil, false
	}
	b = b[1 : len(b)-1]
	m = make(map[string]string, 2)
	for len(b) > 0 {
		var k, v string
		if k, b, ok = cutQuoted(b); !ok || len(b) == 0 || b[0] != ':' {
			return nil, false
		}
		if v, b, ok = cutQuoted(b[1:]); !ok {
			return nil, false
		}
		m[k] = v
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return nil, false
			}
			b = b[1:]
		}
	}
	return m, true
}

// cutQuoted reads a JSON string without escapes at the start of b.
func cutQuoted(b []byte) (string, []byte, bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", b, false
	}
	i := bytes.IndexByte(b[1:], '"')
	if i < 0 {
		return "", b, false
	}
	s := b[1 : 1+i]
	for _, c := range s {
		if c < 0x20 { // control characters must be escaped in JSON
			return "", b, false
		}
	}
	return string(s), b[2+i:], true
}
