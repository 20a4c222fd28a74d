package schemas_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/schemas"
)

type unit struct {
	Name  string  `json:"name" jsonschema:"enum=m,enum=ft,enum=km" jsonschema_description:"Unit name"`
	Scale float64 `json:"scale,omitempty" jsonschema:"minimum=0.5"`
}

type convertInput struct {
	Value float64  `json:"value" jsonschema_description:"The value to convert"`
	From  unit     `json:"from"`
	To    *unit    `json:"to,omitempty"`
	Count int      `json:"count,omitempty" jsonschema:"minimum=1,maximum=10"`
	Notes []string `json:"notes,omitempty"`
	Units []unit   `json:"units,omitzero"`
	Raw   any      `json:"raw,omitempty"`
}

// schemaDoc is the part of a generated schema the tests look at.
type schemaDoc struct {
	Schema               string                `json:"$schema"`
	Type                 string                `json:"type"`
	Required             []string              `json:"required"`
	AdditionalProperties *bool                 `json:"additionalProperties"`
	Description          string                `json:"description"`
	Enum                 []any                 `json:"enum"`
	Minimum              *float64              `json:"minimum"`
	Maximum              *float64              `json:"maximum"`
	Properties           map[string]*schemaDoc `json:"properties"`
	Items                *schemaDoc            `json:"items"`
	Ref                  string                `json:"$ref"`
}

// UnmarshalJSON accepts the boolean schemas true and false (as {} and "never").
func (d *schemaDoc) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true":
		*d = schemaDoc{}
		return nil
	case "false":
		*d = schemaDoc{Type: "never"}
		return nil
	}
	type plain schemaDoc
	return json.Unmarshal(data, (*plain)(d))
}

func decodeSchema(t *testing.T, s *schemas.Schema) *schemaDoc {
	t.Helper()
	var d schemaDoc
	if err := json.Unmarshal(s.JSON(), &d); err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, s.JSON())
	}
	return &d
}

func ptr[T any](v T) *T { return &v }

