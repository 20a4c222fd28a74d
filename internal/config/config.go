// Package config reads mcptower's one YAML configuration file.
//
// A complete file, with every field at its default except where noted:
//
//	server:
//	  http: 127.0.0.1:8080          # listen address (host:port)
//	  session_timeout: 30m          # idle MCP session eviction; 0 = never
//	  max_body_bytes: 4MiB          # request body limit; 0 = none
//	  trusted_origins: []           # extra Origins allowed cross-origin
//	  call_timeout: 60s             # default per-call timeout; 0 = none
//	  builtins: true                # expose the context tools and agents_search
//	  log_level: info               # debug, info, warn or error
//	  log_format: auto              # auto (tint on a terminal, JSON otherwise), text or json
//	store:
//	  url: ""                       # "memory:", sqlite:///path, redis://..., postgres://...; "" = default sqlite file
//	  ttl: 720h                     # how long a session lives after its last append; 0 = forever
//	agents:                         # default: ask (kind sampling, the client's own model)
//	  - name: shout                 # letters, digits, '_', '-', '.'
//	    kind: builtin               # a registered agent kind
//	    version: 1.0.0
//	    title: Shout
//	    description: Echoes its input.
//	    tags: [demo]
//	    metadata: {task_type: demo}
//	    timeout: 10s
//	    tool: echo                  # every other key is an option of the kind
//
// Every field is optional. Durations are Go durations (10s, 2m, 1h30m); sizes
// are byte counts or strings with a unit (512KiB, 4MiB, 1GiB, or decimal KB,
// MB, GB). Top-level keys starting with "x-" are ignored, so that they can
// hold YAML anchors shared by agents (merge keys "<<: *anchor" work).
//
// YAML reads "key: memory:" as a nested mapping: quote values that end in a
// colon (url: "memory:").
//
// Scalar values may refer to environment variables: ${VAR}, or
// ${VAR:-default} used when VAR is unset or empty; "$$" is a literal "$", and
// a "$" not followed by "{" or "$" is kept as is. An unset variable without a
// default is an error. Interpolation happens on the parsed YAML tree, in
// values only (never keys), so a variable can never add structure to the
// file. An unquoted value containing a reference is typed after
// substitution (a port from ${PORT} is a number; an empty value is null,
// which leaves the field at its default); quote it ("${VAR}") to keep it a
// string. Inside a flow collection ([a, b] or {k: v}) a reference must be
// quoted, since YAML reserves '{' and '}' there.
//
// Errors name the file, the line and the field:
//
//	mcptower.yaml:12: agents[1].timeout: "10 seconds" is not a duration (like 10s, 2m)
//
// Parse checks everything it can without building agents; Validate builds
// every agent through its kind, which catches unknown kinds and options.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"mcptower/agents"
	"mcptower/internal/errs"
)

// Config is the content of a config file: how the server runs, where the
// context lives, and the agents to register.
type Config struct {
	// Server configures the MCP and REST endpoints and logging.
	Server Server `json:"server"`
	// Store selects the context store.
	Store Store `json:"store"`
	// Agents are the configured agents, in file order. Nil means none.
	Agents []Agent `json:"agents,omitempty"`
	// Path is the name of the file the config came from (the name given to
	// Parse); "" if none, as for Default.
	Path string `json:"path,omitempty"`
}

// Server configures the server process. The zero value is not Default's:
// a field missing from a file keeps Default's value, while a field set to
// its zero value means what each field's comment says.
type Server struct {
	// HTTP is the address to listen on, host:port (":8080" for every
	// interface). Default 127.0.0.1:8080.
	HTTP string `json:"http"`
	// SessionTimeout evicts MCP sessions idle for this long. Zero means
	// sessions are never evicted. Default 30m.
	SessionTimeout time.Duration `json:"session_timeout"`
	// MaxBodyBytes limits the size of a request body. Zero means no limit.
	// Default 4 MiB.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// TrustedOrigins are Origins (scheme://host[:port]) allowed to call the
	// server cross-origin, in addition to the server's own. Default none.
	TrustedOrigins []string `json:"trusted_origins,omitempty"`
	// CallTimeout bounds an agent call whose agent sets no timeout of its
	// own. Zero means no limit. Default 60s.
	CallTimeout time.Duration `json:"call_timeout"`
	// Builtins exposes the built-in context tools and agents_search.
	// Default true.
	Builtins bool `json:"builtins"`
	// LogLevel is the minimum level logged: debug, info, warn or error. The
	// zero value is info, the default.
	LogLevel slog.Level `json:"log_level"`
	// LogFormat is how logs are written to stderr: "auto" (colored text on
	// a terminal, JSON otherwise), "text" or "json". "" means auto, the
	// default.
	LogFormat string `json:"log_format"`
}

// Store configures the context store.
type Store struct {
	// URL selects the backend: "memory:", "sqlite:///path/to/file.db",
	// "redis://host:6379/0", "postgres://user:pass@host/db". "" means the
	// default, a sqlite file in the user's data directory, chosen by the
	// caller. Default "".
	URL string `json:"url,omitempty"`
	// TTL is how long a session is kept after its last append. Zero means
	// forever. Default 720h (30 days). A "ttl" query parameter in URL
	// overrides it.
	TTL time.Duration `json:"ttl"`
}

