package spec

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// normalize puts back the file's own text for numbers and booleans the
// decoder typed before they reached string fields, so the validator sees
// what was written.
func (src *configSource) normalize(f *File) {
	for i := range f.Images {
		ic := &f.Images[i]
		p := fmt.Sprintf("images[%d]", i)
		ic.Entrypoint = src.seqText(p+".entrypoint", ic.Entrypoint)
		ic.Cmd = src.seqText(p+".cmd", ic.Cmd)
		ic.Tags = src.seqText(p+".tags", ic.Tags)
		ic.Labels = src.mapText(p+".labels", ic.Labels)
		ic.Annotations = src.mapText(p+".annotations", ic.Annotations)
		for j, kv := range ic.Env {
			switch kv.Value.(type) {
			case nil, string, []any, yaml.MapSlice, map[string]any:
			default:
				ic.Env[j].Value = src.scalarText(src.mapEntry(p+".env", fmt.Sprint(kv.Key)), fmt.Sprint(kv.Value))
			}
		}
		if hc := ic.Healthcheck; hc != nil {
			if args, ok := hc.Test.([]any); ok {
				out := make([]any, len(args))
				for j, a := range args {
					out[j] = src.scalarText(src.node(fmt.Sprintf("%s.healthcheck.test[%d]", p, j)), fmt.Sprint(a))
				}
				hc.Test = out
			}
		}
	}
}

// node returns the node at a path such as images[0].cmd[1], or nil.
func (src *configSource) node(p string) ast.Node {
	if src.ast == nil {
		return nil
	}
	yp, err := yaml.PathString("$." + p)
	if err != nil {
		return nil
	}
	n, err := yp.FilterFile(src.ast)
	if err != nil {
		return nil
	}
	return n
}

// mapEntry returns the value node of key in the mapping at p, or nil.
func (src *configSource) mapEntry(p, key string) ast.Node {
	m, ok := src.node(p).(*ast.MappingNode)
	if !ok {
		return nil
	}
	for _, kv := range m.Values {
		if kv.Key != nil && kv.Key.GetToken() != nil && kv.Key.GetToken().Value == key {
			return kv.Value
		}
	}
	return nil
}

// scalarText returns n's source text when it is a number or boolean and
// decoded (the decoder's string for it) otherwise.
func (src *configSource) scalarText(n ast.Node, decoded string) string {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	}
	return decoded
}

func (src *configSource) seqText(p string, vals []string) []string {
	if vals == nil {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = src.scalarText(src.node(fmt.Sprintf("%s[%d]", p, i)), v)
	}
	return out
}

func (src *configSource) mapText(p string, vals map[string]string) map[string]string {
	if vals == nil {
		return nil
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		out[k] = src.scalarText(src.mapEntry(p, k), v)
	}
	return out
}
