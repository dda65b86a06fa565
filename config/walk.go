package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The walk checks a parsed file against the configuration's types before
// anything is decoded, the way yaml's strict decoding would, but reporting
// every problem instead of the first, each with its key path, its line and
// what would be right: for an unknown key the nearest valid key, for a
// value of the wrong type the form expected. It takes each offending node
// out of the tree (an unknown key is deleted, a bad value becomes null), so
// that the rest decodes and its values can be validated too: all problems
// come out at once.

var (
	durationType  = reflect.TypeFor[time.Duration]()
	deviceType    = reflect.TypeFor[Device]()
	stationType   = reflect.TypeFor[Station]()
	unmarshalType = reflect.TypeFor[yaml.Unmarshaler]()
)

type walker struct {
	problems []*KeyError
	// lines maps the key paths seen to their key's line, so that value
	// problems found later name their line too.
	lines map[string]int
	// bad are the paths with a decoding problem: the value problems under
	// them follow from it and are not reported.
	bad []string
}

func newWalker() *walker { return &walker{lines: map[string]int{}} }

func (w *walker) add(path string, line int, err error) {
	w.problems = append(w.problems, &KeyError{Path: path, Line: line, Err: err})
	w.bad = append(w.bad, path)
}

func (w *walker) addf(path string, line int, format string, a ...any) {
	w.add(path, line, fmt.Errorf(format, a...))
}

// merge adds to the walk's problems the value problems of vs that do not
// follow from one of them, gives each the line of its key (or of the
// nearest enclosing key) and returns them all, by line.
func (w *walker) merge(vs []*KeyError) error {
	all := slices.Clone(w.problems)
	for _, v := range vs {
		if slices.ContainsFunc(w.bad, func(b string) bool { return under(v.Path, b) }) {
			continue
		}
		e := *v
		for p := e.Path; p != "" && e.Line == 0; p = parent(p) {
			e.Line = w.lines[p]
		}
		all = append(all, &e)
	}
	slices.SortStableFunc(all, func(a, b *KeyError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(all))
	for i, e := range all {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// under reports whether path is p or below it.
func under(path, p string) bool {
	rest, ok := strings.CutPrefix(path, p)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// parent strips path's last key or index, "" at the top.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	// A station's path ends in its label: stations[2] ("gate-3").
	if j := strings.LastIndex(path, " ("); j > i {
		return path[:j]
	}
	return path[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// drop replaces a bad value by null, which decodes to the zero value.
func drop(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// walk checks n against type t at path and reports whether n was kept.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return w.walk(n.Alias, t, path)
	}
	if isNull(n) {
		return true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalType) && t != deviceType {
		return w.leaf(n, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.wrongType(n, t, path)
		}
		w.mapping(n, path, structFields(t), nil)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.wrongType(n, t, path)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := fmt.Sprintf("%s[%q]", path, k.Value)
			w.lines[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return w.wrongType(n, t, path)
		}
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if t.Elem() == stationType {
				id := ""
				if v := mapValue(e, "id"); v != nil && v.Kind == yaml.ScalarNode {
					id = v.Value
				}
				p = stationPath(i, id)
			}
			w.lines[p] = e.Line
			w.walk(e, t.Elem(), p)
		}
	default:
		return w.leaf(n, t, path)
	}
	return true
}

// field is a key of a mapping and the type of its value.
type field struct {
	key string
	typ reflect.Type
}

// structFields lists t's keys by their yaml tags, inline structs
// flattened; fields tagged "-" and unexported ones are not keys.
func structFields(t reflect.Type) []field {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			out = append(out, structFields(f.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, f.Type})
	}
	return out
}

// foreign says, for a key a mapping does not have, why: "" for an unknown
// key, else the problem (a device key of another driver).
type foreign func(key string) string

// mapping checks n's keys against fields: unknown keys (with the nearest
// valid one), duplicates, and each value against its field's type.
func (w *walker) mapping(n *yaml.Node, path string, fields []field, other foreign) {
	seen := map[string]int{}
	keep := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			for _, m := range mergeSources(v) {
				if m.Kind == yaml.MappingNode {
					w.mapping(m, path, fields, other)
				}
			}
			keep = append(keep, k, v)
			continue
		}
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			w.addf(path, k.Line, "a key must be a plain name, not a %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.addf(p, k.Line, "set twice (first on line %d); a key may appear once", first)
			continue
		}
		seen[k.Value] = k.Line
		j := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if j < 0 {
			msg := ""
			if other != nil {
				msg = other(k.Value)
			}
			meant := ""
			if msg == "" {
				var hint string
				meant, hint = suggest(path, k.Value, fields)
				msg = "unknown key" + hint
			}
			w.addf(p, k.Line, "%s", msg)
			if meant != "" && !seenKey(n, meant) {
				// The key meant is missing: its own problems follow
				// from this one.
				w.bad = append(w.bad, meant)
			}
			continue
		}
		w.lines[p] = k.Line
		f := fields[j]
		if f.typ == deviceType || (f.typ.Kind() == reflect.Pointer && f.typ.Elem() == deviceType) {
			w.device(v, Kind(f.key), p)
		} else {
			w.walk(v, f.typ, p)
		}
		keep = append(keep, k, v)
	}
	n.Content = keep
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		var out []*yaml.Node
		for _, e := range v.Content {
			out = append(out, mergeSources(e)...)
		}
		return out
	}
	return []*yaml.Node{v}
}

