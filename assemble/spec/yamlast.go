package spec

// Walks of gantry.yaml's syntax tree, done once before decoding: they bound
// what aliases expand to, check that lists hold strings, and give the
// nodes of mappings by key, so that nothing later looks a node up by path.

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Aliases may add at most maxAliasNodes nodes and maxAliasBytes bytes of
// scalars to a config, or aliasGrowth times the file's own nodes and
// bytes, whichever is more. Anchors and aliases share a layer list or a
// value between images; a few hundred bytes of them nested in each other
// expand to millions of nodes, which the decoder, ${VAR} expansion and the
// validator would each go through.
const (
	maxAliasNodes = 100_000
	maxAliasBytes = 4 << 20
	aliasGrowth   = 10
)

// size is what a node expands to: nodes and bytes of scalar text.
type size struct{ nodes, bytes int }

func (a *size) add(b size) { a.nodes += b.nodes; a.bytes += b.bytes }

// step counts a node visited by a walk or a lookup, and checks every so
// often whether loading was cancelled.
func (s *configSource) step() error {
	s.steps++
	if s.steps%1024 == 0 && s.ctx != nil {
		return s.ctx.Err()
	}
	return nil
}

// children calls f with each child of n: an anchor's value, not its name;
// never an alias's anchor.
func children(n ast.Node, f func(ast.Node) error) error {
	var kids []ast.Node
	switch n := n.(type) {
	case *ast.DocumentNode:
		kids = []ast.Node{n.Body}
	case *ast.MappingNode:
		for _, kv := range n.Values {
			if err := f(kv); err != nil {
				return err
			}
		}
		return nil
	case *ast.MappingValueNode:
		kids = []ast.Node{n.Key, n.Value}
	case *ast.MappingKeyNode:
		kids = []ast.Node{n.Value}
	case *ast.SequenceNode:
		kids = n.Values
	case *ast.AnchorNode:
		kids = []ast.Node{n.Value}
	case *ast.TagNode:
		kids = []ast.Node{n.Value}
	}
	for _, k := range kids {
		if isNil(k) {
			continue
		}
		if err := f(k); err != nil {
			return err
		}
	}
	return nil
}

// isNil reports a nil node, including a nil pointer in the interface.
func isNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// scalarBytes is the length of a scalar's text (0 for a collection).
func scalarBytes(n ast.Node) int {
	switch n := n.(type) {
	case *ast.LiteralNode:
		if n.Value != nil {
			return len(n.Value.Value)
		}
	case ast.ScalarNode:
		if t := n.GetToken(); t != nil {
			return len(t.Value)
		}
	}
	return 0
}

