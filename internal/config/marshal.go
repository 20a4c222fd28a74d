package config

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"mcptower/agents"
)

// Marshal returns c in the config file's format, with every server and
// store field written out (the effective configuration). Parse of the
// result gives back c, except Path and the agents' Line; a "$" in a value is
// written "$$" for that reason. Print c.Redacted().Marshal(), not c's.
func (c *Config) Marshal() ([]byte, error) {
	s := c.Server
	server := mapping(
		"http", strNode(s.HTTP, true),
		"session_timeout", plain(formatDuration(s.SessionTimeout)),
		"max_body_bytes", plain(formatSize(s.MaxBodyBytes)),
		"trusted_origins", strList(s.TrustedOrigins),
		"call_timeout", plain(formatDuration(s.CallTimeout)),
		"builtins", plain(strconv.FormatBool(s.Builtins)),
		"log_level", plain(strings.ToLower(s.LogLevel.String())),
		"log_format", strNode(s.LogFormat, true),
	)
	store := mapping()
	if c.Store.URL != "" {
		store.Content = append(store.Content, strNode("url", false), strNode(c.Store.URL, true))
	}
	store.Content = append(store.Content, strNode("ttl", false), plain(formatDuration(c.Store.TTL)))
	root := mapping("server", server, "store", store)
	if len(c.Agents) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range c.Agents {
			n, err := agentNode(&c.Agents[i].Definition)
			if err != nil {
				return nil, fmt.Errorf("marshal config: agents[%d]: %w", i, err)
			}
			list.Content = append(list.Content, n)
		}
		root.Content = append(root.Content, strNode("agents", false), list)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

func agentNode(d *agents.Definition) (*yaml.Node, error) {
	n := mapping("name", strNode(d.Name, true), "kind", strNode(d.Kind, true))
	add := func(k string, v *yaml.Node) { n.Content = append(n.Content, strNode(k, false), v) }
	if d.Version != "" {
		add("version", strNode(d.Version, true))
	}
	if d.Title != "" {
		add("title", strNode(d.Title, true))
	}
	if d.Description != "" {
		add("description", strNode(d.Description, true))
	}
	if d.Tags != nil {
		add("tags", strList(d.Tags))
	}
	if d.Metadata != nil {
		m := mapping()
		keys := make([]string, 0, len(d.Metadata))
		for k := range d.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			m.Content = append(m.Content, strNode(k, false), strNode(d.Metadata[k], true))
		}
		m.Style = yaml.FlowStyle
		add("metadata", m)
	}
	if d.Timeout != 0 {
		add("timeout", plain(formatDuration(d.Timeout)))
	}
	if len(d.Options) == 0 {
		return n, nil
	}
	opts, err := jsonToNode(d.Options, true)
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	if opts.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("options are not a JSON object")
	}
	for i := 0; i+1 < len(opts.Content); i += 2 {
		if k := opts.Content[i].Value; slices.Contains(agentKeys, k) {
			return nil, fmt.Errorf("option %q has the name of a common field", k)
		}
	}
	n.Content = append(n.Content, opts.Content...)
	return n, nil
}

func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, strNode(kv[i].(string), false), kv[i+1].(*yaml.Node))
	}
	return n
}

// plain is a scalar whose type YAML resolves from its text.
func plain(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	n.Tag = n.ShortTag()
	return n
}

func strList(list []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, s := range list {
		n.Content = append(n.Content, strNode(s, true))
	}
	return n
}

// formatDuration writes d as Go does, without the zero units Go adds:
// 30m rather than 30m0s, 720h rather than 720h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
