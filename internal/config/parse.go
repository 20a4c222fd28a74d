package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
)

// Limits on what Parse walks, so that a hostile file (a "billion laughs" of
// aliases, an alias cycle) fails instead of exhausting memory or the stack.
const (
	maxDepth = 256
	maxNodes = 1 << 18
)

// Parse parses data, the content of a config file called name (used in
// error messages and kept in Config.Path). Fields the file leaves out keep
// Default's values. env looks up variables for ${VAR} references; nil means
// os.LookupEnv.
//
// Parse reports every problem it finds, each as an *Error on its own line,
// joined with errors.Join. It does not build agents: call Validate for that.
func Parse(name string, data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	p := &parser{file: name, budget: maxNodes}
	root := p.parseYAML(data)
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	cfg := Default()
	cfg.Path = name
	if root == nil {
		return cfg, nil
	}
	p.interpolate(root, "", env)
	if len(p.errs) > 0 {
		// Values left uninterpolated would only cause more, misleading errors.
		return nil, p.err()
	}
	p.decodeConfig(root, cfg)
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	return cfg, nil
}

// parser decodes a yaml.Node tree, collecting errors rather than stopping at
// the first.
type parser struct {
	file      string
	errs      []error
	budget    int  // nodes left to visit, counting alias expansions
	exhausted bool // the budget error was reported
}

// err returns the problems found, each once, or nil. (A mapping merged
// into several places would otherwise report its problems at each.)
func (p *parser) err() error {
	var out []error
	seen := map[string]bool{}
	for _, e := range p.errs {
		if msg := e.Error(); !seen[msg] {
			seen[msg] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Err: errs.E(errs.Invalid, format, args...)})
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// parseYAML returns the root node of the single document in data, or nil
// for an empty file.
func (p *parser) parseYAML(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 panics on a few inputs with "internal error"; a config
		// file must never crash the process.
		if r := recover(); r != nil {
			p.errorf(nil, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF {
			p.yamlError(err, data)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		p.yamlError(err, data)
		return nil
	default:
		p.errorf(&next, "", "a config file holds one YAML document; remove this second one (or the --- before it)")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlParserProblems are the errors of yaml.v3's parser (as opposed to its
// scanner): it reports their line 0-based.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: did not find
// expected key") into an *Error with the line.
func (p *parser) yamlError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			line++
		}
		// At the end of the input, the line after the last one.
		if last := bytes.Count(bytes.TrimRight(data, " \t\r\n"), []byte("\n")) + 1; line > last {
			line = last
		}
	} else if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = bytes.Count(data[:i], []byte("\n")) + 1
		}
	}
	p.errorf(&yaml.Node{Line: line}, "", "invalid YAML: %s", msg)
}

// deref follows aliases and counts the node against the budget. It returns
// nil when the budget or depth is exhausted (after reporting it once).
func (p *parser) deref(n *yaml.Node, depth int) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	p.budget--
	if p.budget < 0 || depth > maxDepth {
		if !p.exhausted {
			p.exhausted = true
			p.errorf(n, "", "the file nests too deeply or expands too many aliases (at most %d levels, %d values)", maxDepth, maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// what names a node's type for an error message.
func what(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "an unexpected YAML node"
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// pair is one key: value of a mapping, after merge keys are applied.
type pair struct {
	key, value *yaml.Node
	name       string
}

// pairs returns the entries of mapping n in file order, with the entries of
// merge keys ("<<: *anchor") in place of the merge key, except those the
// mapping sets itself. Keys must be strings; a key set twice is an error.
// Nil means n is not a usable mapping (the error is reported).
func (p *parser) pairs(n *yaml.Node, field string, depth int) []pair {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping (key: value), not %s", what(n))
		return nil
	}
	own := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.deref(n.Content[i], depth+1)
		if k == nil {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, field, "a key must be a string, not %s", what(k))
			continue
		}
		if k.ShortTag() != "!!str" {
			p.errorf(k, field, "key %s must be a string; quote it (%q)", k.Value, k.Value)
			continue
		}
		if first, dup := own[k.Value]; dup {
			p.errorf(k, join(field, k.Value), "set twice (first at line %d)", first.Line)
			continue
		}
		own[k.Value] = k
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.deref(n.Content[i], depth+1)
		if k == nil {
			return nil
		}
		v := n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			for _, m := range p.merged(v, field, depth+1) {
				if own[m.name] == nil && !seen[m.name] {
					seen[m.name] = true
					out = append(out, m)
				}
			}
			continue
		}
		if own[k.Value] != k || seen[k.Value] {
			continue // a bad or duplicate key, reported above
		}
		seen[k.Value] = true
		out = append(out, pair{key: k, value: v, name: k.Value})
	}
	return out
}