// Agent is one entry of the agents list: the definition handed to
// agents.Build and where it was written.
type Agent struct {
	agents.Definition
	// Line is the line of the agent's list item in the file; 0 if the agent
	// did not come from a file.
	Line int `json:"line,omitempty"`
}

// Log formats accepted in Server.LogFormat.
const (
	LogFormatAuto = "auto"
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Default returns the configuration used without a config file: HTTP on
// 127.0.0.1:8080, the default store, the built-ins, and one agent, "ask"
// (kind sampling: it asks the connected client's own model, so it needs no
// API key). A file that lists agents replaces it; a file without an agents
// key keeps it.
func Default() *Config {
	return &Config{
		Agents: []Agent{DefaultAsk()},
		Server: Server{
			HTTP:           "127.0.0.1:8080",
			SessionTimeout: 30 * time.Minute,
			MaxBodyBytes:   4 << 20,
			CallTimeout:    60 * time.Second,
			Builtins:       true,
			LogLevel:       slog.LevelInfo,
			LogFormat:      LogFormatAuto,
		},
		Store: Store{TTL: 30 * 24 * time.Hour},
	}
}

// DefaultAsk is the agent of Default: "ask", of kind sampling (the kind
// must be registered, by importing mcptower/agents/sampling, for Validate).
func DefaultAsk() Agent {
	return Agent{Definition: agents.Definition{
		Name:        "ask",
		Kind:        "sampling",
		Title:       "Ask the client's model",
		Description: "Asks the connected client's own model (MCP sampling) and returns its answer. Needs no API key; the client must support sampling.",
		Tags:        []string{"llm", "sampling"},
	}}
}

// fileNames are the names Find looks for, in order.
var fileNames = []string{"mcptower.yaml", "mcptower.yml"}

// Find returns the config file to use when none was named: "mcptower.yaml"
// or "mcptower.yml" in the working directory, or "" (use Default) if
// neither exists. Both existing is an error, since either could be the one
// being edited.
func Find() (string, error) {
	var found []string
	for _, name := range fileNames {
		_, err := os.Stat(name)
		switch {
		case err == nil:
			found = append(found, name)
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("find config: %w", err)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	default:
		return "", errs.E(errs.Invalid, "find config: both %s and %s exist; remove one or pass --config", found[0], found[1])
	}
}

// Load reads the file at path and parses it, interpolating variables from
// the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Error is one problem in a config file, located by line and field.
// Parse and Validate return every problem they find, joined by errors.Join;
// errors.As finds the first *Error. Its Err carries the errs.Invalid code
// unless an agent kind said otherwise.
type Error struct {
	// File is the config's name (Config.Path); "" if unknown.
	File string
	// Line is 1-based; 0 if unknown.
	Line int
	// Field is the path of the field, like "agents[1].timeout"; "" for the
	// file as a whole.
	Field string
	// Err is what is wrong.
	Err error
}

// Error formats e as "file:line: field: message", leaving out the parts
// that are unknown ("line 3: ..." without a file).
func (e *Error) Error() string {
	var b []byte
	b = append(b, e.File...)
	switch {
	case e.Line > 0 && e.File == "":
		b = append(b, "line "...)
		b = strconv.AppendInt(b, int64(e.Line), 10)
	case e.Line > 0:
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(e.Line), 10)
	}
	if len(b) > 0 {
		b = append(b, ": "...)
	}
	if e.Field != "" {
		b = append(b, e.Field...)
		b = append(b, ": "...)
	}
	b = append(b, e.Err.Error()...)
	return string(b)
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Validate checks what Parse cannot: it builds every agent through its kind
// (then closes and discards the instances), so that an unknown kind, an
// unknown or invalid option and a bad version are reported with the line of
// the agent, and it reports agents registered twice under the same
// name@version, naming both lines. Kinds must be registered (imported)
// before Validate is called. A kind that connects to something to list its
// agents (an upstream MCP server) does so here, within ctx.
func (c *Config) Validate(ctx context.Context) error {
	var problems []error
	seen := map[string]int{} // name@version -> index of the agent that has it
	for i := range c.Agents {
		a := &c.Agents[i]
		field := fmt.Sprintf("agents[%d]", i)
		def := a.Definition
		built, err := agents.Build(ctx, &def)
		var refs []string
		if err != nil {
			problems = append(problems, &Error{File: c.Path, Line: a.Line, Field: field, Err: err})
			refs = []string{def.Name + "@" + cmpOr(def.Version, agents.DefaultVersion)}
		}
		for _, b := range built {
			refs = append(refs, b.Spec().Ref())
			if cl, ok := b.(io.Closer); ok {
				_ = cl.Close()
			}
		}
		for _, ref := range refs {
			first, dup := seen[ref]
			if !dup {
				seen[ref] = i
				continue
			}
			var msg error
			if first == i {
				msg = errs.E(errs.Invalid, "agent %s is defined twice by this entry", ref)
			} else {
				msg = errs.E(errs.Invalid, "agent %s is already defined by agents[%d]%s", ref, first, lineSuffix(c.Agents[first].Line))
			}
			problems = append(problems, &Error{File: c.Path, Line: a.Line, Field: field, Err: msg})
		}
	}
	return errors.Join(problems...)
}

func lineSuffix(line int) string {
	if line <= 0 {
		return ""
	}
	return " at line " + strconv.Itoa(line)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
