package mcpkind

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// Options are the kind-specific fields of an "mcp" agent definition. Exactly
// one of Command (stdio) and URL (Streamable HTTP) is set.
//
//	agents:
//	  - name: everything
//	    kind: mcp
//	    command: npx
//	    args: ["-y", "@modelcontextprotocol/server-everything@2026.8.31", "stdio"]
//	    exclude: ["get-env"]
//	  - name: tower
//	    kind: mcp
//	    url: http://127.0.0.1:8081/mcp
//	    bearer_token_env: TOWER_TOKEN
//	    start: lazy
type Options struct {
	// Command is the program of a stdio upstream, looked up in PATH.
	Command string `json:"command,omitempty"`
	// Args are Command's arguments. They appear in logs: pass secrets in
	// Env, not here.
	Args []string `json:"args,omitempty"`
	// Env are variables set for Command, on top of a minimal environment
	// taken from mcptower's (HOME, LOGNAME, PATH, SHELL, TERM, TMPDIR,
	// USER, LANG; the convention of the MCP SDKs), so that mcptower's own
	// secrets do not reach upstreams. Write secrets as ${VAR} in the config
	// file: the config loader interpolates them, and redacts keys that look
	// like secrets.
	Env map[string]string `json:"env,omitempty"`
	// InheritEnv passes all of mcptower's environment to Command instead of
	// the minimal one.
	InheritEnv bool `json:"inherit_env,omitempty"`
	// Cwd is Command's working directory; empty means mcptower's.
	Cwd string `json:"cwd,omitempty"`

	// URL is the Streamable HTTP endpoint of an HTTP upstream.
	URL string `json:"url,omitempty"`
	// Headers are sent with every HTTP request (values may use ${VAR} in
	// the config file).
	Headers map[string]string `json:"headers,omitempty"`
	// BearerTokenEnv names an environment variable holding a token sent as
	// "Authorization: Bearer <token>"; it is read when connecting, so the
	// token never appears in the config.
	BearerTokenEnv string `json:"bearer_token_env,omitempty"`

	// Prefix starts every agent name; nil means the definition's name, ""
	// means none (the upstream's tool names as they are).
	Prefix *string `json:"prefix,omitempty"`
	// Separator goes between Prefix and the tool name; nil means "_".
	Separator *string `json:"separator,omitempty"`
	// Include lists the upstream tools to expose, by name or path.Match
	// pattern ("get_*"); empty means all.
	Include []string `json:"include,omitempty"`
	// Exclude lists upstream tools to hide, by name or pattern; it wins over
	// Include.
	Exclude []string `json:"exclude,omitempty"`

	// Start is "eager" (the default: Start connects and lists the tools, and
	// fails if it cannot, so a broken upstream fails the config) or "lazy"
	// (Start returns at once; the connection is made in the background, the
	// tools appear when it is up, and calls made meanwhile wait for it).
	Start string `json:"start,omitempty"`
	// Protocol is the MCP protocol version to ask for; empty means
	// 2025-11-25 (sessions). "2026-07-28" asks for the stateless protocol
	// and falls back to 2025-11-25 when the upstream does not speak it.
	Protocol string `json:"protocol,omitempty"`
	// ConnectTimeout bounds starting (or dialling) the upstream and the
	// initialize handshake; zero means 60s (npx may download the server).
	ConnectTimeout Duration `json:"connect_timeout,omitempty"`
	// PingInterval is how often a connected upstream is pinged; one that
	// does not answer within the interval (at most 10s) is reconnected.
	// Nil means 30s; zero turns pings off.
	PingInterval *Duration `json:"ping_interval,omitempty"`
	// RestartBackoff is the delay before the first reconnection (restart of
	// a stdio process) after a failure; it doubles on every consecutive
	// failure up to RestartMaxBackoff. Zero means 500ms.
	RestartBackoff Duration `json:"restart_backoff,omitempty"`
	// RestartMaxBackoff caps the delay between reconnections; zero means 30s.
	RestartMaxBackoff Duration `json:"restart_max_backoff,omitempty"`
	// LogLevel is the minimum level of the log messages the upstream is
	// asked to send (logging/setLevel, when it declares the logging
	// capability): debug, info, notice, warning, error, critical, alert or
	// emergency, or "off" to not ask (an upstream then decides itself, and
	// go-sdk servers send nothing). Empty means info.
	LogLevel string `json:"log_level,omitempty"`
	// ForwardSession sends the call's context session to the upstream in
	// _meta["mcptower/session_id"], so that an upstream mcptower records its
	// work in the same session. Off by default: a session id lets its holder
	// read the session's history, so only share it with upstreams you trust.
	ForwardSession bool `json:"forward_session,omitempty"`
	// LeanCalls, for an HTTP upstream whose session speaks a 2025 protocol
	// version, makes tools/call requests with mcptower's own lean client
	// (one POST, its event stream read in place) instead of the SDK's client,
	// which stays in charge of the session and of everything else. Nil
	// means true; false sends every call through the SDK client.
	LeanCalls *bool `json:"lean_calls,omitempty"`
}

