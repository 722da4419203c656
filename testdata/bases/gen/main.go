// Command gen writes small, deterministic stand-in base images as OCI image
// layouts, so gantry's examples and tests can run without network access.
//
// Usage (from the repository root):
//
//	go run ./testdata/bases/gen -out testdata/bases
//
// It (re)creates these layouts under -out:
//
//	nginx-alpine/  stands in for docker.io/library/nginx:alpine
//	               (OCI index: linux/amd64, linux/arm64/v8 + BuildKit attestations)
//	python-slim/   stands in for docker.io/library/python:3.13-slim (same shape)
//	docker-v2/     single-platform linux/amd64 image with Docker v2 schema 2
//	               media types and a Healthcheck carrying StartInterval
//
// Every byte is a pure function of this file: tar headers use a fixed mtime,
// USTAR format (no PAX records, no atime/ctime), sorted entries and numeric
// ownership only; layers are gzipped with compress/gzip at a fixed level with
// a zeroed header; every JSON document is marshalled from fixed Go values.
// Running the generator twice produces identical trees (check with diff -r).
//
// The layout directory itself is written by a small local writer rather than
// go-containerregistry's pkg/v1/layout, because that package needs
// golang.org/x/sync, which is not in gantry's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the timestamp used for every tar entry and every "created" field.
var epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

const (
	createdStr = "2024-01-01T00:00:00Z"

	annRefName   = "org.opencontainers.image.ref.name"
	annRefType   = "vnd.docker.reference.type"
	annRefDigest = "vnd.docker.reference.digest"
	annBashbrew  = "com.docker.official-images.bashbrew.arch"
	annPredicate = "in-toto.io/predicate-type"

	mtInToto = types.MediaType("application/vnd.in-toto+json")
)

func main() {
	out := flag.String("out", "testdata/bases", "directory to write the OCI layouts into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	for _, g := range []struct {
		name  string
		build func() (*layoutWriter, error)
	}{
		{"nginx-alpine", buildNginxAlpine},
		{"python-slim", buildPythonSlim},
		{"docker-v2", buildDockerV2},
	} {
		lw, err := g.build()
		if err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
		dir := filepath.Join(out, g.name)
		if err := lw.write(dir); err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
		fmt.Printf("%-13s %s  %s (%d blobs)\n", g.name, lw.top.Digest, lw.top.MediaType, len(lw.blobs))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Layout writer

// layoutWriter collects content-addressed blobs and one top-level descriptor
// (the single entry of index.json).
type layoutWriter struct {
	blobs map[v1.Hash][]byte
	top   v1.Descriptor
}

func newLayoutWriter() *layoutWriter {
	return &layoutWriter{blobs: map[v1.Hash][]byte{}}
}

// add stores b as a blob and returns a descriptor for it.
func (lw *layoutWriter) add(mt types.MediaType, b []byte) v1.Descriptor {
	h := sha256Hash(b)
	lw.blobs[h] = b
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h}
}

// addJSON marshals v (compact) and stores it as a blob.
func (lw *layoutWriter) addJSON(mt types.MediaType, v any) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return lw.add(mt, b), nil
}

// addLayer stores a layer blob and returns its descriptor and diff ID.
func (lw *layoutWriter) addLayer(l v1.Layer) (v1.Descriptor, v1.Hash, error) {
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	desc := lw.add(mt, b)
	if d, err := l.Digest(); err != nil || d != desc.Digest {
		return v1.Descriptor{}, v1.Hash{}, fmt.Errorf("layer digest mismatch: %v vs %v (%v)", d, desc.Digest, err)
	}
	diffID, err := l.DiffID()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	return desc, diffID, nil
}

