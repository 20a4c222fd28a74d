package config_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mcptower/internal/config"
)

// FuzzParse checks that no input makes Parse or Validate panic, and that a
// config Parse accepts survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"server:\n  http: [\n",
		"x-a: &a [*a]\nagents: *a\n",
		"x-a: &a {<<: *a}\nagents: [*a]\n",
		"a: &a [*a, *a, *a]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n",
		"agents:\n  - {name: a, kind: builtin, tool: echo, o: {1: x}}\n",
		"agents:\n  - {name: a, kind: builtin, tool: '${HOME:-x}$$'}\n",
		"server: {max_body_bytes: 99999999999999999999GiB, session_timeout: 1e9h}\n",
		"agents:\n  - {name: a, kind: builtin, n: 1e400, m: -0.0, t: !!binary aGk=}\n",
	} {
		f.Add([]byte(s))
	}
	vars := env(map[string]string{"HOME": "/home/u", "EMPTY": "", "NUM": "7", "YAML": "a: [b]"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data, vars)
		if err != nil {
			return
		}
		_ = c.Validate(context.Background())
		_ = c.Redacted()
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		back, err := config.Parse("fuzz.yaml", out, vars)
		if err != nil {
			t.Fatalf("Parse(Marshal()): %v\ninput:\n%s\nmarshaled:\n%s", err, data, out)
		}
		ignoreLines := cmpopts.IgnoreFields(config.Agent{}, "Line")
		if diff := cmp.Diff(c, back, jsonText, ignoreLines, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s\ninput:\n%s\nmarshaled:\n%s", diff, data, out)
		}
	})
}
