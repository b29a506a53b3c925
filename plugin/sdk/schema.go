package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Schema describes a handler block: the attributes a job file may set in
// handler "NAME" { ... }. The runner decodes every handler block against
// its plugin's Schema before anything runs, so a wrong type, a missing
// required attribute or an unknown attribute is reported at its line in the
// job file; the block then reaches Run as a JSON object (see Run.Settings).
//
// An empty Schema accepts an empty block only.
type Schema struct {
	// Attributes lists the block's attributes; names are unique.
	Attributes []Attribute
}

// Attribute is one attribute of a handler block.
type Attribute struct {
	// Name is the attribute's name, an HCL identifier (letters, digits,
	// '_' and '-', not starting with a digit or '-').
	Name string
	// Type is the attribute's type.
	Type Type
	// Required attributes must be set (to a non-null value). A required
	// attribute has no Default.
	Required bool
	// Default is the value a handler sees when the job file leaves the
	// attribute out (or sets it to null); nil means none. It must be
	// JSON-encodable and of Type: a string, a float64/int, a bool, a
	// []string, a []float64/[]int, a map[string]string, or anything for
	// TypeAny. It is encoded as JSON once per plugin process; a
	// json.RawMessage is taken as that JSON (the runner's view of a
	// plugin's schema keeps the defaults so).
	Default any
	// Description is one sentence for documentation and diagnostics.
	Description string
}

// Type is the type of an attribute, spelled as an HCL type expression (its
// String). How each type maps to HCL's type system (cty) and to the
// settings JSON a handler decodes:
//
//	Type            HCL/cty                        settings JSON   Go field
//	TypeString      string (cty.String)            string          string
//	TypeNumber      number (cty.Number)            number          float64, int…
//	TypeBool        bool (cty.Bool)                true/false      bool
//	TypeListString  list(string) (cty.List)        [string…]       []string
//	TypeListNumber  list(number) (cty.List)        [number…]       []float64, []int…
//	TypeMapString   map(string) (cty.Map)          {name: string}  map[string]string
//	TypeAny         any (cty.DynamicPseudoType)    any JSON value  any, json.RawMessage
//
// HCL converts where it can (a number given for a string attribute becomes
// a string, a tuple becomes a list), as with the job file's own attributes.
// The String of every Type parses with hcl/ext/typeexpr.TypeConstraint.
type Type string

// The attribute types; Types lists them all.
const (
	TypeString     Type = "string"
	TypeNumber     Type = "number"
	TypeBool       Type = "bool"
	TypeListString Type = "list(string)"
	TypeListNumber Type = "list(number)"
	TypeMapString  Type = "map(string)"
	TypeAny        Type = "any"
)

// Types returns every valid Type.
func Types() []Type {
	return []Type{TypeString, TypeNumber, TypeBool, TypeListString, TypeListNumber, TypeMapString, TypeAny}
}

// String returns t's HCL type expression, e.g. "list(string)".
func (t Type) String() string { return string(t) }

// Valid reports whether t is one of Types.
func (t Type) Valid() bool { return slices.Contains(Types(), t) }

// ParseType returns the Type spelled s (an HCL type expression as String
// returns it; spaces are ignored).
func ParseType(s string) (Type, error) {
	t := Type(strings.Join(strings.Fields(s), ""))
	if !t.Valid() {
		return "", fmt.Errorf("sdk: unknown attribute type %q (want one of %v)", s, Types())
	}
	return t, nil
}

// accepts reports whether the JSON value v (as decoded into any by
// encoding/json) is of type t. null is accepted by every type: it means
// "not set".
func (t Type) accepts(v any) bool {
	if v == nil {
		return true
	}
	switch t {
	case TypeString:
		_, ok := v.(string)
		return ok
	case TypeNumber:
		_, ok := v.(float64)
		return ok
	case TypeBool:
		_, ok := v.(bool)
		return ok
	case TypeListString, TypeListNumber:
		l, ok := v.([]any)
		if !ok {
			return false
		}
		elem := TypeString
		if t == TypeListNumber {
			elem = TypeNumber
		}
		for _, e := range l {
			if e == nil || !elem.accepts(e) {
				return false
			}
		}
		return true
	case TypeMapString:
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, e := range m {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	case TypeAny:
		return true
	}
	return false
}

var identifier = regexp.MustCompile(`^[\p{L}_][\p{L}\p{N}_-]*$`)

// Validate reports what is wrong with s, all of it: an empty, duplicate or
// non-identifier name, an unknown type, a default that is not JSON or not
// of the attribute's type, a required attribute with a default.
func (s Schema) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, a := range s.Attributes {
		name := a.Name
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("attribute %d: empty name", i))
			name = fmt.Sprintf("#%d", i)
		case !identifier.MatchString(name):
			errs = append(errs, fmt.Errorf("attribute %q: name is not an identifier", name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("attribute %q: declared twice", name))
		}
		seen[name] = true
		if !a.Type.Valid() {
			errs = append(errs, fmt.Errorf("attribute %q: unknown type %q (want one of %v)", name, a.Type, Types()))
		}
		if a.Default == nil {
			continue
		}
		if a.Required {
			errs = append(errs, fmt.Errorf("attribute %q: required, yet has a default", name))
		}
		v, err := jsonValue(a.Default)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %q: default: %w", name, err))
		} else if a.Type.Valid() && !a.Type.accepts(v) {
			errs = append(errs, fmt.Errorf("attribute %q: default %s is not a %s", name, compact(v), a.Type))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sdk: invalid schema: %w", errors.Join(errs...))
	}
	return nil
}

