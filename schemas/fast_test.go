package schemas

import (
	"encoding/json"
	"testing"
)

// fastSchemas are schemas the fast check compiles; slowSchemas use
// keywords it leaves to jsonschema-go.
var fastSchemas = []string{
	`{}`,
	`true`,
	`{"type":"object","properties":{"text":{"type":"string","description":"Text"}},"required":["text"],"additionalProperties":false}`,
	`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"value":{"type":"number"},"from":{"type":"string","enum":["m","ft"]},"to":{"type":"string","enum":["m","ft"]}},"required":["value","from","to"]}`,
	`{"type":["string","null"],"minLength":2,"maxLength":4}`,
	`{"type":"integer","minimum":0,"maximum":10}`,
	`{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}`,
	`{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}`,
	`{"type":"object","additionalProperties":{"type":"boolean"},"minProperties":1,"maxProperties":2}`,
	`{"const":"x"}`,
	`{"enum":[1,"1",true]}`,
	`{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"array","items":{"enum":[1,2]}}}}}}`,
	`{"type":"string","format":"email","title":"t","examples":["a"],"default":"d","x-extra":1}`,
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"n":{"type":"integer"}}}`,
}

var slowSchemas = []string{
	`false`,
	`{"anyOf":[{"type":"string"},{"type":"number"}]}`,
	`{"type":"string","pattern":"^a"}`,
	`{"type":"array","uniqueItems":true}`,
	`{"$defs":{"a":{"type":"string"}},"$ref":"#/$defs/a"}`,
	`{"type":"object","patternProperties":{"^x":{"type":"string"}}}`,
	`{"type":"number","multipleOf":2}`,
	`{"enum":[null]}`,
	`{"enum":[{"a":1}]}`,
	`{"type":"object","properties":{"a":{"not":{"type":"string"}}}}`,
	`{"type":"array","prefixItems":[{"type":"string"}]}`,
	`{"type":"object","dependentRequired":{"a":["b"]}}`,
	`{"type":"object","additionalProperties":{"not":{},"type":"string"}}`,
}

// values are checked against every schema.
var values = []string{
	`null`, `true`, `false`, `0`, `1`, `1.5`, `-3`, `10`, `11`, `1e300`, `0.5`,
	`""`, `"x"`, `"ab"`, `"abcde"`, `"é"`, `"m"`, `"1"`,
	`[]`, `[1]`, `[1,2,3,4]`, `[1.5]`, `["a"]`,
	`{}`, `{"text":"hi"}`, `{"text":5}`, `{"text":"hi","more":1}`, `{"value":3,"from":"m","to":"ft"}`,
	`{"value":3,"from":"km","to":"ft"}`, `{"a":true}`, `{"a":true,"b":false,"c":true}`, `{"a":1}`,
	`{"a":{"b":[1,2]}}`, `{"a":{"b":[3]}}`, `{"n":1}`, `{"n":1.5}`,
}

func TestFastCompiles(t *testing.T) {
	for _, raw := range fastSchemas {
		s, err := Parse([]byte(raw))
		if err != nil {
			t.Fatalf("Parse(%s): %v", raw, err)
		}
		if s.fast == nil {
			t.Errorf("%s: not compiled for the fast check", raw)
		}
	}
	for _, raw := range slowSchemas {
		s, err := Parse([]byte(raw))
		if err != nil {
			t.Fatalf("Parse(%s): %v", raw, err)
		}
		if s.fast != nil {
			t.Errorf("%s: compiled for the fast check, which does not know all its keywords", raw)
		}
	}
}

// TestFastAgrees checks every schema against every value: the fast check
// never accepts what jsonschema-go rejects, and accepts what it accepts
// (for the schemas it compiles), so that valid calls take the fast path.
func TestFastAgrees(t *testing.T) {
	accepted := 0
	for _, raw := range fastSchemas {
		s, err := Parse([]byte(raw))
		if err != nil || s.fast == nil {
			t.Fatalf("Parse(%s): %v (fast %v)", raw, err, s.fast != nil)
		}
		for _, vs := range values {
			var v any
			if err := json.Unmarshal([]byte(vs), &v); err != nil {
				t.Fatal(err)
			}
			slow := s.resolved.Validate(v) == nil
			quick := s.fast.valid(v)
			if quick != slow {
				t.Errorf("schema %s, value %s: fast check says %v, jsonschema-go %v", raw, vs, quick, slow)
			}
			if quick {
				accepted++
			}
		}
	}
	if accepted == 0 {
		t.Error("the fast check accepted nothing")
	}
}

func TestFastUnknownGoValues(t *testing.T) {
	s, err := Parse([]byte(`{"type":"integer"}`))
	if err != nil {
		t.Fatal(err)
	}
	// Values encoding/json does not produce are left to jsonschema-go.
	for _, v := range []any{3, int64(3), []string{"a"}, map[string]string{}, struct{}{}} {
		if s.fast.valid(v) {
			t.Errorf("fast check accepted the Go value %#v", v)
		}
	}
	if err := s.Validate(3); err != nil {
		t.Errorf("Validate(int 3) = %v; jsonschema-go accepts it", err)
	}
}

// FuzzFastValidate compares the fast check with jsonschema-go on any schema
// and value: whatever the fast check accepts, jsonschema-go must accept.
func FuzzFastValidate(f *testing.F) {
	for _, s := range append(fastSchemas, slowSchemas...) {
		for _, v := range values[:12] {
			f.Add(s, v)
		}
	}
	f.Fuzz(func(t *testing.T, schema, value string) {
		s, err := Parse([]byte(schema))
		if err != nil || s.fast == nil {
			return
		}
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return
		}
		if s.fast.valid(v) {
			if err := s.resolved.Validate(v); err != nil {
				t.Fatalf("schema %s, value %s: the fast check accepts what jsonschema-go rejects: %v", schema, value, err)
			}
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	s, err := Parse([]byte(fastSchemas[2]))
	if err != nil {
		b.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(`{"text":"hello"}`), &v); err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Validate(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsonschema-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.resolved.Validate(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
