package spec

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// normalize puts back the file's own text for numbers and booleans the
// decoder typed before they reached string fields, so the validator sees
// what was written. Each mapping's entries are gathered once and each
// list's nodes are taken in order: the work is linear in the file.
func (src *configSource) normalize(f *File) error {
	if src.ast == nil || len(src.ast.Docs) == 0 {
		return nil
	}
	top, err := src.entries(src.ast.Docs[0].Body)
	if err != nil {
		return err
	}
	images := src.items(top.get("images"))
	for i := range f.Images {
		if err := src.normalizeImage(&f.Images[i], nth(images, i)); err != nil {
			return err
		}
	}
	return nil
}

// normalizeImage puts back the text of ic's strings from its node img.
func (src *configSource) normalizeImage(ic *ImageConfig, img ast.Node) error {
	m, err := src.entries(img)
	if err != nil {
		return err
	}
	ic.Entrypoint = src.seqText(m.get("entrypoint"), ic.Entrypoint)
	ic.Cmd = src.seqText(m.get("cmd"), ic.Cmd)
	ic.Tags = src.seqText(m.get("tags"), ic.Tags)
	if ic.Labels, err = src.mapText(m.get("labels"), ic.Labels); err != nil {
		return err
	}
	if ic.Annotations, err = src.mapText(m.get("annotations"), ic.Annotations); err != nil {
		return err
	}
	if err := src.envText(m.get("env"), ic.Env); err != nil {
		return err
	}
	return src.healthcheckText(m, ic.Healthcheck)
}

// envText puts back the text of env's scalar values from their node n.
func (src *configSource) envText(n ast.Node, env yaml.MapSlice) error {
	m, err := src.entries(n)
	if err != nil {
		return err
	}
	for j, kv := range env {
		switch kv.Value.(type) {
		case nil, string, []any, yaml.MapSlice, map[string]any:
		default:
			env[j].Value = src.scalarText(m.get(fmt.Sprint(kv.Key)), fmt.Sprint(kv.Value))
		}
	}
	return nil
}

// healthcheckText puts back the text of an exec-form healthcheck test's
// arguments from the image's mapping img.
func (src *configSource) healthcheckText(img *mapEntries, hc *HealthcheckConfig) error {
	if hc == nil {
		return nil
	}
	args, ok := hc.Test.([]any)
	if !ok {
		return nil
	}
	hm, err := src.entries(img.get("healthcheck"))
	if err != nil {
		return err
	}
	nodes := src.items(hm.get("test"))
	out := make([]any, len(args))
	for j, a := range args {
		out[j] = src.scalarText(nth(nodes, j), fmt.Sprint(a))
	}
	hc.Test = out
	return nil
}

// nth is nodes[i], or nil.
func nth(nodes []ast.Node, i int) ast.Node {
	if i < len(nodes) {
		return nodes[i]
	}
	return nil
}

// scalarText returns n's source text when it is a number or boolean and
// decoded (the decoder's string for it) otherwise.
func (src *configSource) scalarText(n ast.Node, decoded string) string {
	src.steps++
	switch n := src.resolve(n).(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	}
	return decoded
}

// seqText is vals, decoded from the list n, with its numbers and booleans
// as written.
func (src *configSource) seqText(n ast.Node, vals []string) []string {
	if vals == nil {
		return nil
	}
	nodes := src.items(n)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = src.scalarText(nth(nodes, i), v)
	}
	return out
}

// mapText is vals, decoded from the mapping n, with its numbers and
// booleans as written.
func (src *configSource) mapText(n ast.Node, vals map[string]string) (map[string]string, error) {
	if vals == nil {
		return nil, nil
	}
	m, err := src.entries(n)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		out[k] = src.scalarText(m.get(k), v)
	}
	return out, nil
}