// write replaces dir with an OCI image layout holding the collected blobs.
func (lw *layoutWriter) write(dir string) error {
	if lw.top.Digest == (v1.Hash{}) {
		return fmt.Errorf("no top-level descriptor")
	}
	if _, ok := lw.blobs[lw.top.Digest]; !ok {
		return fmt.Errorf("top-level descriptor %s not among blobs", lw.top.Digest)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{dir, filepath.Join(dir, "blobs"), blobDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{lw.top},
	})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion": "1.0.0"}`),
		"index.json": index,
	}
	for h, b := range lw.blobs {
		files[filepath.Join("blobs", h.Algorithm, h.Hex)] = b
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// ---------------------------------------------------------------------------
// Deterministic tar+gzip layers

type entry struct {
	name     string // slash-separated, relative to the root, no trailing slash
	typ      byte   // tar.TypeDir, TypeReg, TypeSymlink or TypeLink
	mode     int64
	uid, gid int
	body     string
	link     string
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name string, mode int64, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o755, link: target}
}

// whiteout hides name (from lower layers) using an AUFS/OCI ".wh." file.
func whiteout(name string) entry {
	return file(path.Join(path.Dir(name), ".wh."+path.Base(name)), 0o644, "")
}

func (e entry) owner(uid, gid int) entry { e.uid, e.gid = uid, gid; return e }

// dirs returns 0755 directory entries for names.
func dirs(names ...string) []entry {
	var es []entry
	for _, n := range names {
		es = append(es, dir(n, 0o755))
	}
	return es
}

