// Package schemas generates JSON Schemas (draft 2020-12) from Go types and
// validates JSON values against them.
//
// Generation uses one configured invopop/jsonschema reflector: properties are
// required unless their json tag has omitempty (or omitzero), descriptions come
// from `jsonschema:"description=..."`/`jsonschema_description` tags and, when
// LoadGoComments was called, from doc comments. Validators are compiled once
// per schema and cached per Go type, so a call never re-resolves a schema.
package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
	invopop "github.com/invopop/jsonschema"
)

// Schema is a compiled JSON Schema: its JSON text and a validator resolved
// once. A Schema is immutable and safe for concurrent use.
type Schema struct {
	raw      json.RawMessage
	resolved *jsonschema.Resolved
	fast     *fast // nil when the schema needs jsonschema-go (fast.go)
	isObject bool
	props    map[string]struct{}
}

// Draft is the JSON Schema dialect mcptower generates.
const Draft = "https://json-schema.org/draft/2020-12/schema"

var (
	reflectorMu sync.Mutex
	reflector   = newReflector()
	byType      sync.Map // reflect.Type -> *Schema
)

func newReflector() *invopop.Reflector {
	return &invopop.Reflector{
		// Inline every type: MCP hosts render and validate tool schemas, and many
		// handle $ref poorly.
		DoNotReference: true,
		ExpandedStruct: true,
		Anonymous:      true,
		// required = fields without omitempty.
		RequiredFromJSONSchemaTags: false,
		CommentMap:                 map[string]string{},
	}
}

// LoadGoComments adds the doc comments of the Go package in dir (whose import
// path starts with base, e.g. "example.com/mod") to generated descriptions.
// Source must be present at run time, so it is useful for `go run` and tests;
// struct tags work everywhere. Call it before the first For of those types.
func LoadGoComments(base, dir string) error {
	reflectorMu.Lock()
	defer reflectorMu.Unlock()
	if err := reflector.AddGoComments(base, dir); err != nil {
		return fmt.Errorf("load Go comments from %s: %w", dir, err)
	}
	return nil
}

// For returns the schema of T, generated once per type and cached.
func For[T any]() (*Schema, error) {
	return ForType(reflect.TypeFor[T]())
}

// ForType returns the schema of t, generated once per type and cached.
func ForType(t reflect.Type) (*Schema, error) {
	if s, ok := byType.Load(t); ok {
		return s.(*Schema), nil
	}
	key := t // cache *T under *T too, or every For[*T] would regenerate
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if key != t {
		if s, ok := byType.Load(t); ok {
			byType.Store(key, s)
			return s.(*Schema), nil
		}
	}
	var raw []byte
	switch {
	case t.Kind() == reflect.Interface || t == reflect.TypeFor[json.RawMessage]():
		// any / raw JSON: every value is valid.
		raw = []byte(`{}`)
	default:
		reflectorMu.Lock()
		gen := reflector.ReflectFromType(t)
		reflectorMu.Unlock()
		gen.Version = Draft
		var err error
		raw, err = json.Marshal(gen)
		if err != nil {
			return nil, fmt.Errorf("schema for %s: %w", t, err)
		}
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("schema for %s: %w", t, err)
	}
	actual, _ := byType.LoadOrStore(t, s)
	if key != t {
		byType.Store(key, actual)
	}
	return actual.(*Schema), nil
}

// MustFor is For that panics, for package-level variables of built-in types.
func MustFor[T any]() *Schema {
	s, err := For[T]()
	if err != nil {
		panic(err)
	}
	return s
}