// merged returns the entries a merge key's value brings: a mapping, or a
// list of mappings where earlier ones win.
func (p *parser) merged(ref *yaml.Node, field string, depth int) []pair {
	v := p.deref(ref, depth)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return p.pairs(v, field, depth+1)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range v.Content {
			item = p.deref(item, depth+1)
			if item == nil {
				return nil
			}
			if item.Kind != yaml.MappingNode {
				p.errorf(item, field, "a merge (<<) list must hold mappings, not %s", what(item))
				continue
			}
			for _, m := range p.pairs(item, field, depth+2) {
				if !seen[m.name] {
					seen[m.name] = true
					out = append(out, m)
				}
			}
		}
		return out
	}
	p.errorf(ref, field, "a merge (<<) must refer to a mapping, not %s", what(v))
	return nil
}

// unknown reports an unknown key in a mapping with a fixed set of keys.
func (p *parser) unknown(k *yaml.Node, field string, known []string) {
	p.errorf(k, field, "unknown field %q; known: %s", k.Value, strings.Join(known, ", "))
}

var (
	topKeys    = []string{"server", "store", "agents"}
	serverKeys = []string{"http", "session_timeout", "max_body_bytes", "trusted_origins", "call_timeout", "builtins", "log_level", "log_format"}
	storeKeys  = []string{"url", "ttl"}
	// agentKeys are the common fields of an agent; any other key is an
	// option of its kind.
	agentKeys = []string{"name", "kind", "version", "title", "description", "tags", "metadata", "timeout"}
)

func (p *parser) decodeConfig(n *yaml.Node, c *Config) {
	n = p.deref(n, 0)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "the file must be a mapping with keys %s, not %s", strings.Join(topKeys, ", "), what(n))
		return
	}
	for _, kv := range p.pairs(n, "", 0) {
		v := p.deref(kv.value, 1)
		if v == nil || isNull(v) {
			continue
		}
		switch kv.name {
		case "server":
			p.decodeServer(v, &c.Server)
		case "store":
			p.decodeStore(v, &c.Store)
		case "agents":
			c.Agents = p.decodeAgents(v)
		default:
			if strings.HasPrefix(kv.name, "x-") {
				continue // an extension holding anchors
			}
			p.unknown(kv.key, "", topKeys)
		}
	}
}

func (p *parser) decodeServer(n *yaml.Node, s *Server) {
	for _, kv := range p.pairs(n, "server", 1) {
		field := "server." + kv.name
		v := p.deref(kv.value, 2)
		if v == nil || isNull(v) {
			continue
		}
		switch kv.name {
		case "http":
			if addr, ok := p.str(v, field); ok {
				if err := checkAddr(addr); err != nil {
					p.errorf(v, field, "%q is not a host:port address (like 127.0.0.1:8080 or :8080): %v", addr, err)
				} else {
					s.HTTP = addr
				}
			}
		case "session_timeout":
			p.duration(v, field, &s.SessionTimeout)
		case "max_body_bytes":
			p.size(v, field, &s.MaxBodyBytes)
		case "trusted_origins":
			origins, ok := p.strList(v, field, 3)
			if !ok {
				continue
			}
			s.TrustedOrigins = s.TrustedOrigins[:0]
			for i, o := range origins {
				norm, err := checkOrigin(o)
				if err != nil {
					p.errorf(p.deref(v.Content[i], 3), fmt.Sprintf("%s[%d]", field, i), "%q is not an origin (like https://app.example.com): %v", o, err)
					continue
				}
				s.TrustedOrigins = append(s.TrustedOrigins, norm)
			}
		case "call_timeout":
			p.duration(v, field, &s.CallTimeout)
		case "builtins":
			p.boolean(v, field, &s.Builtins)
		case "log_level":
			if lvl, ok := p.str(v, field); ok {
				if err := s.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
					p.errorf(v, field, "%q is not a log level (debug, info, warn, error)", lvl)
				}
			}
		case "log_format":
			if f, ok := p.str(v, field); ok {
				switch lf := strings.ToLower(f); lf {
				case LogFormatAuto, LogFormatText, LogFormatJSON:
					s.LogFormat = lf
				default:
					p.errorf(v, field, "%q is not a log format (auto, text, json)", f)
				}
			}
		default:
			p.unknown(kv.key, "server", serverKeys)
		}
	}
}