// tarGz returns the gzip-compressed tar of entries, sorted by name. The
// output depends only on entries.
func tarGz(entries []entry) ([]byte, error) {
	es := append([]entry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	seen := map[string]bool{}
	for _, e := range es {
		if e.name == "" || strings.HasPrefix(e.name, "/") || strings.HasSuffix(e.name, "/") || path.Clean(e.name) != e.name {
			return nil, fmt.Errorf("bad entry name %q", e.name)
		}
		if seen[e.name] {
			return nil, fmt.Errorf("duplicate entry %q", e.name)
		}
		if parent := path.Dir(e.name); parent != "." && !seen[parent] {
			return nil, fmt.Errorf("entry %q has no parent directory entry", e.name)
		}
		if e.typ == tar.TypeLink && !seen[e.link] {
			return nil, fmt.Errorf("hard link %q points at %q, which is not earlier in the layer", e.name, e.link)
		}
		seen[e.name] = true

		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
			Format:   tar.FormatUSTAR,
		}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Header = gzip.Header{OS: 255} // no name, no comment, zero mtime, OS "unknown"
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// gzLayer wraps pre-built gzip bytes as a v1.Layer; tarball computes the
// diff ID by decompressing and keeps the given compressed bytes verbatim.
func gzLayer(entries []entry, mt types.MediaType) (v1.Layer, error) {
	b, err := tarGz(entries)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(mt))
}

// ---------------------------------------------------------------------------
// Image config JSON (written by hand so that fields go-containerregistry's
// v1.Config lacks, such as Healthcheck.StartInterval, are kept)

type imageConfig struct {
	Architecture string          `json:"architecture"`
	Config       containerConfig `json:"config"`
	Created      string          `json:"created"`
	History      []history       `json:"history"`
	OS           string          `json:"os"`
	RootFS       rootFS          `json:"rootfs"`
	Variant      string          `json:"variant,omitempty"`
}

type containerConfig struct {
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Healthcheck  *healthcheck        `json:"Healthcheck,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// healthcheck mirrors Docker's container.HealthConfig (durations in ns).
type healthcheck struct {
	Test          []string `json:"Test,omitempty"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

type history struct {
	Created    string `json:"created"`
	CreatedBy  string `json:"created_by,omitempty"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

type rootFS struct {
	Type    string    `json:"type"`
	DiffIDs []v1.Hash `json:"diff_ids"`
}

// attestationConfig is what BuildKit writes as the config of an attestation
// manifest.
type attestationConfig struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	Config       struct{} `json:"config"`
	RootFS       rootFS   `json:"rootfs"`
}

// ---------------------------------------------------------------------------
// Image assembly

type layerSpec struct {
	entries   []entry
	createdBy string
	comment   string
}

type imageSpec struct {
	manifestMT, configMT, layerMT types.MediaType
	layers                        []layerSpec
	config                        imageConfig // RootFS and History are filled in
}

// addImage stores an image's layers, config and manifest; it returns the
// manifest descriptor (without platform/annotations).
func (lw *layoutWriter) addImage(spec imageSpec) (v1.Descriptor, error) {
	cfg := spec.config
	cfg.Created = createdStr
	cfg.RootFS = rootFS{Type: "layers"}
	cfg.History = nil
	var layerDescs []v1.Descriptor
	for i, ls := range spec.layers {
		l, err := gzLayer(ls.entries, spec.layerMT)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %d: %w", i, err)
		}
		desc, diffID, err := lw.addLayer(l)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %d: %w", i, err)
		}
		layerDescs = append(layerDescs, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, history{Created: createdStr, CreatedBy: ls.createdBy, Comment: ls.comment})
	}
	cfgDesc, err := lw.addJSON(spec.configMT, cfg)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return lw.addJSON(spec.manifestMT, v1.Manifest{
		SchemaVersion: 2,
		MediaType:     spec.manifestMT,
		Config:        cfgDesc,
		Layers:        layerDescs,
	})
}

// addAttestation stores a BuildKit-style attestation manifest (one in-toto
// provenance statement about the image manifest subject) and returns its
// index descriptor.
func (lw *layoutWriter) addAttestation(subject v1.Descriptor, purl, bashbrewArch string) (v1.Descriptor, error) {
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject": []map[string]any{{
			"name":   purl,
			"digest": map[string]string{"sha256": subject.Digest.Hex},
		}},
		"predicate": map[string]any{
			"builder":   map[string]string{"id": ""},
			"buildType": "https://mobyproject.org/buildkit@v1",
			"metadata": map[string]any{
				"buildStartedOn":  createdStr,
				"buildFinishedOn": createdStr,
				"completeness":    map[string]bool{"parameters": false, "environment": true, "materials": false},
				"reproducible":    false,
			},
		},
	}
	b, err := json.Marshal(stmt)
	if err != nil {
		return v1.Descriptor{}, err
	}
	layerDesc, diffID, err := lw.addLayer(static.NewLayer(b, mtInToto))
	if err != nil {
		return v1.Descriptor{}, err
	}
	layerDesc.Annotations = map[string]string{annPredicate: "https://slsa.dev/provenance/v0.2"}

	var cfg attestationConfig
	cfg.Architecture, cfg.OS = "unknown", "unknown"
	cfg.RootFS = rootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}}
	cfgDesc, err := lw.addJSON(types.OCIConfigJSON, cfg)
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := lw.addJSON(types.OCIManifestSchema1, v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        cfgDesc,
		Layers:        []v1.Descriptor{layerDesc},
	})
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc.Platform = &v1.Platform{Architecture: "unknown", OS: "unknown"}
	desc.Annotations = map[string]string{
		annBashbrew:  bashbrewArch,
		annRefDigest: subject.Digest.String(),
		annRefType:   "attestation-manifest",
	}
	return desc, nil
}

type platform struct {
	arch, variant string
	uname         string // `uname -m` spelling, used in placeholder contents
	bashbrew      string // Docker official-images arch name
}

var platforms = []platform{
	{arch: "amd64", uname: "x86_64", bashbrew: "amd64"},
	{arch: "arm64", variant: "v8", uname: "aarch64", bashbrew: "arm64v8"},
}

func (p platform) String() string {
	s := "linux/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// buildMultiArch assembles an OCI index holding one image per platform
// followed by one attestation manifest per image (the order Docker Hub
// uses), and makes that index the single entry of index.json.
func buildMultiArch(refName, purlBase string, spec func(platform) imageSpec) (*layoutWriter, error) {
	lw := newLayoutWriter()
	var images, attestations []v1.Descriptor
	for _, p := range platforms {
		desc, err := lw.addImage(spec(p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		desc.Platform = &v1.Platform{OS: "linux", Architecture: p.arch, Variant: p.variant}
		desc.Annotations = map[string]string{annBashbrew: p.bashbrew}
		images = append(images, desc)

		purl := purlBase + "?platform=" + strings.ReplaceAll(p.String(), "/", "%2F")
		att, err := lw.addAttestation(desc, purl, p.bashbrew)
		if err != nil {
			return nil, fmt.Errorf("%s attestation: %w", p, err)
		}
		attestations = append(attestations, att)
	}
	idx, err := lw.addJSON(types.OCIImageIndex, v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     append(images, attestations...),
	})
	if err != nil {
		return nil, err
	}
	idx.Annotations = map[string]string{annRefName: refName}
	lw.top = idx
	return lw, nil
}

// ---------------------------------------------------------------------------
// nginx:alpine

const alpinePasswd = `root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
`

const alpineGroup = `root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin
adm:x:4:root,daemon
tty:x:5:
disk:x:6:root
lp:x:7:lp
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
cron:x:16:cron
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
tape:x:26:root
video:x:27:root
netdev:x:28:
kvm:x:34:kvm
games:x:35:
shadow:x:42:
www-data:x:82:
users:x:100:games
ntp:x:123:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
`

const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
`

const alpineMotd = `Welcome to Alpine!

The Alpine Wiki contains a large amount of how-to guides and general
information about administrating Alpine systems.
See <https://wiki.alpinelinux.org/>.

You can setup the system with the command: setup-alpine

You may change this message by editing /etc/motd.

`

// shadowFor derives an /etc/shadow with locked passwords from a passwd file.
func shadowFor(passwd, rootPw string) string {
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(passwd), "\n") {
		name, _, _ := strings.Cut(line, ":")
		pw := "!"
		if name == "root" {
			pw = rootPw
		}
		fmt.Fprintf(&sb, "%s:%s::0:::::\n", name, pw)
	}
	return sb.String()
}

const nginxConf = `
user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;


events {
    worker_connections  1024;
}


http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    #tcp_nopush     on;

    keepalive_timeout  65;

    #gzip  on;

    include /etc/nginx/conf.d/*.conf;
}
`

const nginxMimeTypes = `
types {
    text/html                                        html htm shtml;
    text/css                                         css;
    text/xml                                         xml;
    image/gif                                        gif;
    image/jpeg                                       jpeg jpg;
    application/javascript                           js;
    text/plain                                       txt;
    image/png                                        png;
    image/svg+xml                                    svg svgz;
    image/webp                                       webp;
    image/x-icon                                     ico;
    font/woff2                                       woff2;
    application/json                                 json;
    application/pdf                                  pdf;
    application/wasm                                 wasm;
    application/zip                                  zip;
    application/octet-stream                         bin exe dll;
    application/octet-stream                         iso img;
    audio/mpeg                                       mp3;
    video/mp4                                        mp4;
}
`

const nginxDefaultConf = `server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;

    #access_log  /var/log/nginx/host.access.log  main;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    #error_page  404              /404.html;

    # redirect server error pages to the static page /50x.html
    #
    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
`

const nginxIndexHTML = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`

const nginx50xHTML = `<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>If you are the system administrator of this resource then you should check
the error log for details.</p>
<p><em>Faithfully yours, nginx.</em></p>
</body>
</html>
`

const nginxEntrypoint = `#!/bin/sh
# vim:sw=4:ts=4:et
# Abridged stand-in for the docker-library/nginx entrypoint.

set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if /usr/bin/find "/docker-entrypoint.d/" -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read v; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        find "/docker-entrypoint.d/" -follow -type f -print | sort -V | while read -r f; do
            case "$f" in
                *.sh) entrypoint_log "$0: Launching $f"; "$f" ;;
                *) entrypoint_log "$0: Ignoring $f" ;;
            esac
        done
        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"