// device checks a scanner or gate section: its driver, then its keys
// against the section type the driver registered.
func (w *walker) device(n *yaml.Node, kind Kind, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.addf(path, w.line(path, n), "must be a mapping with a driver key and the driver's keys (got %s)", got(n))
		drop(n)
		return
	}
	d := mapValue(n, "driver")
	if d != nil && d.Kind != yaml.ScalarNode {
		w.addf(join(path, "driver"), d.Line, "must be a driver name, one of %s (got %s)", strings.Join(Drivers(kind), ", "), got(d))
		drop(d)
		return
	}
	if d == nil {
		return // Validate: driver must be one of …
	}
	newSection, ok := lookupSection(kind, d.Value)
	if !ok {
		return // Validate names the drivers; the keys cannot be checked
	}
	fields := append([]field{{"driver", reflect.TypeFor[string]()}}, structFields(reflect.TypeOf(newSection()))...)
	w.mapping(n, path, fields, func(key string) string {
		if o := otherDriver(kind, d.Value, key); o != "" {
			return fmt.Sprintf("not used by driver %s (it is a key of driver %s)", d.Value, o)
		}
		return ""
	})
}

// leaf checks a scalar by decoding it into a value of t.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) bool {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return true
	}
	if n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(unmarshalType) {
		// The type says what is wrong: "lots" is not a size (…).
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
			msg = rest
		}
		w.addf(path, w.line(path, n), "%s", msg)
		drop(n)
		return false
	}
	return w.wrongType(n, t, path)
}

// line is the line of path's key when known, else n's.
func (w *walker) line(path string, n *yaml.Node) int {
	if l, ok := w.lines[path]; ok {
		return l
	}
	return n.Line
}

func (w *walker) wrongType(n *yaml.Node, t reflect.Type, path string) bool {
	if path == "" {
		path = "the file"
	}
	w.addf(path, w.line(path, n), "must be %s (got %s)", expected(t), got(n))
	drop(n)
	return false
}

// expected describes the form a value of t is written in.
func expected(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration such as 2s, 500ms or 1m30s"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number (0 or more)"
	case reflect.Float32, reflect.Float64:
		return "a number such as 1.5"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list (- item lines, or [a, b])"
	case reflect.Map:
		return "a mapping of name: " + strings.TrimPrefix(expected(t.Elem()), "a ")
	case reflect.Struct:
		keys := make([]string, 0)
		for _, f := range structFields(t) {
			keys = append(keys, f.key)
		}
		return "a mapping of keys (" + strings.Join(keys, ", ") + ")"
	}
	return t.String()
}

// got describes a node as found.
func got(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!str" {
			return fmt.Sprintf("%q", n.Value)
		}
		return n.Value
	}
	return kindName(n)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a value"
}

// seenKey reports whether mapping n has the key path's last key.
func seenKey(n *yaml.Node, path string) bool {
	key := path[strings.LastIndex(path, ".")+1:]
	return mapValue(n, key) != nil
}

// suggest names the valid key nearest to key (its path, and the hint),
// or lists the valid keys when none is near.
func suggest(path, key string, fields []field) (string, string) {
	best, bestD := "", 0
	norm := func(s string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s)) }
	for _, f := range fields {
		d := distance(norm(key), norm(f.key))
		if best == "" || d < bestD {
			best, bestD = f.key, d
		}
	}
	if best != "" && bestD <= max(1, min(len(key), len(best))/3) {
		return join(path, best), fmt.Sprintf("; did you mean %s?", join(path, best))
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return "", fmt.Sprintf(" (valid here: %s)", strings.Join(keys, ", "))
}

// distance is the edit distance (Levenshtein, counting a swap of two
// neighbours as one edit) between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