// Parse compiles a schema from its JSON text (from config or an upstream
// server). Only draft 2020-12 (and draft-07) features are understood.
func Parse(raw []byte) (*Schema, error) {
	var js jsonschema.Schema
	if err := json.Unmarshal(raw, &js); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	resolved, err := js.Resolve(&jsonschema.ResolveOptions{ValidateDefaults: false})
	if err != nil {
		return nil, fmt.Errorf("resolve schema: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	props := make(map[string]struct{}, len(js.Properties))
	for k := range js.Properties {
		props[k] = struct{}{}
	}
	return &Schema{
		raw:      compact.Bytes(),
		resolved: resolved,
		fast:     compileFast(&js, 0),
		isObject: js.Type == "object" || (js.Type == "" && len(js.Types) == 0 && js.Properties != nil),
		props:    props,
	}, nil
}

// Any is the schema every value satisfies.
var Any = mustParse(`{}`)

// Object is the schema of any JSON object.
var Object = mustParse(`{"type":"object"}`)

func mustParse(s string) *Schema {
	sc, err := Parse([]byte(s))
	if err != nil {
		panic(err)
	}
	return sc
}

// JSON returns the schema's JSON text. Callers must not modify it.
func (s *Schema) JSON() json.RawMessage { return s.raw }

// MarshalJSON implements json.Marshaler.
func (s *Schema) MarshalJSON() ([]byte, error) { return s.raw, nil }

// IsObject reports whether the schema describes a JSON object, as MCP requires
// of a tool's input schema.
func (s *Schema) IsObject() bool { return s.isObject }

// Validate checks a decoded JSON value (as produced by json.Unmarshal into
// an any) against the schema. The error is a *ValidationError.
func (s *Schema) Validate(v any) error {
	if s.fast != nil && s.fast.valid(v) {
		return nil
	}
	if err := s.resolved.Validate(v); err != nil {
		return newValidationError(err)
	}
	return nil
}

// ValidateJSON decodes data and validates it, returning the decoded value.
// Malformed JSON and schema violations are both *ValidationError.
func (s *Schema) ValidateJSON(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("null")
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, &ValidationError{Msg: "not valid JSON: " + err.Error()}
	}
	return v, s.Validate(v)
}

// ValidationError says which part of a value broke the schema.
type ValidationError struct {
	// Path is a JSON pointer to the offending value ("/unit"), "" for the root.
	Path string
	// Msg says what is wrong with it.
	Msg string
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// newValidationError turns jsonschema-go's nested message
// ("validating root: validating /properties/x: type: ...") into a field path
// and a plain message.
//
// Each "validating" step names a schema location. Consecutive locations in the
// same document extend each other; a $ref jumps elsewhere (/$defs/T), and the
// jump itself names no field, so the instance path is built from the steps
// between jumps rather than from the innermost location alone.
func newValidationError(err error) *ValidationError {
	msg := err.Error()
	var path strings.Builder
	prev := ""
	for {
		rest, ok := strings.CutPrefix(msg, "validating ")
		if !ok {
			break
		}
		loc, tail, ok := strings.Cut(rest, ": ")
		if !ok {
			break
		}
		switch {
		case loc == "root":
			loc = ""
		case strings.HasPrefix(loc, prev+"/"):
			path.WriteString(instancePath(loc[len(prev):]))
		}
		prev = loc
		msg = tail
	}
	return &ValidationError{Path: path.String(), Msg: plainMessage(msg)}
}

var messageRewrites = []struct {
	re   *regexp.Regexp
	repl string
}{
	// jsonschema-go joins a type list itself: want one of "string, null".
	{regexp.MustCompile(`^type: .* has type "(\w+)", want one of "([^"]+)"$`), "want one of $2, got $1"},
	{regexp.MustCompile(`^type: .* has type "(\w+)", want "([^"]+)"$`), "want $2, got $1"},
	{regexp.MustCompile(`^required: missing properties: \[(.*)\]$`), "missing required field(s): $1"},
	{regexp.MustCompile(`^enum: (.*) does not equal any of: \[(.*)\]$`), "$1 is not one of: $2"},
}

// unknownFields matches jsonschema-go's message for properties that
// additionalProperties: false rejects. It lists them in map order, so they are
// sorted here: the same input must always give the same message.
var (
	unknownFields = regexp.MustCompile(`^unexpected additional properties \[(.*)\]$`)
	quotedName    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// boundMessage matches jsonschema-go's numeric bound messages, which print
// the value as a fraction (big.Rat: "-3/2") and the bound with %f ("0.500000").
var boundMessage = regexp.MustCompile(`^(minimum|maximum|exclusiveMinimum|exclusiveMaximum): (\S+) is (less|greater) than (or equal to )?(\S+)$`)

// plainMessage rewrites jsonschema-go's terse messages into ones a person
// (or a model) reads at a glance; unknown shapes pass through unchanged.
func plainMessage(msg string) string {
	if m := boundMessage.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is %s than %sthe %s %s", plainNumber(m[2]), m[3], m[4], m[1], plainNumber(m[5]))
	}
	if m := unknownFields.FindStringSubmatch(msg); m != nil {
		names := quotedName.FindAllString(m[1], -1)
		slices.Sort(names)
		return "unknown field(s): " + strings.Join(names, ", ")
	}
	for _, r := range messageRewrites {
		if r.re.MatchString(msg) {
			return strings.ReplaceAll(r.re.ReplaceAllString(msg, r.repl), `" "`, `", "`)
		}
	}
	return msg
}

// plainNumber prints a number written as a fraction ("5/2") or with %f
// ("2.500000") the way JSON would ("2.5").
func plainNumber(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return s
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// instancePath turns a schema location (/properties/a/items/properties/b)
// into an instance path (/a/b) — the field a user typed.
func instancePath(schemaPath string) string {
	if schemaPath == "" {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(schemaPath, "/"), "/")
	var out []string
	for i := 0; i < len(parts); i++ {
		switch parts[i] {
		case "properties", "patternProperties":
			if i+1 < len(parts) {
				i++
				out = append(out, parts[i])
			}
		case "$defs", "definitions", "dependentSchemas":
			// A definition's name, or the property whose presence triggers a
			// dependent schema, is not where the instance is.
			i++
		case "items", "prefixItems", "additionalProperties", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "contains", "unevaluatedProperties", "unevaluatedItems":
			// Structural keywords, and their numeric indexes, are not fields.
			if i+1 < len(parts) && isIndex(parts[i+1]) {
				i++
			}
		default:
			out = append(out, parts[i])
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "/" + strings.Join(out, "/")
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// AsValidationError returns err's *ValidationError, if any.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}

// HasProperty reports whether an object schema declares a top-level property.
func (s *Schema) HasProperty(name string) bool {
	_, ok := s.props[name]
	return ok
}