func (p *parser) decodeStore(n *yaml.Node, s *Store) {
	for _, kv := range p.pairs(n, "store", 1) {
		field := "store." + kv.name
		v := p.deref(kv.value, 2)
		if v == nil || isNull(v) {
			continue
		}
		switch kv.name {
		case "url":
			if raw, ok := p.str(v, field); ok {
				if err := checkStoreURL(raw); err != nil {
					p.errorf(v, field, "%v", err)
				} else {
					s.URL = raw
				}
			}
		case "ttl":
			p.duration(v, field, &s.TTL)
		default:
			p.unknown(kv.key, "store", storeKeys)
		}
	}
}

func (p *parser) decodeAgents(n *yaml.Node) []Agent {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "agents", "must be a list of agents (- name: ...), not %s", what(n))
		return nil
	}
	var list []Agent
	for i, item := range n.Content {
		field := fmt.Sprintf("agents[%d]", i)
		v := p.deref(item, 2)
		if v == nil {
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.errorf(item, field, "must be a mapping (name: ..., kind: ...), not %s", what(v))
			continue
		}
		a := Agent{Line: item.Line}
		p.decodeAgent(v, field, &a)
		list = append(list, a)
	}
	if len(list) == 0 {
		return nil
	}
	return list
}

func (p *parser) decodeAgent(n *yaml.Node, field string, a *Agent) {
	d := &a.Definition
	var opts bytes.Buffer
	var haveName, haveKind bool
	for _, kv := range p.pairs(n, field, 3) {
		f := field + "." + kv.name
		if !slices.Contains(agentKeys, kv.name) {
			// A kind-specific option, kept as JSON (null included: the
			// kind decides what it means).
			if opts.Len() == 0 {
				opts.WriteByte('{')
			} else {
				opts.WriteByte(',')
			}
			opts.Write(marshalJSON(kv.name))
			opts.WriteByte(':')
			p.writeJSON(&opts, kv.value, f, 4)
			continue
		}
		v := p.deref(kv.value, 4)
		if v == nil || isNull(v) {
			continue
		}
		switch kv.name {
		case "name":
			haveName = true
			if name, ok := p.str(v, f); ok {
				if err := agents.ValidName(name); err != nil {
					p.errorf(v, f, "%v", err)
				}
				d.Name = name
			}
		case "kind":
			haveKind = true
			p.strTo(v, f, &d.Kind)
		case "version":
			p.strTo(v, f, &d.Version)
		case "title":
			p.strTo(v, f, &d.Title)
		case "description":
			p.strTo(v, f, &d.Description)
		case "tags":
			d.Tags, _ = p.strList(v, f, 5)
		case "metadata":
			d.Metadata = p.strMap(v, f, 5)
		case "timeout":
			p.duration(v, f, &d.Timeout)
		}
	}
	if opts.Len() > 0 {
		opts.WriteByte('}')
		d.Options = json.RawMessage(opts.Bytes())
	}
	if !haveName {
		p.errorf(n, field, "name is required")
	}
	if !haveKind {
		p.errorf(n, field, "kind is required (known kinds: %s)", strings.Join(agents.Kinds(), ", "))
	}
}

// str returns the text of a scalar; "" for null.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, field, "must be a string, not %s", what(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	return n.Value, true
}

func (p *parser) strTo(n *yaml.Node, field string, dst *string) {
	if s, ok := p.str(n, field); ok {
		*dst = s
	}
}

func (p *parser) strList(n *yaml.Node, field string, depth int) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list (like [a, b]), not %s", what(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		v := p.deref(item, depth)
		if v == nil {
			return nil, false
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if v.Kind != yaml.ScalarNode || isNull(v) {
			p.errorf(v, f, "must be a string, not %s", what(v))
			ok = false
			continue
		}
		out = append(out, v.Value)
	}
	return out, ok
}

func (p *parser) strMap(n *yaml.Node, field string, depth int) map[string]string {
	kvs := p.pairs(n, field, depth)
	if kvs == nil {
		return nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := p.deref(kv.value, depth+1)
		if v == nil {
			return nil
		}
		if s, ok := p.str(v, join(field, kv.name)); ok {
			out[kv.name] = s
		}
	}
	return out
}

func (p *parser) boolean(n *yaml.Node, field string, dst *bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, field, "must be true or false, not %s", what(n))
		return
	}
	*dst = b
}

