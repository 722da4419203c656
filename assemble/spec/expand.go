package spec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
)

// expander replaces ${VAR} in every string of a decoded config, naming the
// field of a bad reference.
type expander struct {
	src    *configSource
	getenv func(string) (string, bool)
}

var mapSliceType = reflect.TypeOf(yaml.MapSlice{})

// value expands every string held by v (at YAML path p).
func (x expander) value(v reflect.Value, p string) error {
	if err := x.src.step(); err != nil {
		return err
	}
	switch v.Kind() {
	case reflect.String:
		out, err := x.str(v.String(), p)
		if err != nil {
			return err
		}
		v.SetString(out)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return x.value(v.Elem(), p)
	case reflect.Interface:
		return x.iface(v, p)
	case reflect.Struct:
		return x.fields(v, p)
	case reflect.Slice:
		return x.slice(v, p)
	case reflect.Map:
		return x.mapValues(v, p)
	}
	return nil
}

// slice expands a list's items, or an ordered mapping's (named by key).
func (x expander) slice(v reflect.Value, p string) error {
	if v.Type() == mapSliceType { // an ordered mapping: its items are named by key
		for i := range v.Len() {
			if err := x.fields(v.Index(i), p); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range v.Len() {
		if err := x.value(v.Index(i), fmt.Sprintf("%s[%d]", p, i)); err != nil {
			return err
		}
	}
	return nil
}

// mapValues expands a map's values (through settable copies).
func (x expander) mapValues(v reflect.Value, p string) error {
	for _, k := range v.MapKeys() {
		e := reflect.New(v.Type().Elem()).Elem()
		e.Set(v.MapIndex(k))
		if err := x.value(e, joinPath(p, fmt.Sprint(k.Interface()))); err != nil {
			return err
		}
		v.SetMapIndex(k, e)
	}
	return nil
}

func (x expander) str(s, p string) (string, error) {
	out, err := expandEnv([]byte(s), x.getenv)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return "", x.src.errorf(p, "%s", ce.Msg)
		}
		return "", err
	}
	return string(out), nil
}

// iface expands what an interface holds: a string, or a list or map
// (through a settable copy).
func (x expander) iface(v reflect.Value, p string) error {
	if v.IsNil() {
		return nil
	}
	if v.Elem().Kind() == reflect.String {
		out, err := x.str(v.Elem().String(), p)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(out))
		return nil
	}
	c := reflect.New(v.Elem().Type()).Elem()
	c.Set(v.Elem())
	if err := x.value(c, p); err != nil {
		return err
	}
	v.Set(c)
	return nil
}

// fields expands a struct's yaml fields, or an ordered map's item.
func (x expander) fields(v reflect.Value, p string) error {
	if item, ok := v.Addr().Interface().(*yaml.MapItem); ok {
		return x.value(reflect.ValueOf(&item.Value).Elem(), joinPath(p, fmt.Sprint(item.Key)))
	}
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || !t.Field(i).IsExported() {
			continue
		}
		if err := x.value(v.Field(i), joinPath(p, name)); err != nil {
			return err
		}
	}
	return nil
}

// maxRefNesting is how deep references may nest in defaults, as in
// ${A:-${B:-x}} (two).
const maxRefNesting = 8

// expandEnv replaces ${VAR} and ${VAR:-default} with the environment's
// values; $$ is a literal $. A default is expanded the same way when it is
// used, so it may name other variables: ${A:-${B:-x}}. A bare $VAR is left
// alone (shell commands in healthchecks use it). An unset ${VAR} without a
// default is an error.
func expandEnv(in []byte, getenv func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	line := 1
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\n' {
			line++
		}
		if c != '$' || i+1 >= len(in) {
			out.WriteByte(c)
			continue
		}
		switch in[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end, err := expandRef(&out, in[i:], line, getenv)
		if err != nil {
			return nil, err
		}
		i += end
	}
	return out.Bytes(), nil
}

// expandRef writes the expansion of the reference s starts with (s begins
// "${", on line) to out and returns where the reference ends in s.
func expandRef(out *bytes.Buffer, s []byte, line int, getenv func(string) (string, bool)) (int, error) {
	end, literal := refEnd(s)
	switch {
	case end == -2:
		return 0, &ConfigError{Line: line, Msg: fmt.Sprintf("references nest more than %d deep in defaults", maxRefNesting)}
	case end < 0:
		return 0, &ConfigError{Line: line, Msg: "unterminated ${ in variable reference"}
	}
	expr := string(s[2:end])
	name, def, hasDef := strings.Cut(expr, ":-")
	if !validVarName(name) {
		return 0, &ConfigError{Line: line, Msg: fmt.Sprintf("${%s}: not a variable name (write $${ for a literal ${)", expr)}
	}
	if _, ok := platformVars[name]; ok {
		if hasDef {
			return 0, &ConfigError{Line: line, Msg: fmt.Sprintf("${%s} is the platform being built and takes no default", expr)}
		}
		out.WriteString("${" + name + "}") // expanded per platform (ForPlatform)
		return end, nil
	}
	if err := substitute(out, name, def, hasDef, literal, line, getenv); err != nil {
		return 0, err
	}
	return end, nil
}

// substitute writes the value of the variable name to out, or its default
// def (taken as it is when literal, else expanded).
func substitute(out *bytes.Buffer, name, def string, hasDef, literal bool, line int, getenv func(string) (string, bool)) error {
	v, ok := getenv(name)
	switch {
	case ok && (v != "" || !hasDef):
		out.WriteString(v)
	case hasDef && literal:
		out.WriteString(def)
	case hasDef:
		d, err := expandEnv([]byte(def), getenv)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				ce.Line = line // a default is on one line
			}
			return err
		}
		out.Write(d)
	default:
		return &ConfigError{Line: line, Msg: fmt.Sprintf("${%s} is not set; set it in the environment or write ${%s:-default}", name, name)}
	}
	return nil
}

// refEnd finds the } that closes the reference s starts with (s begins
// "${"), on its line: -1 if there is none, -2 if references nest more than
// maxRefNesting deep. When the braces of references nested in it do not
// match, the reference ends at its first } and literal says to take its
// default as it is (${A:-${} is "${" when A is unset).
func refEnd(s []byte) (end int, literal bool) {
	first, depth := -1, 1
	for j := 2; j < len(s) && s[j] != '\n'; j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '$':
			j++
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			if depth++; depth > maxRefNesting {
				return -2, false
			}
			j++
		case s[j] == '}':
			if first < 0 {
				first = j
			}
			if depth--; depth == 0 {
				return j, false
			}
		}
	}
	return first, true
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}
