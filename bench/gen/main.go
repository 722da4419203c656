// Command gen writes gantry's benchmark workloads: deterministic directory
// trees that look like the output of a web build.
//
//	go run ./bench/gen -workload small -out DIR   # ~2 MB, 30 files: html, js, css, svg
//	go run ./bench/gen -workload big -out DIR     # ~400 MB, ~9k files: ~60% text, ~40% images
//	go run ./bench/gen -workload many -out DIR    # ~200 MB, 100k small files: a node_modules
//
// Text files (JavaScript, JSON, CSS, HTML, source maps, SVG) are made of
// tokens drawn from a Zipf-distributed vocabulary, so they compress about as
// well as real minified code does (gzip -1 keeps roughly a third); "images"
// are random bytes behind a real file signature and do not compress at all.
// The same flags always give the same bytes: every file has its own seed.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// file is one file to write.
type file struct {
	path string
	kind string // js, json, css, html, map, svg, png, jpg, webp
	size int
	seed uint64
}

func main() {
	workload := flag.String("workload", "small", "small (~2 MB, 30 files), big (~400 MB, ~9k files) or many (~200 MB, 100k files)")
	out := flag.String("out", "", "directory to write (deleted first)")
	seed := flag.Uint64("seed", 20260601, "random seed")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out is required")
		os.Exit(2)
	}
	var files []file
	switch *workload {
	case "small":
		files = small(*seed)
	case "big":
		files = big(*seed)
	case "many":
		files = many(*seed)
	default:
		fmt.Fprintf(os.Stderr, "gen: unknown workload %q\n", *workload)
		os.Exit(2)
	}
	if err := write(*out, files); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	var total, text int64
	for _, f := range files {
		total += int64(f.size)
		if !isImage(f.kind) {
			text += int64(f.size)
		}
	}
	fmt.Printf("%s: %d files, %.1f MB (%.0f%% text, %.0f%% images)\n", *out, len(files),
		float64(total)/1e6, 100*float64(text)/float64(total), 100*float64(total-text)/float64(total))
}

func isImage(kind string) bool { return kind == "png" || kind == "jpg" || kind == "webp" }

// small is a 2 MB static site of 30 files.
func small(seed uint64) []file {
	var fs []file
	add := func(path, kind string, size int) {
		fs = append(fs, file{path: path, kind: kind, size: size, seed: seed ^ uint64(len(fs)+1)*0x9E3779B97F4A7C15})
	}
	add("index.html", "html", 14_000)
	for i, p := range []string{"about", "blog", "contact", "docs", "pricing", "privacy", "terms"} {
		add(p+".html", "html", 6_000+i*1_500)
	}
	add("favicon.svg", "svg", 2_500)
	for i, c := range []string{"main", "vendor", "print", "theme"} {
		add("assets/css/"+c+".css", "css", []int{48_000, 96_000, 6_000, 22_000}[i])
	}
	for i, j := range []string{"runtime", "main", "vendor", "polyfills", "router", "charts", "search", "analytics"} {
		add("assets/js/"+j+".js", "js", []int{9_000, 310_000, 720_000, 84_000, 52_000, 260_000, 120_000, 30_000}[i])
	}
	for i, s := range []string{"logo", "hero", "icon-menu", "icon-close", "icon-search", "illustration-1", "illustration-2", "pattern"} {
		add("img/"+s+".svg", "svg", []int{4_000, 38_000, 1_200, 900, 1_400, 52_000, 61_000, 12_000}[i])
	}
	add("manifest.json", "json", 1_800) // 30 files
	return fs
}