`

func placeholder(what string, p platform) string {
	return fmt.Sprintf("#!/bin/false\n# gantry test placeholder: %s for %s (%s); not a real executable\n", what, p, p.uname)
}

func alpineRootfs(p platform) []entry {
	es := dirs("bin", "etc", "home", "lib", "lib/apk", "lib/apk/db", "run", "sbin", "usr", "usr/bin",
		"usr/sbin", "usr/share", "var", "var/cache", "var/log", "var/run")
	es = append(es,
		dir("root", 0o700),
		dir("tmp", 0o1777),
		file("etc/passwd", 0o644, alpinePasswd),
		file("etc/group", 0o644, alpineGroup),
		file("etc/shadow", 0o640, shadowFor(alpinePasswd, "*")).owner(0, 42),
		file("etc/os-release", 0o644, alpineOSRelease),
		file("etc/motd", 0o644, alpineMotd),
		file("lib/apk/db/installed", 0o644, apkInstalled(p, false)),
		file("etc/hostname", 0o644, "localhost\n"),
		file("bin/busybox", 0o755, placeholder("BusyBox v1.36.1", p)),
		symlink("bin/sh", "/bin/busybox"),
		symlink("usr/bin/wget", "/bin/busybox"),
	)
	return es
}

// apkInstalled is an apk database naming a few of the packages
// nginx:alpine has, for p's architecture (and nginx, which the nginx
// layer adds, rewriting the file as apk does): what SBOMs read.
func apkInstalled(p platform, nginx bool) string {
	pkgs := []struct{ name, version, license string }{
		{"alpine-baselayout", "3.6.5-r0", "GPL-2.0-only"},
		{"busybox", "1.36.1-r29", "GPL-2.0-only"},
		{"musl", "1.2.5-r0", "MIT"},
	}
	if nginx {
		pkgs = append(pkgs, struct{ name, version, license string }{"nginx", "1.27.3-r1", "BSD-2-Clause"})
	}
	var b strings.Builder
	for _, pkg := range pkgs {
		fmt.Fprintf(&b, "P:%s\nV:%s\nA:%s\nL:%s\nT:%s (gantry test placeholder)\n\n", pkg.name, pkg.version, p.uname, pkg.license, pkg.name)
	}
	return b.String()
}

func nginxLayer(p platform) []entry {
	es := dirs("etc", "etc/nginx", "etc/nginx/conf.d", "lib", "lib/apk", "lib/apk/db", "usr", "usr/sbin", "usr/share",
		"usr/share/nginx", "usr/share/nginx/html", "var", "var/cache", "var/log",
		"var/log/nginx", "docker-entrypoint.d")
	es = append(es,
		dir("var/cache/nginx", 0o755).owner(101, 0),
		file("etc/passwd", 0o644, alpinePasswd+"nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n"),
		file("etc/group", 0o644, alpineGroup+"nginx:x:101:nginx\n"),
		whiteout("etc/motd"),
		file("etc/nginx/nginx.conf", 0o644, nginxConf),
		file("etc/nginx/mime.types", 0o644, nginxMimeTypes),
		file("etc/nginx/conf.d/default.conf", 0o644, nginxDefaultConf),
		file("usr/share/nginx/html/index.html", 0o644, nginxIndexHTML),
		file("usr/share/nginx/html/50x.html", 0o644, nginx50xHTML),
		symlink("var/log/nginx/access.log", "/dev/stdout"),
		symlink("var/log/nginx/error.log", "/dev/stderr"),
		file("docker-entrypoint.sh", 0o755, nginxEntrypoint),
		file("usr/sbin/nginx", 0o755, placeholder("nginx 1.27.3", p)),
		file("lib/apk/db/installed", 0o644, apkInstalled(p, true)),
	)
	return es
}

func buildNginxAlpine() (*layoutWriter, error) {
	return buildMultiArch("alpine", "pkg:docker/nginx@alpine", func(p platform) imageSpec {
		return imageSpec{
			manifestMT: types.OCIManifestSchema1,
			configMT:   types.OCIConfigJSON,
			layerMT:    types.OCILayer,
			layers: []layerSpec{
				{alpineRootfs(p), fmt.Sprintf("ADD alpine-minirootfs-3.20.3-%s.tar.gz / # buildkit", p.uname), "buildkit.dockerfile.v0"},
				{nginxLayer(p), "RUN /bin/sh -c set -x && addgroup -g 101 -S nginx && adduser -S -D -H -u 101 -h /var/cache/nginx -s /sbin/nologin -G nginx -g nginx nginx && apk add --no-cache nginx && rm /etc/motd # buildkit", "buildkit.dockerfile.v0"},
			},
			config: imageConfig{
				Architecture: p.arch,
				Variant:      p.variant,
				OS:           "linux",
				Config: containerConfig{
					ExposedPorts: map[string]struct{}{"80/tcp": {}},
					Env: []string{
						"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
						"NGINX_VERSION=1.27.3",
					},
					Entrypoint: []string{"/docker-entrypoint.sh"},
					Cmd:        []string{"nginx", "-g", "daemon off;"},
					Labels:     map[string]string{"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"},
					StopSignal: "SIGQUIT",
				},
			},
		}
	})
}

// ---------------------------------------------------------------------------
// python:3.13-slim

const debianPasswd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin
proxy:x:13:13:proxy:/bin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin
irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`

const debianGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
news:x:9:
uucp:x:10:
man:x:12:
proxy:x:13:
kmem:x:15:
dialout:x:20:
fax:x:21:
voice:x:22:
cdrom:x:24:
floppy:x:25:
tape:x:26:
sudo:x:27:
audio:x:29:
dip:x:30:
www-data:x:33:
backup:x:34:
operator:x:37:
list:x:38:
irc:x:39:
src:x:40:
shadow:x:42:
utmp:x:43:
video:x:44:
sasl:x:45:
plugdev:x:46:
staff:x:50:
games:x:60:
users:x:100:
nogroup:x:65534:
`

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`

func debianRootfs(p platform) []entry {
	// merged /usr, as bookworm has it: /bin, /lib and /sbin are symlinks
	es := dirs("boot", "dev", "etc", "home", "media", "mnt", "opt", "proc",
		"run", "srv", "sys", "usr", "usr/bin", "usr/lib", "usr/local",
		"usr/local/bin", "usr/local/lib", "usr/local/sbin", "usr/sbin", "usr/share",
		"var", "var/cache", "var/lib", "var/lib/dpkg", "var/log")
	es = append(es,
		symlink("bin", "usr/bin"),
		symlink("lib", "usr/lib"),
		symlink("sbin", "usr/sbin"),
		dir("root", 0o700),
		dir("tmp", 0o1777),
		dir("var/tmp", 0o1777),
		file("etc/passwd", 0o644, debianPasswd),
		file("etc/group", 0o644, debianGroup),
		file("etc/shadow", 0o640, shadowFor(debianPasswd, "*")).owner(0, 42),
		file("etc/os-release", 0o644, debianOSRelease),
		file("etc/debian_version", 0o644, "12.8\n"),
		file("usr/bin/sh", 0o755, placeholder("dash 0.5.12", p)),
		file("var/lib/dpkg/status", 0o644, dpkgStatus(p)),
	)
	return es
}

