package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"mcptower/agents"
	_ "mcptower/agents/sampling" // registers the "sampling" kind (Default's ask)
	"mcptower/internal/config"
	"mcptower/internal/errs"
	_ "mcptower/tools" // registers the "builtin" kind
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env returns a lookup function over vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// withDefaults returns Default() changed by edit.
func withDefaults(path string, edit func(*config.Config)) *config.Config {
	c := config.Default()
	c.Path = path
	if edit != nil {
		edit(c)
	}
	return c
}

func agent(line int, name, kind, options string) config.Agent {
	a := config.Agent{Line: line, Definition: agents.Definition{Name: name, Kind: kind}}
	if options != "" {
		a.Options = json.RawMessage(options)
	}
	return a
}

// jsonText compares options as JSON text, so that failures are readable.
// (Empty options are left to cmpopts.EquateEmpty.)
var jsonText = cmp.FilterValues(func(a, b json.RawMessage) bool { return len(a) > 0 || len(b) > 0 },
	cmp.Transformer("json", func(m json.RawMessage) string { return string(m) }))

func TestDefault(t *testing.T) {
	c := config.Default()
	want := &config.Config{
		Server: config.Server{
			HTTP:           "127.0.0.1:8080",
			SessionTimeout: 30 * time.Minute,
			MaxBodyBytes:   4 << 20,
			CallTimeout:    time.Minute,
			Builtins:       true,
			LogLevel:       slog.LevelInfo,
			LogFormat:      "auto",
		},
		Store: config.Store{TTL: 720 * time.Hour},
		Agents: []config.Agent{{Definition: agents.Definition{
			Name:        "ask",
			Kind:        "sampling",
			Title:       "Ask the client's model",
			Description: "Asks the connected client's own model (MCP sampling) and returns its answer. Needs no API key; the client must support sampling.",
			Tags:        []string{"llm", "sampling"},
		}}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := c.Validate(context.Background()); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestLoadTestdata(t *testing.T) {
	full := withDefaults("testdata/full.yaml", func(c *config.Config) {
		c.Server = config.Server{
			HTTP:           "127.0.0.1:9090",
			SessionTimeout: 15 * time.Minute,
			MaxBodyBytes:   8 << 20,
			TrustedOrigins: []string{"https://app.example.com", "http://localhost:5173"},
			CallTimeout:    2 * time.Minute,
			Builtins:       true,
			LogLevel:       slog.LevelDebug,
			LogFormat:      "json",
		}
		c.Store = config.Store{URL: "sqlite:///var/lib/mcptower/context.db", TTL: 720 * time.Hour}
		shout := agent(24, "shout", "builtin", `{"tool":"echo"}`)
		shout.Version = "1.0.0"
		shout.Title = "Shout"
		shout.Description = "Echoes its text back, to check a connection."
		shout.Tags = []string{"demo", "test"}
		shout.Metadata = map[string]string{"task_type": "demo"}
		shout.Timeout = 10 * time.Second
		recall := agent(35, "recall", "builtin", `{"tool":"context_history"}`)
		recall.Version = "2.1.0"
		recall.Description = "Reads the conversation's recorded context."
		recall.Tags = []string{"demo"}
		recall.Metadata = map[string]string{"task_type": "demo", "owner": "platform"}
		c.Agents = []config.Agent{shout, recall}
	})
	minimal := withDefaults("testdata/minimal.yaml", func(c *config.Config) {
		c.Agents = []config.Agent{agent(3, "echo", "builtin", `{"tool":"echo"}`)}
	})
	envDefaults := withDefaults("testdata/env.yaml", func(c *config.Config) {
		c.Store.URL = "memory:"
		a := agent(8, "echo", "builtin", `{"tool":"echo"}`)
		a.Description = "Costs $0 to call."
		c.Agents = []config.Agent{a}
	})
	tests := []struct {
		path string
		env  map[string]string
		want *config.Config
	}{
		{"testdata/full.yaml", nil, full},
		{"testdata/minimal.yaml", nil, minimal},
		{"testdata/env.yaml", nil, envDefaults},
		{"testdata/env.yaml", map[string]string{"MCPTOWER_HTTP": ":9000", "LOG_LEVEL": "warn", "STORE_URL": "redis://localhost:6379/0", "ECHO_TOOL": "context_search"},
			withDefaults("testdata/env.yaml", func(c *config.Config) {
				c.Server.HTTP = ":9000"
				c.Server.LogLevel = slog.LevelWarn
				c.Store.URL = "redis://localhost:6379/0"
				a := agent(8, "echo", "builtin", `{"tool":"context_search"}`)
				a.Description = "Costs $0 to call."
				c.Agents = []config.Agent{a}
			})},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			data, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(tt.path, data, env(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, c, jsonText); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
			if err := c.Validate(context.Background()); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	c, err := config.Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != "testdata/minimal.yaml" || len(c.Agents) != 1 {
		t.Errorf("Load = %+v", c)
	}
	if _, err := config.Load("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want *config.Config
	}{
		{"empty", "", nil, withDefaults("c.yaml", nil)},
		{"comment only", "# nothing yet\n", nil, withDefaults("c.yaml", nil)},
		{"empty document", "---\n", nil, withDefaults("c.yaml", nil)},
		{"empty mapping", "{}\n", nil, withDefaults("c.yaml", nil)},
		{"null sections keep defaults", "server:\nstore:\nagents:\n", nil, withDefaults("c.yaml", nil)},
		{"null field keeps default", "server:\n  http:\n  session_timeout: ~\n", nil, withDefaults("c.yaml", nil)},
		{"empty variable keeps default", "server:\n  http: ${ADDR:-}\n", nil, withDefaults("c.yaml", nil)},
		{"zero values", `
server:
  session_timeout: 0
  max_body_bytes: 0
  call_timeout: 0s
  builtins: false
store:
  ttl: 0
`, nil, withDefaults("c.yaml", func(c *config.Config) {
			c.Server.SessionTimeout = 0
			c.Server.MaxBodyBytes = 0
			c.Server.CallTimeout = 0
			c.Server.Builtins = false
			c.Store.TTL = 0
		})},
		{"sizes", "server:\n  max_body_bytes: 512KiB\n", nil, withDefaults("c.yaml", func(c *config.Config) { c.Server.MaxBodyBytes = 512 << 10 })},
		{"decimal size", "server:\n  max_body_bytes: 2 MB\n", nil, withDefaults("c.yaml", func(c *config.Config) { c.Server.MaxBodyBytes = 2e6 })},
		{"integer size", "server:\n  max_body_bytes: 1_048_576\n", nil, withDefaults("c.yaml", func(c *config.Config) { c.Server.MaxBodyBytes = 1 << 20 })},
		{"size as string integer", "server:\n  max_body_bytes: '1000'\n", nil, withDefaults("c.yaml", func(c *config.Config) { c.Server.MaxBodyBytes = 1000 })},
		{"log settings are case-insensitive", "server:\n  log_level: WARN\n  log_format: Text\n", nil, withDefaults("c.yaml", func(c *config.Config) {
			c.Server.LogLevel = slog.LevelWarn
			c.Server.LogFormat = "text"
		})},
		{"origin trailing slash", "server:\n  trusted_origins: ['https://a.example:8443/']\n", nil, withDefaults("c.yaml", func(c *config.Config) {
			c.Server.TrustedOrigins = []string{"https://a.example:8443"}
		})},
		{"typed variables", "server:\n  builtins: ${B}\n  max_body_bytes: ${SIZE}\n  call_timeout: ${T}\n", map[string]string{"B": "false", "SIZE": "1MiB", "T": "5s"},
			withDefaults("c.yaml", func(c *config.Config) {
				c.Server.Builtins = false
				c.Server.MaxBodyBytes = 1 << 20
				c.Server.CallTimeout = 5 * time.Second
			})},
		{"options keep YAML types and order", `
agents:
  - name: a
    kind: builtin
    zeta: 1
    alpha: [x, 2, 2.5, true, null]
    nested: {k: v, "quoted: key": {deep: yes}}
    when: 2001-12-14
    html: <b>&</b>
`, nil, withDefaults("c.yaml", func(c *config.Config) {
			c.Agents = []config.Agent{agent(3, "a", "builtin",
				`{"zeta":1,"alpha":["x",2,2.5,true,null],"nested":{"k":"v","quoted: key":{"deep":"yes"}},"when":"2001-12-14","html":"<b>&</b>"}`)}
		})},
		{"version as number", "agents:\n  - {name: a, kind: builtin, version: 2.10}\n", nil, withDefaults("c.yaml", func(c *config.Config) {
			a := agent(2, "a", "builtin", "")
			a.Version = "2.10"
			c.Agents = []config.Agent{a}
		})},
		{"merge keys and aliases", `
x-base: &base
  kind: builtin
  tool: echo
  tags: [t]
x-more: &more
  description: from more
  tool: context_history
agents:
  - <<: [*base, *more]
    name: a
  - <<: *base
    name: b
    tool: context_search
`, nil, withDefaults("c.yaml", func(c *config.Config) {
			a := agent(10, "a", "builtin", `{"tool":"echo"}`)
			a.Tags = []string{"t"}
			a.Description = "from more"
			b := agent(12, "b", "builtin", `{"tool":"context_search"}`)
			b.Tags = []string{"t"}
			c.Agents = []config.Agent{a, b}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("c.yaml", []byte(tt.yaml), env(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, c, jsonText, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// load parses and validates, as mcptower does.
func load(yaml string, vars map[string]string) (*config.Config, error) {
	c, err := config.Parse("bad.yaml", []byte(yaml), env(vars))
	if err != nil {
		return nil, err
	}
	return c, c.Validate(context.Background())
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		// want are the lines of the error, each "line: text", in order;
		// the text need only be a substring of the message after
		// "bad.yaml:line: ".
		want []string
	}{
		{"bad YAML syntax", "server:\n  http: 127.0.0.1:8080\n  call_timeout: [1s\n", nil,
			[]string{`3: invalid YAML: did not find expected ',' or ']'`}},
		{"bad indentation", "a: 1\nb:\n  - x\n y: 2\n", nil,
			[]string{`4: invalid YAML: did not find expected key`}},
		{"unclosed flow mapping", "server: {http: ':80'\n\n", nil,
			[]string{`1: invalid YAML: did not find expected ',' or '}'`}},
		{"unclosed list at end", "server:\n  trusted_origins: [\n", nil,
			[]string{`2: invalid YAML: did not find expected node content`}},
		{"unknown anchor", "x-a: &a {}\nagents:\n  - *b\n", nil,
			[]string{`3: invalid YAML: unknown anchor 'b' referenced`}},
		{"unquoted URL scheme", "store:\n  url: memory:\n", nil,
			[]string{`2: invalid YAML: mapping values are not allowed in this context`}},
		{"tab indentation", "server:\n\thttp: x\n", nil,
			[]string{`2: invalid YAML: found character that cannot start any token`}},
		{"two documents", "server: {}\n---\nagents: []\n", nil,
			[]string{`2: a config file holds one YAML document`}},
		{"not a mapping", "- a\n- b\n", nil,
			[]string{`1: the file must be a mapping with keys server, store, agents, not a list`}},
		{"unknown top-level key", "server:\n  http: :80\nagnets: []\n", nil,
			[]string{`3: unknown field "agnets"; known: server, store, agents`}},
		{"unknown server key", "server:\n  htpp: :80\n", nil,
			[]string{`2: server: unknown field "htpp"; known: http, session_timeout, max_body_bytes, trusted_origins, call_timeout, builtins, log_level, log_format`}},
		{"unknown store key", "store:\n  uri: 'memory:'\n", nil,
			[]string{`2: store: unknown field "uri"; known: url, ttl`}},
		{"duplicate key", "server:\n  http: :80\n  http: :81\n", nil,
			[]string{`3: server.http: set twice (first at line 2)`}},
		{"bad duration", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n  - name: b\n    kind: builtin\n    timeout: 10 seconds\n    tool: echo\n", nil,
			[]string{`7: agents[1].timeout: "10 seconds" is not a duration (like 10s, 2m)`}},
		{"duration without unit", "server:\n  call_timeout: 30\n", nil,
			[]string{`2: server.call_timeout: "30" is not a duration (like 10s, 2m): add a unit`}},
		{"negative duration", "store:\n  ttl: -1h\n", nil,
			[]string{`2: store.ttl: "-1h" is negative`}},
		{"bad size", "server:\n  max_body_bytes: 4 MiBs\n", nil,
			[]string{`2: server.max_body_bytes: "4 MiBs" is not a size (like 4MiB, 512KiB or 1048576): unknown unit " MiBs"`}},
		{"negative size", "server:\n  max_body_bytes: -1\n", nil,
			[]string{`2: server.max_body_bytes: -1 is not a size in bytes`}},
		{"bad bool", "server:\n  builtins: yes please\n", nil,
			[]string{`2: server.builtins: must be true or false, not "yes please"`}},
		{"bad address", "server:\n  http: localhost\n", nil,
			[]string{`2: server.http: "localhost" is not a host:port address`}},
		{"bad log level", "server:\n  log_level: loud\n", nil,
			[]string{`2: server.log_level: "loud" is not a log level (debug, info, warn, error)`}},
		{"bad log format", "server:\n  log_format: xml\n", nil,
			[]string{`2: server.log_format: "xml" is not a log format (auto, text, json)`}},
		{"bad origin", "server:\n  trusted_origins:\n    - https://ok.example\n    - app.example.com\n", nil,
			[]string{`4: server.trusted_origins[1]: "app.example.com" is not an origin`}},
		{"origins not a list", "server:\n  trusted_origins: https://a.example\n", nil,
			[]string{`2: server.trusted_origins: must be a list (like [a, b]), not "https://a.example"`}},
		{"store URL without scheme", "store:\n  url: /var/lib/context.db\n", nil,
			[]string{`2: store.url: "/var/lib/context.db" has no scheme`}},
		{"agents not a list", "agents:\n  name: a\n", nil,
			[]string{`2: agents: must be a list of agents (- name: ...), not a mapping`}},
		{"agent not a mapping", "agents:\n  - echo\n", nil,
			[]string{`2: agents[0]: must be a mapping (name: ..., kind: ...), not "echo"`}},
		{"unknown kind", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n  - name: b\n    kind: lmm\n", nil,
			[]string{`5: agents[1]: agent "b": unknown kind "lmm" (known kinds: builtin`}},
		{"missing kind", "agents:\n  - name: a\n    tool: echo\n", nil,
			[]string{`2: agents[0]: kind is required (known kinds: builtin`}},
		{"missing name", "agents:\n  - kind: builtin\n    tool: echo\n", nil,
			[]string{`2: agents[0]: name is required`}},
		{"unknown agent option", "agents:\n  - name: a\n    kind: builtin\n    tol: echo\n", nil,
			[]string{`2: agents[0]: agent "a" (kind builtin): unknown field "tol"`}},
		{"bad option value", "agents:\n  - name: a\n    kind: builtin\n    tool: nope\n", nil,
			[]string{`2: agents[0]: agent "a": unknown built-in tool "nope"`}},
		{"bad version", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n    version: one\n", nil,
			[]string{`2: agents[0]: agent "a": version "one" is not a semantic version`}},
		{"bad agent name", "agents:\n  - kind: builtin\n    tool: echo\n    name: my agent\n", nil,
			[]string{`4: agents[0].name: agent name "my agent" has character ' '`}},
		{"duplicate agent", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n  - name: b\n    kind: builtin\n    tool: echo\n  - name: a\n    kind: builtin\n    version: 1.0.0\n    tool: context_history\n", nil,
			[]string{`8: agents[2]: agent a@1.0.0 is already defined by agents[0] at line 2`}},
		{"name not a string", "agents:\n  - name: [a]\n    kind: builtin\n", nil,
			[]string{`2: agents[0].name: must be a string, not a list`}},
		{"metadata value not a string", "agents:\n  - name: a\n    kind: builtin\n    metadata:\n      owner: {team: x}\n", nil,
			[]string{`5: agents[0].metadata.owner: must be a string, not a mapping`}},
		{"tags not strings", "agents:\n  - name: a\n    kind: builtin\n    tags:\n      - ok\n      - [no]\n", nil,
			[]string{`6: agents[0].tags[1]: must be a string, not a list`}},
		{"merge of a scalar", "x-a: &a 1\nagents:\n  - <<: *a\n    name: a\n    kind: builtin\n", nil,
			[]string{`3: agents[0]: a merge (<<) must refer to a mapping, not the number 1`}},
		{"server not a mapping", "server: [http]\n", nil,
			[]string{`1: server: must be a mapping (key: value), not a list`}},
		{"non-string option key", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n    map:\n      1: one\n", nil,
			[]string{`6: agents[0].map: key 1 must be a string; quote it ("1")`}},
		{"complex key", "agents:\n  - name: a\n    kind: builtin\n    ? [x]\n    : y\n", nil,
			[]string{`4: agents[0]: a key must be a string, not a list`}},
		{"bad merged anchor reported per use", "x-a: &a {kind: builtin, 1: x}\nagents:\n  - {<<: *a, name: a}\n  - {<<: *a, name: b}\n", nil,
			[]string{`1: agents[0]: key 1 must be a string`, `1: agents[1]: key 1 must be a string`}},
		{"infinite option", "agents:\n  - name: a\n    kind: builtin\n    limit: .inf\n", nil,
			[]string{`4: agents[0].limit: .inf cannot be represented in JSON`}},
		{"custom tag", "agents:\n  - name: a\n    kind: builtin\n    tool: !secret echo\n", nil,
			[]string{`4: agents[0].tool: YAML tag !secret is not supported`}},
		{"unset variable", "server:\n  http: :80\nstore:\n  url: ${STORE_URL}\n", nil,
			[]string{`4: store.url: environment variable STORE_URL is not set (set it, or give a default: ${STORE_URL:-value})`}},
		{"unset variable in option", "agents:\n  - name: a\n    kind: builtin\n    tool: echo\n    headers:\n      - ${TOKEN}\n", nil,
			[]string{`6: agents[0].headers[0]: environment variable TOKEN is not set`}},
		{"unterminated variable", "server:\n  http: ${ADDR\n", nil,
			[]string{`2: server.http: unterminated ${ (write $$ for a literal $)`}},
		{"bad variable name", "server:\n  http: ${1ADDR}\n", nil,
			[]string{`2: server.http: ${1ADDR}: "1ADDR" is not a variable name`}},
		{"alias cycle", "x-a: &a [*a]\nagents: *a\n", nil,
			[]string{`1: agents[0]: must be a mapping (name: ..., kind: ...), not a list`}},
		{"several errors, all reported", "srv: {}\nserver:\n  call_timeout: soon\nagents:\n  - name: a\n    kind: nope\n", nil, []string{
			`1: unknown field "srv"`,
			`3: server.call_timeout: "soon" is not a duration`,
		}},
		{"several agent errors, all reported", "agents:\n  - name: a\n    kind: nope\n  - name: b\n    kind: builtin\n    tol: echo\n", nil, []string{
			`2: agents[0]: agent "a": unknown kind "nope"`,
			`4: agents[1]: agent "b" (kind builtin): unknown field "tol"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.yaml, tt.env)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				line, text, _ := strings.Cut(w, ": ")
				prefix := "bad.yaml:" + line + ": "
				if !strings.HasPrefix(got[i], prefix) || !strings.Contains(got[i], text) {
					t.Errorf("error %d = %q\nwant prefix %q containing %q", i, got[i], prefix, text)
				}
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("error code = %v, want invalid", errs.CodeOf(err))
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != "bad.yaml" || ce.Line == 0 {
				t.Errorf("errors.As(*config.Error) = %+v", ce)
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("agents:\n  - name: a\n    kind: builtin\n    bomb: *a8\n")
	_, err := config.Parse("bomb.yaml", []byte(b.String()), env(nil))
	if err == nil || !strings.Contains(err.Error(), "expands too many aliases") {
		t.Errorf("Parse = %v, want an alias expansion error", err)
	}
}

func TestErrorsDoNotLeakStorePassword(t *testing.T) {
	_, err := load("store:\n  url: \"postgres://u:hunter2@db:5432/x%zz\"\n", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %v; want an error without the password", err)
	}
}

func TestErrorFormat(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "f.yaml", Line: 3, Field: "server.http", Err: base}, "f.yaml:3: server.http: boom"},
		{config.Error{File: "f.yaml", Err: base}, "f.yaml: boom"},
		{config.Error{Line: 3, Err: base}, "line 3: boom"},
		{config.Error{Field: "agents[0]", Err: base}, "agents[0]: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestValidateHandBuilt(t *testing.T) {
	c := config.Default()
	c.Agents = []config.Agent{
		agent(0, "a", "builtin", `{"tool":"echo"}`),
		agent(0, "a", "builtin", `{"tool":"echo"}`),
	}
	err := c.Validate(context.Background())
	want := "agents[1]: agent a@1.0.0 is already defined by agents[0]"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, c, nil)
		})
	}
	t.Run("awkward values", func(t *testing.T) {
		c := config.Default()
		a := agent(0, "a", "builtin", `{"tool":"echo","s":"$HOME ${X} $$","n":-0,"big":1e+300,"u":18446744073709551615,"e":{},"l":[],"multi":"a\n b\n","sp":" x "}`)
		a.Description = "costs $5, ${NOT_A_VAR}"
		a.Version = "1.10"
		a.Metadata = map[string]string{"k": "true", "n": "null"}
		a.Tags = []string{"1", "~", "- x"}
		c.Agents = []config.Agent{a}
		c.Store.URL = "memory:"
		checkRoundTrip(t, c, nil)
	})
}

func checkRoundTrip(t *testing.T, c *config.Config, vars map[string]string) {
	t.Helper()
	data, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := config.Parse(c.Path, data, env(vars))
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, data)
	}
	ignoreLines := cmpopts.IgnoreFields(config.Agent{}, "Line")
	if diff := cmp.Diff(c, back, jsonText, ignoreLines, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip mismatch (-orig +back):\n%s\n%s", diff, data)
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		files   []string
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{[]string{"mcptower.yaml"}, "mcptower.yaml", false},
		{[]string{"mcptower.yml"}, "mcptower.yml", false},
		{[]string{"mcptower.yaml", "mcptower.yml"}, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.files, "+"), func(t *testing.T) {
			t.Chdir(t.TempDir())
			for _, f := range tt.files {
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := config.Find()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Find() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