// big is a ~400 MB tree of ~9k files: ~60% compressible text in nested
// directories and ~40% incompressible images of varying sizes.
func big(seed uint64) []file {
	r := rand.New(rand.NewPCG(seed, 0xB16))
	const (
		textFiles  = 6300
		imageFiles = 2700
		textBytes  = 240_000_000
		imageBytes = 160_000_000
	)
	textKinds := []struct {
		kind, ext string
		weight    int
	}{{"js", ".js", 45}, {"json", ".json", 15}, {"css", ".css", 12}, {"map", ".js.map", 10}, {"html", ".html", 10}, {"svg", ".svg", 8}}
	imageKinds := []string{"png", "jpg", "webp"}
	sections := []string{"app", "admin", "docs", "blog", "shop", "account", "search", "help", "media", "labs", "api-docs", "static"}

	// Log-normal sizes, then scaled so the totals come out exactly.
	sizes := func(n int, total int64, mu, sigma float64) []int {
		raw := make([]float64, n)
		var sum float64
		for i := range raw {
			raw[i] = math.Exp(mu + sigma*r.NormFloat64())
			sum += raw[i]
		}
		out := make([]int, n)
		for i := range raw {
			out[i] = max(64, int(raw[i]/sum*float64(total)))
		}
		return out
	}
	var fs []file
	ts := sizes(textFiles, textBytes, 10, 1.2)
	for i, size := range ts {
		w := r.IntN(100)
		k := textKinds[0]
		for _, tk := range textKinds {
			if w < tk.weight {
				k = tk
				break
			}
			w -= tk.weight
		}
		sec := sections[r.IntN(len(sections))]
		dir := fmt.Sprintf("%s/%s/m%02d", sec, k.kind, r.IntN(12))
		fs = append(fs, file{path: fmt.Sprintf("%s/%s-%04d-%08x%s", dir, word(r), i, r.Uint32(), k.ext), kind: k.kind, size: size})
	}
	is := sizes(imageFiles, imageBytes, 10.5, 1.0)
	for i, size := range is {
		k := imageKinds[r.IntN(len(imageKinds))]
		sec := sections[r.IntN(len(sections))]
		fs = append(fs, file{path: fmt.Sprintf("%s/img/%02d/%s-%04d.%s", sec, r.IntN(8), word(r), i, k), kind: k, size: size})
	}
	// A stable entry point the benchmark changes for "one file changed".
	fs = append(fs, file{path: "index.html", kind: "html", size: 24_000}, file{path: "app/main.js", kind: "js", size: 180_000})
	for i := range fs {
		fs[i].seed = seed ^ uint64(i+1)*0x9E3779B97F4A7C15
	}
	return fs
}

// many is a node_modules: 100k small text files (median ~1 kB) in packages
// of 10-100 files, each with a package.json and lib/, dist/ and src/
// directories. A build of it is paid in open and stat calls more than in
// bytes.
func many(seed uint64) []file {
	r := rand.New(rand.NewPCG(seed, 0x3A7))
	const files = 100_000
	kinds := []struct{ kind, ext string }{{"js", ".js"}, {"js", ".mjs"}, {"json", ".json"}, {"map", ".js.map"}, {"css", ".css"}}
	var fs []file
	for p := 0; len(fs) < files; p++ {
		pkg := fmt.Sprintf("node_modules/%s-%04d", word(r), p)
		fs = append(fs, file{path: pkg + "/package.json", kind: "json", size: 200 + r.IntN(1800)})
		for j := 10 + r.IntN(90); j > 0 && len(fs) < files; j-- {
			k := kinds[r.IntN(len(kinds))]
			dir := pkg + []string{"", "/lib", "/dist", "/src"}[r.IntN(4)]
			size := min(max(int(math.Exp(7+1.1*r.NormFloat64())), 16), 512<<10)
			fs = append(fs, file{path: fmt.Sprintf("%s/%s-%03d%s", dir, word(r), j, k.ext), kind: k.kind, size: size})
		}
	}
	for i := range fs {
		fs[i].seed = seed ^ uint64(i+1)*0x9E3779B97F4A7C15
	}
	return fs
}

var syllables = strings.Fields("ka ro mi tu sel van dor pre lix on ar eth bu cor fen gal hin jo lum nex pax qui ras sto tri ux vel wen yor zin")

func word(r *rand.Rand) string {
	var b strings.Builder
	for n := 2 + r.IntN(3); n > 0; n-- {
		b.WriteString(syllables[r.IntN(len(syllables))])
	}
	return b.String()
}

