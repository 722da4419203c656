package spec

import "github.com/goccy/go-yaml/ast"

// The alias bound: what each alias expands to, counted once per anchor.

// aliasWalk goes through the file in order, as the decoder does, with the
// anchors defined so far and what each expands to, so that an alias costs
// one lookup however deep the aliases in its anchor go.
type aliasWalk struct {
	src      *configSource
	anchors  map[string]*ast.AnchorNode
	expanded map[*ast.AnchorNode]size
	added    size // by the aliases so far
	limit    size
}

// checkAliases refuses a file whose aliases expand past the bound, naming
// the alias that passes it, and records which anchor each alias means.
func (s *configSource) checkAliases(fileBytes int) error {
	if s.ast == nil || len(s.ast.Docs) == 0 {
		return nil
	}
	doc := s.ast.Docs[0]
	own, err := s.countNodes(doc)
	if err != nil {
		return err
	}
	w := &aliasWalk{
		src: s, anchors: map[string]*ast.AnchorNode{}, expanded: map[*ast.AnchorNode]size{},
		limit: size{max(maxAliasNodes, aliasGrowth*own), max(maxAliasBytes, aliasGrowth*fileBytes)},
	}
	s.anchorOf = map[*ast.AliasNode]*ast.AnchorNode{}
	_, err = w.expand(doc)
	return err
}

// expand is what n expands to.
func (w *aliasWalk) expand(n ast.Node) (size, error) {
	if err := w.src.step(); err != nil {
		return size{}, err
	}
	switch n := n.(type) {
	case *ast.AliasNode:
		a := w.anchors[aliasName(n)]
		if a == nil {
			return size{1, 0}, nil // the decoder reports an unknown alias
		}
		e, ok := w.expanded[a]
		if !ok {
			// The decoder would decode the anchor into itself again for
			// as deep as File's types go: k aliases of an image in its
			// layers, and k in their files, are k^2 images.
			return size{}, w.src.lineErrorf(tokenLine(n), "alias *%s is inside its own anchor &%s (line %d); a config cannot hold itself: write the values out", aliasName(n), aliasName(n), tokenLine(a))
		}
		w.src.anchorOf[n] = a
		w.added.add(e)
		if w.added.nodes > w.limit.nodes {
			return size{}, w.src.lineErrorf(tokenLine(n), "alias *%s takes what aliases add to the config past %d nodes; write the values out or use fewer aliases (they may add %d nodes, or %d times the file's own if that is more)", aliasName(n), w.limit.nodes, maxAliasNodes, aliasGrowth)
		}
		if w.added.bytes > w.limit.bytes {
			return size{}, w.src.lineErrorf(tokenLine(n), "alias *%s takes what aliases add to the config past %d bytes of text; write the values out or use fewer aliases (they may add %d bytes, or %d times the file's size if that is more)", aliasName(n), w.limit.bytes, maxAliasBytes, aliasGrowth)
		}
		return e, nil
	case *ast.AnchorNode:
		if name := anchorName(n); name != "" {
			w.anchors[name] = n // before its value: an alias in there means it
		}
	}
	total := size{1, scalarBytes(n)}
	err := children(n, func(c ast.Node) error {
		k, err := w.expand(c)
		total.add(k)
		return err
	})
	if a, ok := n.(*ast.AnchorNode); ok && err == nil {
		w.expanded[a] = total
	}
	return total, err
}

func aliasName(n *ast.AliasNode) string {
	if isNil(n.Value) || n.Value.GetToken() == nil {
		return ""
	}
	return n.Value.GetToken().Value
}

func anchorName(n *ast.AnchorNode) string {
	if isNil(n.Name) || n.Name.GetToken() == nil {
		return ""
	}
	return n.Name.GetToken().Value
}
