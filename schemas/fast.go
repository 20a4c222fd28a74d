package schemas

import (
	"math"
	"reflect"
	"slices"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
)

// Every call validates its input and usually its output, and jsonschema-go
// does it by reflection, with a deferred error wrap at every level: 2.1µs
// and 26 allocations to accept {"text":"hello"}, against 0.09µs and none
// for the fast check (BenchmarkValidate; ValidateJSON went from 3.6µs and
// 34 allocations to 1.1µs and 8, the rest being json.Unmarshal). Tool
// schemas mostly use a small part of JSON Schema - types, properties,
// required, additionalProperties, items, enum, const and bounds - so Parse
// compiles those into a plain tree (fast) that checks a decoded value by
// type switches.
//
// The fast check only ever says "valid": when it finds a value invalid, or
// the schema uses any other keyword, or the value is not of the types
// encoding/json decodes into, jsonschema-go decides and explains. So for
// correctness the fast check must not accept what jsonschema-go rejects;
// FuzzFastValidate compares the two.

// fastType is a set of JSON types.
type fastType uint8

const (
	tNull fastType = 1 << iota
	tBoolean
	tInteger
	tNumber // numbers with a fraction; "number" in a schema also admits integers
	tString
	tArray
	tObject
)

var typeNames = map[string]fastType{
	"null": tNull, "boolean": tBoolean, "integer": tInteger, "number": tNumber | tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// fast is a compiled schema; see above.
type fast struct {
	types    fastType // 0: any type
	enum     []any    // strings, float64s and bools; nil: no enum
	constant any
	hasConst bool

	minimum, maximum, exclusiveMin, exclusiveMax *float64
	minLength, maxLength                         *int

	items              *fast
	minItems, maxItems *int

	properties         map[string]*fast
	required           []string
	additional         *fast // nil: any
	noAdditional       bool  // additionalProperties: false
	minProps, maxProps *int
}

// fastKeywords are the jsonschema.Schema fields a fast schema handles or
// may ignore (annotations, which do not affect validation).
var fastKeywords = map[string]bool{
	"ID": true, "Schema": true, "Comment": true, "Title": true, "Description": true,
	"Default": true, "Deprecated": true, "ReadOnly": true, "WriteOnly": true, "Examples": true,
	"Format": true, "ContentEncoding": true, "ContentMediaType": true, "Extra": true, "PropertyOrder": true,
	"Type": true, "Types": true, "Enum": true, "Const": true,
	"Minimum": true, "Maximum": true, "ExclusiveMinimum": true, "ExclusiveMaximum": true,
	"MinLength": true, "MaxLength": true,
	"Items": true, "MinItems": true, "MaxItems": true,
	"Properties": true, "Required": true, "AdditionalProperties": true, "MinProperties": true, "MaxProperties": true,
}

// dialects are the values of $schema jsonschema-go validates.
var dialects = []string{"", Draft, "http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft-07/schema#"}

// maxFastDepth bounds the nesting of compiled schemas.
const maxFastDepth = 32

// compileFast compiles s, or returns nil if s uses anything else.
func compileFast(s *jsonschema.Schema, depth int) *fast {
	if s == nil || depth > maxFastDepth {
		return nil
	}
	// jsonschema-go refuses to validate against other dialects; a nested
	// $schema is left to it.
	switch {
	case depth == 0 && !slices.Contains(dialects, s.Schema), depth > 0 && s.Schema != "":
		return nil
	}
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if !fastKeywords[v.Type().Field(i).Name] && !v.Field(i).IsZero() {
			return nil
		}
	}
	f := &fast{
		minimum: s.Minimum, maximum: s.Maximum, exclusiveMin: s.ExclusiveMinimum, exclusiveMax: s.ExclusiveMaximum,
		minLength: s.MinLength, maxLength: s.MaxLength,
		minItems: s.MinItems, maxItems: s.MaxItems, minProps: s.MinProperties, maxProps: s.MaxProperties,
		required: s.Required,
	}
	types := s.Types
	if s.Type != "" {
		types = []string{s.Type}
	}
	for _, name := range types {
		t, ok := typeNames[name]
		if !ok {
			return nil
		}
		f.types |= t
	}
	if s.Types != nil && len(s.Types) == 0 {
		return nil // "type": [] admits nothing; leave it to jsonschema-go
	}
	if s.Enum != nil {
		for _, e := range s.Enum {
			if !simple(e) {
				return nil
			}
		}
		f.enum = s.Enum
	}
	if s.Const != nil {
		if !simple(*s.Const) {
			return nil
		}
		f.constant, f.hasConst = *s.Const, true
	}
	if s.Items != nil {
		if f.items = compileFast(s.Items, depth+1); f.items == nil {
			return nil
		}
	}
	if len(s.Properties) > 0 {
		f.properties = make(map[string]*fast, len(s.Properties))
		for name, ps := range s.Properties {
			if f.properties[name] = compileFast(ps, depth+1); f.properties[name] == nil {
				return nil
			}
		}
	}
	if a := s.AdditionalProperties; a != nil {
		if isFalse(a) {
			f.noAdditional = true
		} else if f.additional = compileFast(a, depth+1); f.additional == nil {
			return nil
		}
	}
	return f
}