func write(root string, files []file) error {
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, f := range files {
		dirs[filepath.Dir(filepath.Join(root, f.path))] = true
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	for _, d := range dl {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	work := make(chan file)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for f := range work {
				buf = content(buf[:0], f)
				if err := os.WriteFile(filepath.Join(root, f.path), buf, 0o644); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	// Normalise modes whatever the umask: 0755 directories, 0644 files.
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
}

// content returns exactly f.size bytes of f's kind.
func content(buf []byte, f file) []byte {
	r := rand.New(rand.NewPCG(f.seed, uint64(f.size)))
	if isImage(f.kind) {
		sig := map[string]string{"png": "\x89PNG\r\n\x1a\n", "jpg": "\xff\xd8\xff\xe0\x00\x10JFIF\x00", "webp": "RIFF\x00\x00\x00\x00WEBPVP8 "}[f.kind]
		buf = append(buf, sig...)
		start := len(buf)
		buf = append(buf, make([]byte, max(0, f.size-len(buf)))...)
		cc := rand.NewChaCha8([32]byte(seedBytes(f.seed)))
		cc.Read(buf[start:])
		return buf[:f.size]
	}
	g := &textGen{r: r, zipf: rand.NewZipf(r, 1.15, 4, uint64(len(vocab)-1))}
	switch f.kind {
	case "html":
		buf = append(buf, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"...)
	case "svg":
		buf = append(buf, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">`...)
	case "json", "map":
		buf = append(buf, `{"version":3,"data":[`...)
	}
	for len(buf) < f.size {
		buf = g.token(buf, f.kind)
	}
	return buf[:f.size]
}

func seedBytes(s uint64) []byte {
	b := make([]byte, 32)
	for i := range 4 {
		v := s*uint64(2*i+1) + 0x2545F4914F6CDD1D*uint64(i)
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// vocab is a fixed vocabulary: keywords and common names first (drawn most
// often by the Zipf distribution), then generated identifiers.
var vocab = func() []string {
	v := strings.Fields(`function return const let var if else for while this new null undefined true false
typeof instanceof await async export import default from class extends super try catch throw switch case
break continue length push map filter reduce forEach then resolve reject Promise Object Array String Number
JSON parse stringify document window console log error value key index data props state children render
createElement useState useEffect useMemo module exports require prototype call apply bind get set has delete`)
	r := rand.New(rand.NewPCG(7, 7))
	for len(v) < 6000 {
		w := word(r)
		switch r.IntN(4) {
		case 0:
			w += strings.ToUpper(w[:1]) + word(r)
		case 1:
			w = "_" + w
		}
		v = append(v, w)
	}
	return v
}()

type textGen struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

func (g *textGen) id() string { return vocab[g.zipf.Uint64()] }

// token appends one syntactic unit of the given kind.
func (g *textGen) token(b []byte, kind string) []byte {
	r := g.r
	switch kind {
	case "css":
		b = append(b, '.')
		b = append(b, g.id()...)
		b = append(b, '{')
		for n := 1 + r.IntN(4); n > 0; n-- {
			b = append(b, cssProps[r.IntN(len(cssProps))]...)
			b = append(b, ':')
			b = appendNum(b, r)
			b = append(b, "px;"...)
		}
		return append(b, "}\n"...)
	case "json", "map":
		b = append(b, `{"`...)
		b = append(b, g.id()...)
		b = append(b, `":`...)
		b = appendNum(b, r)
		b = append(b, `,"`...)
		b = append(b, g.id()...)
		b = append(b, `":"`...)
		b = append(b, g.id()...)
		b = append(b, ' ')
		b = append(b, g.id()...)
		return append(b, `"},`...)
	case "html", "svg":
		if kind == "svg" {
			b = append(b, `<path d="M`...)
			for n := 2 + r.IntN(6); n > 0; n-- {
				b = appendNum(b, r)
				b = append(b, ' ')
				b = appendNum(b, r)
				b = append(b, 'L')
			}
			return append(b, "z\"/>\n"...)
		}
		b = append(b, `<div class="`...)
		b = append(b, g.id()...)
		b = append(b, `">`...)
		for n := 3 + r.IntN(10); n > 0; n-- {
			b = append(b, g.id()...)
			b = append(b, ' ')
		}
		return append(b, "</div>\n"...)
	}
	// JavaScript-like
	switch r.IntN(8) {
	case 0:
		b = append(b, "function "...)
		b = append(b, g.id()...)
		b = append(b, '(')
		b = append(b, g.id()...)
		b = append(b, ',')
		b = append(b, g.id()...)
		return append(b, "){"...)
	case 1:
		b = append(b, "return "...)
		b = append(b, g.id()...)
		b = append(b, '.')
		b = append(b, g.id()...)
		return append(b, "();}"...)
	case 2:
		b = append(b, "const "...)
		b = append(b, g.id()...)
		b = append(b, '=')
		b = appendNum(b, r)
		return append(b, ';')
	case 3:
		b = append(b, '"')
		b = append(b, g.id()...)
		b = append(b, '-')
		b = appendNum(b, r)
		return append(b, `",`...)
	case 4:
		b = append(b, "if("...)
		b = append(b, g.id()...)
		b = append(b, "==="...)
		b = append(b, g.id()...)
		return append(b, "){"...)
	default:
		b = append(b, g.id()...)
		b = append(b, '.')
		b = append(b, g.id()...)
		b = append(b, '(')
		b = append(b, g.id()...)
		return append(b, ");"...)
	}
}

var cssProps = strings.Fields("margin padding width height top left right bottom font-size line-height border-radius gap min-width max-width letter-spacing")

func appendNum(b []byte, r *rand.Rand) []byte {
	switch r.IntN(3) {
	case 0:
		return fmt.Appendf(b, "%d", r.IntN(10))
	case 1:
		return fmt.Appendf(b, "%d", r.IntN(1000))
	}
	return fmt.Appendf(b, "%d", r.IntN(1<<20))
}
