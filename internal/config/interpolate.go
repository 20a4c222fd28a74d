package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// interpolate expands ${VAR} references in every scalar value of the tree
// (never in keys), in place. Aliases are not followed: the node they point
// to is expanded where it is defined. An unquoted scalar that changes is
// typed again from its new text.
func (p *parser) interpolate(n *yaml.Node, field string, env func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.interpolate(c, field, env)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p.interpolate(n.Content[i+1], join(field, n.Content[i].Value), env)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.interpolate(c, fmt.Sprintf("%s[%d]", field, i), env)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		s, err := expand(n.Value, env)
		if err != nil {
			p.errorf(n, field, "%v", err)
			return
		}
		if s == n.Value {
			return
		}
		n.Value = s
		const keepTag = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
		if n.Style&keepTag == 0 {
			n.Tag = ""
			n.Tag = n.ShortTag() // resolved from the new text
		}
	}
}

// expand replaces ${VAR} and ${VAR:-default} in s using env, and $$ by $.
// A "$" followed by anything else is kept. The default is taken literally,
// up to the first "}".
func expand(s string, env func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $$ for a literal $)")
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !isVarName(name) {
				return "", fmt.Errorf("${%s}: %q is not a variable name; write ${VAR} or ${VAR:-default} (or $$ for a literal $)", expr, name)
			}
			v, ok := env(name)
			switch {
			case hasDef && v == "":
				v = def
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set (set it, or give a default: ${%s:-value})", name, name)
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

// isVarName reports whether s is a shell-style variable name.
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