// Start modes.
const (
	StartEager = "eager"
	StartLazy  = "lazy"
)

// Defaults applied to zero Options fields.
const (
	DefaultConnectTimeout    = 60 * time.Second
	DefaultPingInterval      = 30 * time.Second
	DefaultRestartBackoff    = 500 * time.Millisecond
	DefaultRestartMaxBackoff = 30 * time.Second
	DefaultSeparator         = "_"
	// DefaultProtocol is the protocol version asked for when Options.Protocol
	// is empty.
	DefaultProtocol = "2025-11-25"
)

// settings are Options resolved against the definition and the defaults.
type settings struct {
	Options
	prefix         string // with the separator, "" for none
	pingInterval   time.Duration
	connectTimeout time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	leanCalls      bool
}

func parseOptions(def *agents.Definition) (*settings, error) {
	var o Options
	if err := def.DecodeOptions(&o); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return errs.E(errs.Invalid, "agent %q (kind mcp): "+format, append([]any{def.Name}, args...)...)
	}
	switch {
	case o.Command == "" && o.URL == "":
		return nil, bad("set command (a stdio server) or url (a Streamable HTTP server)")
	case o.Command != "" && o.URL != "":
		return nil, bad("set command or url, not both")
	}
	if o.Command != "" && (len(o.Headers) > 0 || o.BearerTokenEnv != "") {
		return nil, bad("headers and bearer_token_env apply to url, not command")
	}
	if o.URL != "" && (len(o.Args) > 0 || len(o.Env) > 0 || o.Cwd != "" || o.InheritEnv) {
		return nil, bad("args, env, inherit_env and cwd apply to command, not url")
	}
	if o.URL != "" && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, bad("url %q: want http:// or https://", o.URL)
	}
	for k := range o.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, bad("env: invalid variable name %q", k)
		}
	}
	switch o.Start {
	case "":
		o.Start = StartEager
	case StartEager, StartLazy:
	default:
		return nil, bad("start %q: want eager or lazy", o.Start)
	}
	switch o.LogLevel {
	case "":
		o.LogLevel = "info"
	case "off", "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency":
	default:
		return nil, bad("log_level %q: want debug, info, notice, warning, error, critical, alert, emergency or off", o.LogLevel)
	}
	if o.Protocol == "" {
		o.Protocol = DefaultProtocol
	}
	for _, list := range [][]string{o.Include, o.Exclude} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return nil, bad("tool pattern %q: %v", p, err)
			}
		}
	}
	s := &settings{Options: o}
	prefix, sep := def.Name, DefaultSeparator
	if o.Prefix != nil {
		prefix = *o.Prefix
	}
	if o.Separator != nil {
		sep = *o.Separator
	}
	if prefix != "" {
		s.prefix = prefix + sep
		if err := agents.ValidName(s.prefix + "x"); err != nil || len(s.prefix) > 96 {
			return nil, bad("prefix %q and separator %q must be at most 96 letters, digits, '_', '-' or '.'", prefix, sep)
		}
	}
	s.connectTimeout = cmpOr(o.ConnectTimeout.D(), DefaultConnectTimeout)
	s.pingInterval = DefaultPingInterval
	if o.PingInterval != nil {
		s.pingInterval = o.PingInterval.D()
	}
	s.backoff = cmpOr(o.RestartBackoff.D(), DefaultRestartBackoff)
	s.maxBackoff = max(cmpOr(o.RestartMaxBackoff.D(), DefaultRestartMaxBackoff), s.backoff)
	if o.LeanCalls != nil && o.Command != "" {
		return nil, bad("lean_calls applies to url, not command")
	}
	s.leanCalls = o.URL != "" && (o.LeanCalls == nil || *o.LeanCalls)
	for _, d := range []time.Duration{s.connectTimeout, s.pingInterval, s.backoff} {
		if d < 0 {
			return nil, bad("durations must not be negative")
		}
	}
	return s, nil
}

// selected reports whether the upstream tool name passes Include and Exclude.
func (s *settings) selected(tool string) bool {
	match := func(patterns []string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(p, tool); ok {
				return true
			}
		}
		return false
	}
	if len(s.Include) > 0 && !match(s.Include) {
		return false
	}
	return !match(s.Exclude)
}

// target describes the upstream for messages: "node index.js stdio", or
// the URL without its query and user info (which may hold secrets).
func (s *settings) target() string {
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil {
			return "(unparsable url)"
		}
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		return u.String()
	}
	return strings.Join(append([]string{s.Command}, s.Args...), " ")
}

// baseEnv are the variables a stdio upstream gets from mcptower's
// environment unless InheritEnv is set.
var baseEnv = []string{"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "USER", "LANG"}

// environ is the environment of a stdio upstream.
func (s *settings) environ() []string {
	var env []string
	if s.InheritEnv {
		env = os.Environ()
	} else {
		for _, k := range baseEnv {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// Duration is a time.Duration written as a Go duration string ("10s",
// "1m30s") in options; the number 0 is accepted too.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON accepts a duration string or 0.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "0" || string(data) == "null" {
		*d = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s is not a duration (like 10s, 2m)", data)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 10s, 2m)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}