// simple reports whether an enum or const value is one the fast check
// compares (as jsonschema-go does, numbers by value).
func simple(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

// isFalse reports whether s is the schema false ({"not": {}}) and nothing
// else.
func isFalse(s *jsonschema.Schema) bool {
	rest := *s
	rest.Not = nil
	return s.Not != nil && reflect.ValueOf(*s.Not).IsZero() && reflect.ValueOf(rest).IsZero()
}

// valid reports whether v, a value as encoding/json decodes into an any,
// certainly satisfies the schema. False means "not certain".
func (f *fast) valid(v any) bool {
	var t fastType
	switch x := v.(type) {
	case nil:
		t = tNull
	case bool:
		t = tBoolean
	case float64:
		if _, frac := math.Modf(x); frac == 0 {
			t = tInteger
		} else {
			t = tNumber
		}
	case string:
		t = tString
	case []any:
		t = tArray
	case map[string]any:
		t = tObject
	default:
		return false // a Go value encoding/json does not produce
	}
	if f.types != 0 && f.types&t == 0 {
		return false
	}
	if f.enum != nil && !slices.ContainsFunc(f.enum, func(e any) bool { return e == v }) {
		return false
	}
	if f.hasConst && f.constant != v {
		return false
	}
	switch x := v.(type) {
	case float64:
		if f.minimum != nil && x < *f.minimum || f.maximum != nil && x > *f.maximum ||
			f.exclusiveMin != nil && x <= *f.exclusiveMin || f.exclusiveMax != nil && x >= *f.exclusiveMax {
			return false
		}
	case string:
		if f.minLength != nil || f.maxLength != nil {
			n := utf8.RuneCountInString(x)
			if f.minLength != nil && n < *f.minLength || f.maxLength != nil && n > *f.maxLength {
				return false
			}
		}
	case []any:
		if f.minItems != nil && len(x) < *f.minItems || f.maxItems != nil && len(x) > *f.maxItems {
			return false
		}
		if f.items != nil {
			for _, item := range x {
				if !f.items.valid(item) {
					return false
				}
			}
		}
	case map[string]any:
		if f.minProps != nil && len(x) < *f.minProps || f.maxProps != nil && len(x) > *f.maxProps {
			return false
		}
		for _, name := range f.required {
			if _, ok := x[name]; !ok {
				return false
			}
		}
		for name, pv := range x {
			if ps, ok := f.properties[name]; ok {
				if !ps.valid(pv) {
					return false
				}
				continue
			}
			if f.noAdditional || f.additional != nil && !f.additional.valid(pv) {
				return false
			}
		}
	}
	return true
}