// CheckSettings checks settings (a handler block as a JSON object) against
// s the way the runner's decoding does: every required attribute present
// and not null, no attribute that s does not declare, every value of its
// attribute's type (strictly: no conversions). It reports every problem.
// Empty settings are an empty object.
func (s Schema) CheckSettings(settings json.RawMessage) error {
	obj, err := settingsObject(settings)
	if err != nil {
		return err
	}
	var errs []error
	declared := map[string]Attribute{}
	for _, a := range s.Attributes {
		declared[a.Name] = a
		v, ok := obj[a.Name]
		if a.Required && (!ok || v == nil) {
			errs = append(errs, fmt.Errorf("missing required attribute %q (%s)", a.Name, a.Type))
		}
		if ok && !a.Type.accepts(v) {
			errs = append(errs, fmt.Errorf("attribute %q: %s is not a %s", a.Name, compact(v), a.Type))
		}
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, ok := declared[name]; !ok {
			errs = append(errs, fmt.Errorf("unknown attribute %q", name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sdk: settings: %w", errors.Join(errs...))
	}
	return nil
}

// Defaults returns the defaults of s as a settings JSON object: every
// attribute with a Default, set to it.
func (s Schema) Defaults() (json.RawMessage, error) {
	return s.applyDefaults(nil)
}

// applyDefaults returns settings with the defaults of s filled in (see defaults.fill), for
// one call: a server encodes its defaults once and fills them into every run.
func (s Schema) applyDefaults(settings json.RawMessage) (json.RawMessage, error) {
	d, err := s.encodeDefaults()
	if err != nil {
		return nil, err
	}
	return d.fill(settings)
}

// defaults are a schema's defaults by attribute name, each encoded as JSON once: the
// form in which they go to the runner (Attribute.default_json) and into every run's
// settings, so a default is never converted again.
type defaults map[string]json.RawMessage

// encodeDefaults encodes the defaults of s.
func (s Schema) encodeDefaults() (defaults, error) {
	d := defaults{}
	for _, a := range s.Attributes {
		if a.Default == nil {
			continue
		}
		b, err := json.Marshal(a.Default)
		if err != nil {
			return nil, fmt.Errorf("sdk: default of %q: %w", a.Name, err)
		}
		d[a.Name] = b
	}
	return d, nil
}

// fill returns settings with each attribute that has a default and is absent or null
// set to it. Settings that miss no default are returned unchanged.
func (d defaults) fill(settings json.RawMessage) (json.RawMessage, error) {
	data := bytes.TrimSpace(settings)
	if len(data) == 0 {
		data = []byte("{}")
	}
	if len(d) == 0 {
		return data, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("sdk: settings: %w", err)
	}
	if obj == nil {
		obj = map[string]json.RawMessage{}
	}
	missing := false
	for name, v := range d {
		if cur, ok := obj[name]; !ok || bytes.Equal(bytes.TrimSpace(cur), []byte("null")) {
			obj[name] = v
			missing = true
		}
	}
	if !missing {
		return data, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("sdk: settings: %w", err)
	}
	return out, nil
}

// settingsObject decodes settings as a JSON object.
func settingsObject(settings json.RawMessage) (map[string]any, error) {
	data := bytes.TrimSpace(settings)
	if len(data) == 0 {
		return map[string]any{}, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("sdk: settings: not a JSON object: %w", err)
	}
	if obj == nil {
		return map[string]any{}, nil
	}
	return obj, nil
}

// jsonValue round-trips v through JSON, giving the value a handler would
// decode.
func jsonValue(v any) (any, error) {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, fmt.Errorf("%v is not a JSON number", f)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
