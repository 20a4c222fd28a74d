package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"mcptower/contextstore"
)

// RedactedText is what Redacted puts in place of a secret.
const RedactedText = "[redacted]"

// Redacted returns a deep copy of c that is safe to print or log: the store
// URL's password (and any query parameter named like a secret) is masked,
// and so is the value of every agent option and metadata entry whose key
// looks like a secret (api_key, token, password, secret, authorization,
// anything ending in _key or Key), at any depth inside the options. Empty
// values are kept, so that a missing secret still shows.
func (c *Config) Redacted() *Config {
	r := *c
	r.Server.TrustedOrigins = slices.Clone(c.Server.TrustedOrigins)
	r.Store.URL = redactURL(c.Store.URL)
	r.Agents = slices.Clone(c.Agents)
	for i := range r.Agents {
		d := &r.Agents[i].Definition
		d.Tags = slices.Clone(d.Tags)
		d.Metadata = maps.Clone(d.Metadata)
		for k, v := range d.Metadata {
			if v != "" && IsSecretKey(k) {
				d.Metadata[k] = RedactedText
			}
		}
		d.Options = redactJSON(d.Options)
	}
	return &r
}

// IsSecretKey reports whether a key names a secret: its last word (words
// split at '_', '-', '.' and camelCase) is key, token, password, secret,
// authorization, credentials and the like, or any word contains password
// or secret. "api_key", "X-Api-Key", "accessToken" and "client_secret" are
// secrets; "max_tokens" and "token_url" are not.
func IsSecretKey(k string) bool {
	words := splitWords(k)
	if len(words) == 0 {
		return false
	}
	switch words[len(words)-1] {
	case "key", "keys", "apikey", "token", "password", "passwd", "pwd", "passphrase",
		"secret", "authorization", "auth", "credential", "credentials", "cookie", "bearer":
		return true
	}
	for _, w := range words {
		if strings.Contains(w, "password") || strings.Contains(w, "passwd") || strings.Contains(w, "secret") || w == "apikey" {
			return true
		}
	}
	return false
}

// splitWords splits an identifier into lower-case words.
func splitWords(s string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			continue
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) ||
			unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])):
			flush() // "apiKey" -> api key; "HTTPToken" -> http token
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// redactURL masks the password of a URL and the values of query parameters
// named like secrets (?password=..., ?sslpassword=..., ?token=...).
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	s := contextstore.Redact(raw)
	u, err := url.Parse(s)
	if err != nil || u.RawQuery == "" {
		return s
	}
	q := u.Query()
	changed := false
	for k, vs := range q {
		if IsSecretKey(k) {
			for i := range vs {
				vs[i] = "xxxxx"
			}
			changed = true
		}
	}
	if !changed {
		return s
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// redactJSON masks secrets in an options object. Options that are not valid
// JSON are replaced whole, since nothing in them can be shown safely.
func redactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	n, err := jsonToNode(raw, false)
	if err != nil {
		return marshalJSON(RedactedText)
	}
	redactNode(n)
	p := &parser{budget: maxNodes}
	var buf bytes.Buffer
	p.writeJSON(&buf, n, "", 0)
	if len(p.errs) > 0 {
		return marshalJSON(RedactedText)
	}
	return json.RawMessage(buf.Bytes())
}

func redactNode(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if IsSecretKey(k.Value) && !isEmpty(v) {
				n.Content[i+1] = strNode(RedactedText, false)
				continue
			}
			redactNode(v)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c)
		}
	}
}

func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Value == "" || n.ShortTag() == "!!null")
}

func strNode(s string, escape bool) *yaml.Node {
	if escape {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) || strings.TrimSpace(s) != s {
		// yaml.v3 may not round-trip these in plain or literal style.
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// jsonToNode converts a JSON value to a YAML node tree, keeping the order
// of object keys. With escape, "$" in string values becomes "$$" so that
// Parse reads back the same text.
func jsonToNode(raw []byte, escape bool) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := jsonValue(dec, escape, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return n, nil
}

func jsonValue(dec *json.Decoder, escape bool, depth int) (*yaml.Node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("JSON nests more than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				ks, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", k)
				}
				n.Content = append(n.Content, strNode(ks, false))
			}
			v, err := jsonValue(dec, escape, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	case string:
		return strNode(t, escape), nil
	case json.Number:
		if t == "-0" {
			// YAML reads -0 as the integer 0, losing the sign.
			t = "-0.0"
		}
		tag := "!!float"
		if _, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			tag = "!!int"
		} else if _, err := strconv.ParseUint(string(t), 10, 64); err == nil {
			tag = "!!int"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}
