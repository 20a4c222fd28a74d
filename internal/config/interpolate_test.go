package config_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/internal/config"
)

func TestInterpolation(t *testing.T) {
	vars := map[string]string{
		"A":      "hello",
		"B":      "world",
		"NUM":    "42",
		"EMPTY":  "",
		"YAML":   "a: b\nc: [d]",
		"FLOW":   "[1, 2]",
		"DOLLAR": "$X",
	}
	tests := []struct {
		value string // the YAML text after "opt: "
		want  string // the option's JSON
	}{
		{`${A}`, `"hello"`},
		{`${A}-${B}`, `"hello-world"`},
		{`x${A}y`, `"xhelloy"`},
		{`${UNSET:-fallback}`, `"fallback"`},
		{`${EMPTY:-fallback}`, `"fallback"`},
		{`${A:-fallback}`, `"hello"`},
		{`${UNSET:-}`, `null`},
		{`${EMPTY}`, `null`},
		{`"${EMPTY}"`, `""`},
		{`${UNSET:-a:b c}`, `"a:b c"`},
		{`$${A}`, `"${A}"`},
		{`$$$${A}`, `"$${A}"`},
		{`cost $$5`, `"cost $5"`},
		{`a$b`, `"a$b"`},
		{`trailing$`, `"trailing$"`},
		{`$ {A}`, `"$ {A}"`},
		{`${NUM}`, `42`},
		{`"${NUM}"`, `"42"`},
		{`'${NUM}'`, `"42"`},
		{`!!str ${NUM}`, `"42"`},
		{`${NUM}.5`, `42.5`},
		{"\n      - ${A}\n      - ${NUM}", `["hello",42]`},
		{`["${A}", "${NUM}"]`, `["hello","42"]`},
		{`{k: "${A}"}`, `{"k":"hello"}`},
		{`${YAML}`, `"a: b\nc: [d]"`},
		{`${FLOW}`, `"[1, 2]"`},
		{`${DOLLAR}`, `"$X"`},
		{"|\n      line ${A}\n      $${B}", `"line hello\n${B}\n"`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := "agents:\n  - name: a\n    kind: builtin\n    opt: " + tt.value + "\n"
			c, err := config.Parse("c.yaml", []byte(src), env(vars))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := string(c.Agents[0].Options)
			if diff := cmp.Diff(`{"opt":`+tt.want+`}`, got); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterpolationNotInKeys(t *testing.T) {
	c, err := config.Parse("c.yaml", []byte("agents:\n  - name: a\n    kind: builtin\n    ${A}: $${A}\n"), env(map[string]string{"A": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Agents[0].Options), `{"${A}":"${A}"}`; got != want {
		t.Errorf("options = %s, want %s", got, want)
	}
}

func TestInterpolationInAnchors(t *testing.T) {
	src := "x-k: &k ${A}\nagents:\n  - {name: a, kind: builtin, one: *k, two: *k}\n"
	c, err := config.Parse("c.yaml", []byte(src), env(map[string]string{"A": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Agents[0].Options), `{"one":"v","two":"v"}`; got != want {
		t.Errorf("options = %s, want %s", got, want)
	}
}

func TestNilEnvUsesProcessEnvironment(t *testing.T) {
	t.Setenv("MCPTOWER_CONFIG_TEST_ADDR", ":7070")
	c, err := config.Parse("c.yaml", []byte("server:\n  http: ${MCPTOWER_CONFIG_TEST_ADDR}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.HTTP != ":7070" {
		t.Errorf("HTTP = %q", c.Server.HTTP)
	}
}