// dpkgStatus is a bookworm dpkg database naming a few of the packages
// debian:bookworm-slim has, for p's architecture: what tools that read a
// base's packages (the C library's version, SBOMs) find.
func dpkgStatus(p platform) string {
	var b strings.Builder
	for _, pkg := range []struct{ name, version, multiArch string }{
		{"base-files", "12.4+deb12u8", ""},
		{"dash", "0.5.12-2", "foreign"},
		{"libc6", "2.36-9+deb12u9", "same"},
	} {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nPriority: required\nArchitecture: %s\n", pkg.name, p.arch)
		if pkg.multiArch != "" {
			fmt.Fprintf(&b, "Multi-Arch: %s\n", pkg.multiArch)
		}
		fmt.Fprintf(&b, "Version: %s\nDescription: %s (gantry test placeholder)\n\n", pkg.version, pkg.name)
	}
	return b.String()
}

func pythonLayer(p platform) []entry {
	return append(dirs("usr", "usr/local", "usr/local/bin", "usr/local/lib", "usr/local/lib/python3.13", "usr/local/lib/python3.13/site-packages"),
		file("usr/local/bin/python3", 0o755, placeholder("Python 3.13.1", p)),
		symlink("usr/local/bin/python", "python3"),
		file("usr/local/lib/python3.13/os.py", 0o644, `r"""gantry test placeholder for the Python 3.13 standard library os module."""

name = "posix"
sep = "/"
`),
	)
}