// duration decodes a Go duration string; 0 is accepted without a unit.
func (p *parser) duration(n *yaml.Node, field string, dst *time.Duration) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, field, "must be a duration (like 10s, 2m), not %s", what(n))
		return
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil && n.ShortTag() == "!!int" && isZero(n.Value):
		d = 0
	case err != nil && n.ShortTag() == "!!int":
		p.errorf(n, field, "%q is not a duration (like 10s, 2m): add a unit", n.Value)
		return
	case err != nil:
		p.errorf(n, field, "%q is not a duration (like 10s, 2m)", n.Value)
		return
	case d < 0:
		p.errorf(n, field, "%q is negative", n.Value)
		return
	}
	*dst = d
}

func isZero(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return strings.Trim(s, "0_") == "" && s != ""
}

// size decodes a byte count: an integer, or a string with a unit.
func (p *parser) size(n *yaml.Node, field string, dst *int64) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, field, "must be a size (like 4MiB, 512KiB or 1048576), not %s", what(n))
		return
	}
	if n.ShortTag() == "!!int" {
		var v int64
		if err := n.Decode(&v); err != nil || v < 0 {
			p.errorf(n, field, "%s is not a size in bytes (like 4MiB, 512KiB or 1048576)", n.Value)
			return
		}
		*dst = v
		return
	}
	v, err := parseSize(n.Value)
	if err != nil {
		p.errorf(n, field, "%q is not a size (like 4MiB, 512KiB or 1048576): %v", n.Value, err)
		return
	}
	*dst = v
}

// sizeUnits are the units parseSize accepts, case-insensitively: binary
// (KiB = 1024) and decimal (KB = 1000).
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses "4MiB", "512 KiB", "10MB", "1024" into bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("want a whole number of bytes, optionally with a unit")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("number too large")
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (use KiB, MiB, GiB, KB, MB or GB)", s[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("number too large")
	}
	return n * mult, nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (port != "0" && n == 0) {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// checkOrigin validates an Origin and returns it without a trailing slash.
func checkOrigin(o string) (string, error) {
	o = strings.TrimSuffix(o, "/")
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", errors.New("unparseable")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("scheme must be http or https")
	case u.Host == "":
		return "", errors.New("no host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", errors.New("an origin is scheme://host[:port], with no path")
	}
	return o, nil
}

func checkStoreURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// A *url.Error repeats the URL, password included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme == "" {
		return fmt.Errorf("%q has no scheme (like memory:, sqlite:///path/to/file.db, redis://host:6379/0, postgres://host/db)", contextstore.Redact(raw))
	}
	return nil
}

// writeJSON appends n as JSON to buf: mappings become objects (with string
// keys only), lists arrays, and scalars their resolved YAML type.
func (p *parser) writeJSON(buf *bytes.Buffer, n *yaml.Node, field string, depth int) {
	n = p.deref(n, depth)
	if n == nil {
		buf.WriteString("null")
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i, kv := range p.pairs(n, field, depth) {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(marshalJSON(kv.name))
			buf.WriteByte(':')
			p.writeJSON(buf, kv.value, join(field, kv.name), depth+1)
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			p.writeJSON(buf, item, fmt.Sprintf("%s[%d]", field, i), depth+1)
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		buf.Write(p.scalarJSON(n, field))
	default:
		p.errorf(n, field, "unexpected YAML node")
		buf.WriteString("null")
	}
}

func (p *parser) scalarJSON(n *yaml.Node, field string) []byte {
	var v any
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return []byte("null")
	case "!!str", "!!timestamp", "!!merge":
		return marshalJSON(n.Value)
	case "!!bool":
		var b bool
		if n.Decode(&b) != nil {
			p.errorf(n, field, "%q is not a boolean", n.Value)
		}
		v = b
	case "!!int":
		if n.Decode(&v) != nil {
			p.errorf(n, field, "%q is not an integer", n.Value)
		}
	case "!!float":
		var f float64
		if n.Decode(&f) != nil {
			p.errorf(n, field, "%q is not a number", n.Value)
		} else if math.IsInf(f, 0) || math.IsNaN(f) {
			p.errorf(n, field, "%s cannot be represented in JSON", n.Value)
			f = 0
		}
		v = f
	default:
		p.errorf(n, field, "YAML tag %s is not supported (use a string, number, boolean, list or mapping)", tag)
		return []byte("null")
	}
	return marshalJSON(v)
}

// marshalJSON encodes a string, bool or number without escaping HTML.
func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null") // unreachable for the types passed here
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