func tokenLine(n ast.Node) int {
	if isNil(n) || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// countNodes counts the nodes written in the file.
func (s *configSource) countNodes(n ast.Node) (int, error) {
	total := 1
	err := children(n, func(c ast.Node) error {
		k, err := s.countNodes(c)
		total += k
		return err
	})
	if err == nil {
		err = s.step()
	}
	return total, err
}

func (s *configSource) lineErrorf(line int, format string, args ...any) *ConfigError {
	return &ConfigError{File: s.name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// resolve is the node n stands for: an anchor's or tag's value, an alias's
// anchor's value (nil for an unknown alias).
func (s *configSource) resolve(n ast.Node) ast.Node {
	for range 64 {
		switch m := n.(type) {
		case *ast.AnchorNode:
			n = m.Value
		case *ast.TagNode:
			n = m.Value
		case *ast.AliasNode:
			a := s.anchorOf[m]
			if a == nil {
				return nil
			}
			n = a.Value
		default:
			if isNil(n) {
				return nil
			}
			return n
		}
	}
	return nil
}

// mapEntries are a mapping's value nodes by key, and its keys in order.
type mapEntries struct {
	byKey map[string]ast.Node
	keys  []string
}

// get is the value node of key k (nil if there is none, or no mapping).
func (m *mapEntries) get(k string) ast.Node {
	if m == nil {
		return nil
	}
	return m.byKey[k]
}

// entries are the entries of the mapping n stands for, with those of
// mappings merged into it (<<) where it has none of its own; nil when n
// is not a mapping. Built once per mapping, they make a lookup by key one
// step, not a scan.
func (s *configSource) entries(n ast.Node) (*mapEntries, error) {
	n = s.resolve(n)
	if _, ok := n.(*ast.MappingNode); !ok {
		if _, ok := n.(*ast.MappingValueNode); !ok {
			return nil, nil
		}
	}
	m := &mapEntries{byKey: map[string]ast.Node{}}
	return m, s.addEntries(m, n, map[ast.Node]bool{})
}

// addEntries adds the entries of mapping n that m lacks, then those of
// the mappings n merges. Each mapping is added once: merging it again
// (an anchor merged into itself, or twice) would add nothing.
func (s *configSource) addEntries(m *mapEntries, n ast.Node, seen map[ast.Node]bool) error {
	if seen[n] {
		return nil
	}
	seen[n] = true
	var values []*ast.MappingValueNode
	switch n := n.(type) {
	case *ast.MappingNode:
		values = n.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{n}
	default:
		return nil
	}
	var merged []ast.Node
	for _, kv := range values {
		if err := s.step(); err != nil {
			return err
		}
		if isNil(kv.Key) {
			continue
		}
		if kv.Key.IsMergeKey() {
			merged = append(merged, kv.Value)
			continue
		}
		k := s.keyText(kv.Key)
		if _, ok := m.byKey[k]; !ok {
			m.byKey[k] = kv.Value
			m.keys = append(m.keys, k)
		}
	}
	for _, v := range merged {
		v = s.resolve(v)
		if seq, ok := v.(*ast.SequenceNode); ok {
			for _, item := range seq.Values {
				if err := s.addEntries(m, s.resolve(item), seen); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.addEntries(m, v, seen); err != nil {
			return err
		}
	}
	return nil
}

// keyText is a mapping key as the decoder reads it.
func (s *configSource) keyText(k ast.Node) string {
	if r := s.resolve(k); r != nil {
		k = r
	}
	if mk, ok := k.(*ast.MappingKeyNode); ok && !isNil(mk.Value) { // ? key
		k = mk.Value
	}
	if isNil(k) || k.GetToken() == nil {
		return ""
	}
	return k.GetToken().Value
}

// items are the nodes of the list n stands for (nil if it is not a list).
func (s *configSource) items(n ast.Node) []ast.Node {
	if seq, ok := s.resolve(n).(*ast.SequenceNode); ok {
		return seq.Values
	}
	return nil
}

// checkShapes walks the file along File's types and refuses a list or a
// mapping where a string belongs: as an item of cmd:, tags:, ports: and
// the other lists of strings (an exec-form healthcheck test among them),
// and as the value of a label or annotation. The decoder would make text
// of some and fail on others with an error that names no field.
func (s *configSource) checkShapes() error {
	if s.ast == nil || len(s.ast.Docs) == 0 || isNil(s.ast.Docs[0].Body) {
		return nil
	}
	return s.shape(s.ast.Docs[0].Body, reflect.TypeOf(File{}), "")
}

func (s *configSource) shape(n ast.Node, t reflect.Type, p string) error {
	if err := s.step(); err != nil {
		return err
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == mapSliceType:
		return nil // env: the validator says what is wrong with a value
	case t.Kind() == reflect.Struct:
		return s.shapeStruct(n, t, p)
	case t.Kind() == reflect.Slice:
		return s.shapeSlice(n, t, p)
	case t.Kind() == reflect.Interface: // healthcheck test: a string or a list of strings
		return s.scalarItems(n, p)
	case t.Kind() == reflect.Map:
		return s.shapeMap(n, p)
	}
	return nil
}

// shapeStruct checks the fields of struct type t found in mapping n.
func (s *configSource) shapeStruct(n ast.Node, t reflect.Type, p string) error {
	m, err := s.entries(n)
	if err != nil || m == nil {
		return err // not a mapping: the decoder says so
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if v, ok := m.byKey[name]; ok && name != "" {
			if err := s.shape(v, t.Field(i).Type, joinPath(p, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// shapeSlice checks the items of list n, of slice type t.
func (s *configSource) shapeSlice(n ast.Node, t reflect.Type, p string) error {
	elem := t.Elem()
	for elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	if elem.Kind() != reflect.Struct {
		return s.scalarItems(n, p)
	}
	for j, item := range s.items(n) {
		if err := s.shape(item, elem, fmt.Sprintf("%s[%d]", p, j)); err != nil {
			return err
		}
	}
	return nil
}

// scalarItems refuses a list or mapping as an item of list n.
func (s *configSource) scalarItems(n ast.Node, p string) error {
	for j, item := range s.items(n) {
		if err := s.scalar(item, fmt.Sprintf("%s[%d]", p, j), "item", p); err != nil {
			return err
		}
	}
	return nil
}

// shapeMap refuses a list or mapping as a value of mapping n.
func (s *configSource) shapeMap(n ast.Node, p string) error {
	m, err := s.entries(n)
	if err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	for _, k := range m.keys {
		if err := s.scalar(m.byKey[k], joinPath(p, k), "value", p); err != nil {
			return err
		}
	}
	return nil
}

// scalar refuses a list or mapping at n, found at path p as an item or
// value of the field at path of.
func (s *configSource) scalar(n ast.Node, p, what, of string) error {
	if err := s.step(); err != nil {
		return err
	}
	field := of[strings.LastIndexByte(of, '.')+1:]
	switch s.resolve(n).(type) {
	case *ast.SequenceNode:
		return &ConfigError{File: s.name, Line: tokenLine(n), Path: p, Msg: fmt.Sprintf("each %s of %s: is one string, not a list; give the strings one by one, or quote it to keep the brackets as text", what, field)}
	case *ast.MappingNode, *ast.MappingValueNode:
		return &ConfigError{File: s.name, Line: tokenLine(n), Path: p, Msg: fmt.Sprintf(`each %s of %s: is one string, not a mapping; quote it ("a: b") to keep the colon as text`, what, field)}
	}
	return nil
}