func buildPythonSlim() (*layoutWriter, error) {
	return buildMultiArch("3.13-slim", "pkg:docker/python@3.13-slim", func(p platform) imageSpec {
		return imageSpec{
			manifestMT: types.OCIManifestSchema1,
			configMT:   types.OCIConfigJSON,
			layerMT:    types.OCILayer,
			layers: []layerSpec{
				{debianRootfs(p), fmt.Sprintf("# debian.sh --arch '%s' out/ 'bookworm' '@1704067200'", p.arch), "debuerreotype 0.15"},
				{pythonLayer(p), "RUN /bin/sh -c set -eux; ./configure --enable-optimizations --enable-shared; make install # buildkit", "buildkit.dockerfile.v0"},
			},
			config: imageConfig{
				Architecture: p.arch,
				Variant:      p.variant,
				OS:           "linux",
				Config: containerConfig{
					Env: []string{
						"PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
						"LANG=C.UTF-8",
						"GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
						"PYTHON_VERSION=3.13.1",
						"PYTHON_SHA256=abc",
					},
					Cmd: []string{"python3"},
				},
			},
		}
	})
}

// ---------------------------------------------------------------------------
// Docker v2 schema 2, single platform

func busyboxRootfs() []entry {
	p := platforms[0]
	es := dirs("bin", "etc", "home", "usr", "usr/sbin", "var", "var/spool", "var/spool/mail", "var/www")
	es = append(es,
		dir("root", 0o700),
		dir("tmp", 0o1777),
		file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
		file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"),
		file("bin/busybox", 0o755, placeholder("BusyBox v1.36.1", p)),
		// The real busybox image links its applets with hard links.
		hardlink("bin/sh", "bin/busybox"),
	)
	return es
}

func buildDockerV2() (*layoutWriter, error) {
	lw := newLayoutWriter()
	desc, err := lw.addImage(imageSpec{
		manifestMT: types.DockerManifestSchema2,
		configMT:   types.DockerConfigJSON,
		layerMT:    types.DockerLayer,
		layers: []layerSpec{
			{busyboxRootfs(), "BusyBox 1.36.1 (glibc), Debian 12", ""},
		},
		config: imageConfig{
			Architecture: "amd64",
			OS:           "linux",
			Config: containerConfig{
				Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				Cmd: []string{"sh"},
				Healthcheck: &healthcheck{
					Test:          []string{"CMD-SHELL", "true"},
					Interval:      30 * int64(time.Second),
					StartInterval: 2 * int64(time.Second),
				},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	desc.Annotations = map[string]string{annRefName: "latest"}
	lw.top = desc
	return lw, nil
}