func TestForGeneratesDraft2020Object(t *testing.T) {
	s, err := schemas.For[convertInput]()
	if err != nil {
		t.Fatal(err)
	}
	d := decodeSchema(t, s)
	if d.Schema != schemas.Draft {
		t.Errorf("$schema = %q, want %q", d.Schema, schemas.Draft)
	}
	if d.Type != "object" || !s.IsObject() {
		t.Errorf("type = %q, IsObject = %v; want an object schema", d.Type, s.IsObject())
	}
	if raw := d.Properties["raw"]; raw == nil || raw.Type != "" {
		t.Errorf("raw (any) = %+v, want the schema every value satisfies", raw)
	}
	if d.AdditionalProperties == nil || *d.AdditionalProperties {
		t.Errorf("additionalProperties = %v, want false", d.AdditionalProperties)
	}
	// Required = fields without omitempty/omitzero, in field order.
	if diff := cmp.Diff([]string{"value", "from"}, d.Required); diff != "" {
		t.Errorf("required (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"name"}, d.Properties["from"].Required); diff != "" {
		t.Errorf("from.required (-want +got):\n%s", diff)
	}
	if strings.Contains(string(s.JSON()), `"$ref"`) || strings.Contains(string(s.JSON()), `"$defs"`) {
		t.Errorf("schema uses references; types must be inlined:\n%s", s.JSON())
	}

	got := map[string]string{
		"value":      d.Properties["value"].Description,
		"from.name":  d.Properties["from"].Properties["name"].Description,
		"to.name":    d.Properties["to"].Properties["name"].Description,
		"value.type": d.Properties["value"].Type,
		"count.type": d.Properties["count"].Type,
		"notes.type": d.Properties["notes"].Type,
		"items.type": d.Properties["notes"].Items.Type,
		"units.item": d.Properties["units"].Items.Type,
	}
	want := map[string]string{
		"value":      "The value to convert",
		"from.name":  "Unit name",
		"to.name":    "Unit name",
		"value.type": "number",
		"count.type": "integer",
		"notes.type": "array",
		"items.type": "string",
		"units.item": "object",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("properties (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"m", "ft", "km"}, d.Properties["from"].Properties["name"].Enum); diff != "" {
		t.Errorf("enum (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ptr(0.5), d.Properties["from"].Properties["scale"].Minimum); diff != "" {
		t.Errorf("scale minimum (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([2]*float64{ptr(1.0), ptr(10.0)}, [2]*float64{d.Properties["count"].Minimum, d.Properties["count"].Maximum}); diff != "" {
		t.Errorf("count bounds (-want +got):\n%s", diff)
	}
	for _, p := range []string{"value", "from", "to", "count", "notes", "units", "raw"} {
		if !s.HasProperty(p) {
			t.Errorf("HasProperty(%q) = false", p)
		}
	}
	for _, p := range []string{"", "Value", "name", "scale", "missing"} {
		if s.HasProperty(p) {
			t.Errorf("HasProperty(%q) = true; only top-level declared properties count", p)
		}
	}
}

func TestForCachesPerType(t *testing.T) {
	a, err := schemas.For[convertInput]()
	if err != nil {
		t.Fatal(err)
	}
	b, err := schemas.For[convertInput]()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("For returned %p then %p; want the cached schema", a, b)
	}
	c, err := schemas.ForType(reflect.TypeFor[convertInput]())
	if err != nil {
		t.Fatal(err)
	}
	if a != c {
		t.Errorf("ForType returned a different schema than For for the same type")
	}
	// A pointer describes the same value as its element.
	p1, err := schemas.For[*convertInput]()
	if err != nil {
		t.Fatal(err)
	}
	p2 := schemas.MustFor[*convertInput]()
	if p1 != a || p2 != a {
		t.Errorf("For[*T] = %p, %p; want For[T] = %p", p1, p2, a)
	}
}

func TestForCachedDoesNotAllocate(t *testing.T) {
	schemas.MustFor[convertInput]()
	schemas.MustFor[*convertInput]()
	for name, f := range map[string]func(){
		"T":  func() { schemas.MustFor[convertInput]() },
		"*T": func() { schemas.MustFor[*convertInput]() },
	} {
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("cached For[%s] allocates %v times per call; the schema is regenerated", name, n)
		}
	}
}

func TestForConcurrent(t *testing.T) {
	type fresh struct {
		A string `json:"a"`
	}
	var wg sync.WaitGroup
	got := make([]*schemas.Schema, 8)
	for i := range got {
		wg.Go(func() { got[i] = schemas.MustFor[fresh]() })
	}
	wg.Wait()
	for i, s := range got {
		if s != got[0] {
			t.Errorf("goroutine %d got schema %p, goroutine 0 got %p", i, s, got[0])
		}
	}
}

func TestForAnyAndRawMessageAcceptEverything(t *testing.T) {
	for _, s := range []*schemas.Schema{schemas.MustFor[any](), schemas.MustFor[json.RawMessage](), schemas.Any} {
		if s.IsObject() {
			t.Errorf("%s: IsObject = true for the any schema", s.JSON())
		}
		for _, in := range []string{`1`, `"x"`, `null`, `[1,{}]`, `{"a":1}`} {
			if _, err := s.ValidateJSON([]byte(in)); err != nil {
				t.Errorf("%s.ValidateJSON(%s) = %v, want nil", s.JSON(), in, err)
			}
		}
	}
}

func TestParse(t *testing.T) {
	raw := []byte(`{
		"type": "object",
		"properties": {"city": {"type": "string", "minLength": 2}, "days": {"type": "integer", "maximum": 7}},
		"required": ["city"]
	}`)
	s, err := schemas.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsObject() || !s.HasProperty("city") || !s.HasProperty("days") || s.HasProperty("country") {
		t.Errorf("IsObject=%v city=%v days=%v country=%v", s.IsObject(), s.HasProperty("city"), s.HasProperty("days"), s.HasProperty("country"))
	}
	// JSON is compacted, and MarshalJSON embeds it verbatim.
	want := `{"type":"object","properties":{"city":{"type":"string","minLength":2},"days":{"type":"integer","maximum":7}},"required":["city"]}`
	if diff := cmp.Diff(want, string(s.JSON())); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	wrapped, err := json.Marshal(map[string]*schemas.Schema{"inputSchema": s})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"inputSchema":`+want+`}`, string(wrapped)); diff != "" {
		t.Errorf("MarshalJSON (-want +got):\n%s", diff)
	}

	v, err := s.ValidateJSON([]byte(`{"city":"Oslo","days":3}`))
	if err != nil {
		t.Fatalf("valid value rejected: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"city": "Oslo", "days": 3.0}, v); diff != "" {
		t.Errorf("decoded value (-want +got):\n%s", diff)
	}
	if err := s.Validate(map[string]any{"city": "Oslo"}); err != nil {
		t.Errorf("Validate(decoded value) = %v", err)
	}
	if err := s.Validate(map[string]any{"city": "O"}); err == nil {
		t.Errorf("Validate accepted a too-short city")
	} else if ve, ok := schemas.AsValidationError(err); !ok || ve.Path != "/city" {
		t.Errorf("Validate error = %#v, want a *ValidationError at /city", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, raw := range []string{
		``,
		`{`,
		`[]`,
		`{"type": 3}`,
		`{"$ref": "#/$defs/missing"}`,
	} {
		if _, err := schemas.Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%q) = nil error", raw)
		}
	}
}

func TestIsObject(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{`{"type":"object"}`, true},
		{`{"properties":{"a":{}}}`, true},
		{`{}`, false},
		{`{"type":"string"}`, false},
		{`{"type":"array","items":{"type":"object"}}`, false},
		{`{"type":["object","null"]}`, false},
	} {
		s, err := schemas.Parse([]byte(tc.raw))
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.raw, err)
		}
		if got := s.IsObject(); got != tc.want {
			t.Errorf("Parse(%s).IsObject() = %v, want %v", tc.raw, got, tc.want)
		}
	}
	if !schemas.Object.IsObject() || schemas.Any.IsObject() {
		t.Errorf("Object.IsObject() = %v, Any.IsObject() = %v", schemas.Object.IsObject(), schemas.Any.IsObject())
	}
	type notStruct []string
	if schemas.MustFor[notStruct]().IsObject() || schemas.MustFor[string]().IsObject() {
		t.Errorf("a slice or string type's schema claims to be an object")
	}
	if !schemas.MustFor[map[string]int]().IsObject() {
		t.Errorf("a map type's schema is not an object")
	}
}

func TestValidateJSONErrors(t *testing.T) {
	s := schemas.MustFor[convertInput]()
	for _, tc := range []struct {
		name string
		in   string
		want schemas.ValidationError
	}{
		{"wrong type", `{"value":"ten","from":{"name":"m"}}`,
			schemas.ValidationError{Path: "/value", Msg: "want number, got string"}},
		{"wrong type nested", `{"value":1,"from":{"name":7}}`,
			schemas.ValidationError{Path: "/from/name", Msg: "want string, got integer"}},
		{"wrong type pointer field", `{"value":1,"from":{"name":"m"},"to":"km"}`,
			schemas.ValidationError{Path: "/to", Msg: "want object, got string"}},
		{"missing required", `{"from":{"name":"m"}}`,
			schemas.ValidationError{Path: "", Msg: `missing required field(s): "value"`}},
		{"missing required several", `{}`,
			schemas.ValidationError{Path: "", Msg: `missing required field(s): "value", "from"`}},
		{"missing required nested", `{"value":1,"from":{}}`,
			schemas.ValidationError{Path: "/from", Msg: `missing required field(s): "name"`}},
		{"enum", `{"value":1,"from":{"name":"mi"}}`,
			schemas.ValidationError{Path: "/from/name", Msg: "mi is not one of: m ft km"}},
		{"enum deeper", `{"value":1,"from":{"name":"m"},"to":{"name":"yd"}}`,
			schemas.ValidationError{Path: "/to/name", Msg: "yd is not one of: m ft km"}},
		{"unknown field", `{"value":1,"from":{"name":"m"},"vaule":2}`,
			schemas.ValidationError{Path: "", Msg: `unknown field(s): "vaule"`}},
		{"unknown fields nested", `{"value":1,"from":{"name":"m","x":1,"y":2}}`,
			schemas.ValidationError{Path: "/from", Msg: `unknown field(s): "x", "y"`}},
		{"minimum integer", `{"value":1,"from":{"name":"m"},"count":0}`,
			schemas.ValidationError{Path: "/count", Msg: "0 is less than the minimum 1"}},
		{"maximum integer", `{"value":1,"from":{"name":"m"},"count":11}`,
			schemas.ValidationError{Path: "/count", Msg: "11 is greater than the maximum 10"}},
		{"minimum fraction", `{"value":1,"from":{"name":"m","scale":0.25}}`,
			schemas.ValidationError{Path: "/from/scale", Msg: "0.25 is less than the minimum 0.5"}},
		{"minimum negative", `{"value":1,"from":{"name":"m","scale":-1.5}}`,
			schemas.ValidationError{Path: "/from/scale", Msg: "-1.5 is less than the minimum 0.5"}},
		{"array item", `{"value":1,"from":{"name":"m"},"notes":["a",2]}`,
			// The validator does not report which item; the path names the field.
			schemas.ValidationError{Path: "/notes", Msg: "want string, got integer"}},
		{"array of objects", `{"value":1,"from":{"name":"m"},"units":[{"name":"m"},{"name":"x"}]}`,
			schemas.ValidationError{Path: "/units/name", Msg: "x is not one of: m ft km"}},
		{"not an object", `[1,2]`,
			schemas.ValidationError{Path: "", Msg: "want object, got array"}},
		{"null", `null`,
			schemas.ValidationError{Path: "", Msg: "want object, got null"}},
		{"empty is null", `  `,
			schemas.ValidationError{Path: "", Msg: "want object, got null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ValidateJSON([]byte(tc.in))
			ve, ok := schemas.AsValidationError(err)
			if !ok {
				t.Fatalf("ValidateJSON(%s) = %v, want a *ValidationError", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, *ve); diff != "" {
				t.Errorf("ValidateJSON(%s) (-want +got):\n%s", tc.in, diff)
			}
			wantText := tc.want.Msg
			if tc.want.Path != "" {
				wantText = tc.want.Path + ": " + tc.want.Msg
			}
			if err.Error() != wantText {
				t.Errorf("Error() = %q, want %q", err.Error(), wantText)
			}
		})
	}
}

// The validator reports unknown fields in map order; the message must not
// change from one call to the next (golden files, caches, tests).
func TestValidateJSONUnknownFieldsSorted(t *testing.T) {
	s := schemas.MustFor[convertInput]()
	in := []byte(`{"value":1,"from":{"name":"m"},"zz":1,"b":2,"a\"q":3,"y":4,"c":5,"x":6,"d":7}`)
	want := `unknown field(s): "a\"q", "b", "c", "d", "x", "y", "zz"`
	for range 50 {
		_, err := s.ValidateJSON(in)
		if err == nil || err.Error() != want {
			t.Fatalf("ValidateJSON = %v, want %s", err, want)
		}
	}
}

func TestValidateJSONMalformed(t *testing.T) {
	s := schemas.MustFor[convertInput]()
	for _, in := range []string{`{`, `{"value":}`, `{"value":1}}`, `nul`, "\x00"} {
		v, err := s.ValidateJSON([]byte(in))
		ve, ok := schemas.AsValidationError(err)
		if !ok {
			t.Errorf("ValidateJSON(%q) = %v, want a *ValidationError", in, err)
			continue
		}
		if v != nil || ve.Path != "" || !strings.HasPrefix(ve.Msg, "not valid JSON: ") {
			t.Errorf("ValidateJSON(%q) = %v, %#v; want nil value and a root-level \"not valid JSON\" error", in, v, ve)
		}
	}
}

// Schemas from upstream servers (pydantic, zod) reference shared definitions;
// the path must still name the fields the user typed, not the definitions.
func TestValidateJSONPathThroughRefs(t *testing.T) {
	s, err := schemas.Parse([]byte(`{
		"$defs": {
			"Point": {"type": "object", "properties": {"x": {"type": "number"}, "tag": {"$ref": "#/$defs/Tag"}}, "required": ["x"]},
			"Tag": {"type": "object", "properties": {"label": {"enum": ["a", "b"]}}}
		},
		"type": "object",
		"properties": {
			"origin": {"$ref": "#/$defs/Point"},
			"path": {"type": "array", "items": {"$ref": "#/$defs/Point"}},
			"either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
			"maybe": {"type": ["string", "null"]},
			"ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want schemas.ValidationError
	}{
		{`{"origin":{}}`, schemas.ValidationError{Path: "/origin", Msg: `missing required field(s): "x"`}},
		{`{"origin":{"x":"1"}}`, schemas.ValidationError{Path: "/origin/x", Msg: "want number, got string"}},
		{`{"origin":{"x":1,"tag":{"label":"c"}}}`, schemas.ValidationError{Path: "/origin/tag/label", Msg: "c is not one of: a b"}},
		{`{"path":[{"x":1},{"x":true}]}`, schemas.ValidationError{Path: "/path/x", Msg: "want number, got boolean"}},
		{`{"maybe":1}`, schemas.ValidationError{Path: "/maybe", Msg: "want one of string, null, got integer"}},
		{`{"ratio":0}`, schemas.ValidationError{Path: "/ratio", Msg: "0 is less than or equal to the exclusiveMinimum 0"}},
		{`{"ratio":1.5}`, schemas.ValidationError{Path: "/ratio", Msg: "1.5 is greater than or equal to the exclusiveMaximum 1"}},
	} {
		_, err := s.ValidateJSON([]byte(tc.in))
		ve, ok := schemas.AsValidationError(err)
		if !ok {
			t.Errorf("ValidateJSON(%s) = %v, want a *ValidationError", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, *ve); diff != "" {
			t.Errorf("ValidateJSON(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
	// anyOf failures keep the path of the field even if the message is the
	// validator's own.
	_, err = s.ValidateJSON([]byte(`{"either":1.5}`))
	if ve, ok := schemas.AsValidationError(err); !ok || ve.Path != "/either" || ve.Msg == "" {
		t.Errorf("anyOf failure = %#v, want a message at /either", err)
	}
	for _, ok := range []string{`{}`, `{"origin":{"x":1,"tag":{"label":"a"}}}`, `{"path":[{"x":1}]}`, `{"maybe":null}`, `{"either":"s"}`, `{"ratio":0.5}`} {
		if _, err := s.ValidateJSON([]byte(ok)); err != nil {
			t.Errorf("ValidateJSON(%s) = %v, want nil", ok, err)
		}
	}
}

func TestAsValidationError(t *testing.T) {
	ve := &schemas.ValidationError{Path: "/a", Msg: "bad"}
	wrapped := &wrapErr{ve}
	got, ok := schemas.AsValidationError(wrapped)
	if !ok || got != ve {
		t.Errorf("AsValidationError(wrapped) = %v, %v; want the wrapped error", got, ok)
	}
	if _, ok := schemas.AsValidationError(nil); ok {
		t.Errorf("AsValidationError(nil) = _, true")
	}
}

type wrapErr struct{ err error }

func (w *wrapErr) Error() string { return "context: " + w.err.Error() }
func (w *wrapErr) Unwrap() error { return w.err }

func FuzzValidateJSON(f *testing.F) {
	s := schemas.MustFor[convertInput]()
	refs, err := schemas.Parse([]byte(`{"$defs":{"P":{"type":"object","properties":{"x":{"type":"number","minimum":-1.5}}}},"type":"object","properties":{"p":{"$ref":"#/$defs/P"},"l":{"type":"array","items":{"$ref":"#/$defs/P"}}}}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"value":1,"from":{"name":"m"}}`,
		`{"value":"x","from":{"name":"zz","scale":0.1},"units":[{"name":"m"},{}],"count":1e400}`,
		`{"p":{"x":-2.25},"l":[{"x":"a"}]}`,
		`{`, `null`, `[]`, `"\ud800"`, `{"a":{"b":[1,2,{"c":null}]}}`, ``, `1e999`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sc := range []*schemas.Schema{s, refs, schemas.Object, schemas.Any} {
			v, err := sc.ValidateJSON(data)
			if err == nil {
				continue
			}
			ve, ok := schemas.AsValidationError(err)
			if !ok {
				t.Fatalf("ValidateJSON(%q) returned %T, want *ValidationError", data, err)
			}
			if ve.Msg == "" {
				t.Fatalf("ValidateJSON(%q): empty message", data)
			}
			if ve.Path != "" && !strings.HasPrefix(ve.Path, "/") {
				t.Fatalf("ValidateJSON(%q): path %q is not a JSON pointer", data, ve.Path)
			}
			malformed := !json.Valid(data) && len(strings.TrimSpace(string(data))) > 0
			if malformed && (v != nil || !strings.HasPrefix(ve.Msg, "not valid JSON: ")) {
				t.Fatalf("ValidateJSON(%q) = %v, %q; want a not-valid-JSON error", data, v, ve.Msg)
			}
		}
	})
}

func BenchmarkValidateJSON(b *testing.B) {
	type echoInput struct {
		Text string `json:"text"`
	}
	s := schemas.MustFor[echoInput]()
	data := []byte(`{"text":"hello"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ValidateJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFor(b *testing.B) {
	schemas.MustFor[convertInput]()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schemas.For[convertInput](); err != nil {
			b.Fatal(err)
		}
	}
}
