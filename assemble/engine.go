package assemble

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options configure an Engine.
type Options struct {
	// CacheDir holds layer blobs and base-layer indexes (default: the user's
	// cache directory).
	CacheDir string
	// Insecure allows plain HTTP and unverified TLS for every registry
	// (localhost and 127.0.0.1 are always allowed plain HTTP).
	Insecure bool
	// Keychain finds registry credentials (default: ~/.docker/config.json
	// and its credential helpers).
	Keychain authn.Keychain
	// Transport is the base HTTP transport (default: a tuned clone of
	// remote.DefaultTransport, trusting the system roots and CACert).
	Transport http.RoundTripper
	// CACert is a PEM file of extra CA certificates to trust.
	CACert string
	// Credentials, when set, are used for their registry before Keychain.
	Credentials *Credentials
	// Mirrors maps a registry (docker.io) to a mirror host[/prefix] that
	// bases are pulled through; references keep naming the original.
	Mirrors map[string]string
	// Retry bounds retries of registry requests.
	Retry RetryPolicy
	// Jobs is the number of concurrent uploads (default 8).
	Jobs int
	// Epoch is the time written as every mtime and as the config's created
	// (default: $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z).
	Epoch *time.Time
	// Logger receives log lines (default: discard).
	Logger *slog.Logger
	// Progress receives steps for progress bars or lines (default: none).
	Progress Progress
	// UserAgent names gantry to registries.
	UserAgent string
}

// Engine builds images. One Engine shares its cache, layer builders and
// registry pusher across every image and platform of a run, so each layer is
// built once and each blob uploaded once.
type Engine struct {
	opts     Options
	cache    *layers.Cache
	builders map[string]*layers.Builder
	epoch    time.Time
	log      *slog.Logger
	pusher   *remote.Pusher
	stream   *streamer // set by Run when it pushes to a registry
}

// NewEngine opens the cache and prepares an engine.
func NewEngine(o Options) (*Engine, error) {
	if o.CacheDir == "" {
		d, err := layers.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	cache, err := layers.OpenCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if c := o.Credentials; c != nil {
		o.Keychain = staticKeychain{creds: *c, next: o.Keychain}
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	t, err := NewTransport(o)
	if err != nil {
		return nil, err
	}
	o.Transport = t
	if o.UserAgent == "" {
		o.UserAgent = "gantry"
	}
	epoch := time.Unix(0, 0).UTC()
	if o.Epoch != nil {
		epoch = o.Epoch.UTC()
	}
	return &Engine{opts: o, cache: cache, builders: map[string]*layers.Builder{}, epoch: epoch, log: o.Logger}, nil
}

// EpochFromEnv reads SOURCE_DATE_EPOCH (nil when unset).
func EpochFromEnv(getenv func(string) string) (*time.Time, error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

func (e *Engine) builder(c layers.Compression) *layers.Builder {
	k := c.Key()
	if b, ok := e.builders[k]; ok {
		return b
	}
	b := &layers.Builder{Cache: e.cache, Compression: c, MTime: e.epoch}
	e.builders[k] = b
	return b
}

// LayerStats sums what the layer builders did.
func (e *Engine) LayerStats() layers.Stats {
	var s layers.Stats
	for _, b := range e.builders {
		bs := b.Stats()
		s.FilesRead += bs.FilesRead
		s.Hits += bs.Hits
		s.Misses += bs.Misses
	}
	return s
}

func (e *Engine) nameOptions() []name.Option {
	if e.opts.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (e *Engine) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(e.opts.Keychain),
		remote.WithTransport(e.opts.Transport),
		remote.WithUserAgent(e.opts.UserAgent),
		remote.WithJobs(e.opts.Jobs),
		// gantry's transport retries answers (honouring Retry-After);
		// go-containerregistry retries dropped connections and restarts
		// failed uploads from a new session.
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Duration: e.opts.Retry.withDefaults().Base, Factor: 2, Jitter: 0.25, Steps: 4}),
	}
}

// RegistryError is a failure talking to a registry, with a hint of what to
// do about it.
type RegistryError struct {
	Err  error
	Hint string
}

func (e *RegistryError) Error() string {
	msg := strings.Join(strings.Fields(e.Err.Error()), " ")
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *RegistryError) Unwrap() error { return e.Err }

// RegistryErrorFor is registryError for callers outside the package.
func RegistryErrorFor(err error, where string) error { return registryError(err, where) }

// registryError turns a registry failure on where (a registry or
// repository) into one line: what the registry answered and what to do.
func registryError(err error, where string) error {
	var re *RegistryError
	if errors.As(err, &re) {
		return err
	}
	host, _, _ := strings.Cut(where, "/")
	var te *transport.Error
	var ne net.Error
	switch {
	case tlsHint(err, host) != "":
		// before a status: for a local registry, go-containerregistry also
		// tries plain http, and a TLS server answers that with a 400 that
		// only adds noise
		hint := tlsHint(err, host)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			err = cv
		}
		return &RegistryError{fmt.Errorf("%s: %w", where, err), hint}
	case errors.As(err, &te):
		msg := fmt.Sprintf("%d %s on %s", te.StatusCode, strings.ToLower(http.StatusText(te.StatusCode)), where)
		if len(te.Errors) > 0 {
			msg += ": " + strings.ToLower(te.Errors[0].Message)
		}
		var hint string
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = fmt.Sprintf("check the credentials for %s: gantry login %s, docker login, or --registry-user", host, host)
		case http.StatusNotFound:
			hint = "check the name and tag"
		case http.StatusTooManyRequests:
			hint = "the registry is rate-limiting; retry later or use a mirror (--mirror)"
		}
		return &RegistryError{errors.New(msg), hint}
	case errors.Is(err, context.Canceled):
		return err
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &RegistryError{fmt.Errorf("%s: %w", where, err), "pass --insecure for a plain-HTTP registry"}
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED):
		return &RegistryError{fmt.Errorf("%s: %w", where, err), "is the registry running and reachable? use --insecure for a plain-HTTP registry"}
	}
	return &RegistryError{fmt.Errorf("%s: %w", where, err), ""}
}

// Built is one assembled image, ready for sinks.
type Built struct {
	Spec       ImageSpec
	BaseRef    string
	BaseDigest v1.Hash
	// Image is set for a single-manifest result, Index for a multi-platform one.
	Image     v1.Image
	Index     v1.ImageIndex
	Digest    v1.Hash
	MediaType string
	Platforms []PlatformResult
}

// PlatformResult describes one platform's image.
type PlatformResult struct {
	Platform         string `json:"platform"`
	Digest           string `json:"digest"`
	CompressedSize   int64  `json:"compressedSize"`
	UncompressedSize int64  `json:"uncompressedSize"`
}

// Taggable is what sinks write.
func (b *Built) Taggable() remote.Taggable {
	if b.Index != nil {
		return b.Index
	}
	return b.Image
}

// Build assembles every spec. Nothing is written to a sink here, so a
// failure (a missing directory, a base that does not exist, a size over
// maxSize) leaves no trace anywhere but the layer cache.
func (e *Engine) Build(ctx context.Context, specs []ImageSpec) ([]*Built, error) {
	var out []*Built
	for _, s := range specs {
		b, err := e.buildImage(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func (e *Engine) buildImage(ctx context.Context, s ImageSpec) (*Built, error) {
	start := time.Now()
	bs, err := e.resolveBase(ctx, s.Base, s.Mirrors, s.Pin)
	if err != nil {
		return nil, err
	}
	plats, err := bs.platforms(s.Platforms)
	if err != nil {
		return nil, err
	}
	if s.Pin != nil {
		if err := s.Pin.check(bs, plats); err != nil {
			return nil, err
		}
	}
	family := manifests.FamilyOf(types.MediaType(bs.mediaType))
	if s.Compression.Algorithm == layers.Zstd && family == manifests.Docker {
		e.log.Info("zstd layers need OCI media types: writing the whole image as OCI; Docker config fields such as Healthcheck are kept", "image", s.Name)
		family = manifests.OCI
	}
	layerType, err := family.LayerType(s.Compression.Algorithm)
	if err != nil {
		return nil, err
	}
	lb := e.builder(s.Compression)

	// New content layers do not depend on the platform: build each once.
	var content []*layers.Layer
	var history []manifests.History
	upper := map[string]layers.Entry{}
	for _, ls := range s.Layers {
		entries, err := layers.Walk(ls.Spec)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
		}
		if err := checkLayerEntries(s, ls.Name, entries, upper); err != nil {
			return nil, err
		}
		var total int64
		for _, en := range entries {
			total += en.Size
		}
		task := e.opts.Progress.Task(s.Name+": layer "+ls.Name, total)
		hooks := layers.Hooks{Progress: task.Add}
		up := e.stream.open(ctx, s)
		if up != nil {
			hooks.Tee = up
		}
		l, err := lb.BuildWith(ctx, entries, hooks)
		if err != nil {
			task.Done("failed")
			e.stream.finish(up, nil)
			return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
		}
		e.stream.finish(up, l)
		for _, en := range entries {
			upper[en.Name] = en
		}
		d, _ := l.Digest()
		size, _ := l.Size()
		status := fmt.Sprintf("built %s (%s compressed, %d entries)", shortDigest(d.Hex), HumanSize(size), len(entries))
		if l.Cached() {
			status = fmt.Sprintf("cached %s (%s compressed, %d entries)", shortDigest(d.Hex), HumanSize(size), len(entries))
		}
		task.Done(status)
		e.log.Debug("layer", "image", s.Name, "layer", ls.Name, "digest", d, "size", size, "entries", len(entries), "cached", l.Cached())
		content = append(content, l.WithMediaType(layerType))
		history = append(history, manifests.History{CreatedBy: "gantry: " + layerDescription(ls)})
	}

	built := &Built{Spec: s, BaseRef: bs.ref, BaseDigest: bs.digest}
	var children []manifests.Child
	for _, p := range plats {
		img, pr, err := e.buildPlatform(ctx, s, bs, p, family, layerType, content, history, upper)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", manifests.PlatformString(p.platform), err)
		}
		built.Platforms = append(built.Platforms, pr)
		e.opts.Progress.Event(s.Name+" "+pr.Platform, fmt.Sprintf("%s, %s compressed, %s uncompressed", shortDigest(strings.TrimPrefix(pr.Digest, "sha256:")), HumanSize(pr.CompressedSize), HumanSize(pr.UncompressedSize)))
		children = append(children, manifests.Child{Image: img, Platform: p.platform})
		if bs.index == nil {
			built.Image = img
		}
	}
	var digest v1.Hash
	if bs.index != nil {
		idx, err := manifests.NewIndex(bs.rawIndex, family, children, e.annotations(s, bs.ref, bs.digest))
		if err != nil {
			return nil, err
		}
		built.Index = idx
		digest, _ = idx.Digest()
		built.MediaType = string(family.IndexType())
	} else {
		digest, _ = built.Image.Digest()
		built.MediaType = string(family.ManifestType())
	}
	built.Digest = digest
	e.log.Debug("built", "image", s.Name, "digest", digest, "platforms", len(plats), "took", time.Since(start).Round(time.Millisecond))
	return built, nil
}

func layerDescription(ls LayerSpec) string {
	var parts []string
	for _, s := range ls.Sources {
		parts = append(parts, s.To)
	}
	return "COPY " + ls.Name + " → " + strings.Join(parts, ", ")
}

func (e *Engine) annotations(s ImageSpec, ref string, dig v1.Hash) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.base.name":   ref,
		"org.opencontainers.image.base.digest": dig.String(),
		"org.opencontainers.image.created":     e.epoch.Format(time.RFC3339),
	}
	if strings.HasPrefix(ref, "oci:") {
		delete(a, "org.opencontainers.image.base.name") // a local path means nothing to a puller
	}
	maps.Copy(a, s.Annotations)
	return a
}

func (e *Engine) buildPlatform(ctx context.Context, s ImageSpec, bs *base, p platformImage, family manifests.Family, layerType types.MediaType, content []*layers.Layer, history []manifests.History, upper map[string]layers.Entry) (v1.Image, PlatformResult, error) {
	pr := PlatformResult{Platform: manifests.PlatformString(p.platform)}
	baseLayers, err := p.image.Layers()
	if err != nil {
		return nil, pr, fmt.Errorf("listing base layers: %w", err)
	}
	fsys := layers.NewBaseFS(e.cache, baseLayers)
	fsys.Tail = e.tail
	var newLayers []v1.Layer
	var diffIDs []v1.Hash
	var uncompressed int64
	for _, l := range content {
		newLayers = append(newLayers, e.tracked(s.Name, l))
		diffIDs = append(diffIDs, mustDiffID(l))
		uncompressed += l.UncompressedSize()
	}
	patch := manifests.ConfigPatch{
		Env: s.Env, Entrypoint: s.Entrypoint, Cmd: s.Cmd, WorkingDir: s.Workdir,
		ExposedPorts: s.Ports, Volumes: s.Volumes, StopSignal: s.StopSignal, Healthcheck: s.Healthcheck,
		Created: e.epoch, History: append([]manifests.History(nil), history...),
	}
	if u := s.User; u != nil {
		entries, err := layers.UserEntries(ctx, fsys, upper, *u, s.Owns, e.log)
		if err != nil {
			return nil, pr, err
		}
		if err := checkLayerEntries(ImageSpec{Policy: s.Policy}, "user", entries, upper); err != nil {
			return nil, pr, err
		}
		l, err := e.builder(s.Compression).Build(ctx, entries)
		if err != nil {
			return nil, pr, fmt.Errorf("user layer: %w", err)
		}
		ul := l.WithMediaType(layerType)
		newLayers = append(newLayers, e.tracked(s.Name, ul))
		diffIDs = append(diffIDs, mustDiffID(ul))
		uncompressed += ul.UncompressedSize()
		patch.User = fmt.Sprintf("%d:%d", u.UID, u.GID)
		patch.History = append(patch.History, manifests.History{CreatedBy: fmt.Sprintf("gantry: user %s (%d) group %s (%d)", u.Name, u.UID, u.Group, u.GID)})
	}
	patch.DiffIDs = diffIDs
	annotations := e.annotations(s, bs.ref, p.digest)
	patch.Labels = maps.Clone(s.Labels)
	if patch.Labels == nil {
		patch.Labels = map[string]string{}
	}
	if len(s.RuntimeEnv) > 0 {
		v, err := runtimeEnvLabel(s.RuntimeEnv)
		if err != nil {
			return nil, pr, err
		}
		patch.Labels[RuntimeEnvLabel] = v
	}
	if family == manifests.Docker {
		// Docker manifests carry no annotations: record the base as labels.
		maps.Copy(patch.Labels, annotations)
	}
	// The manifest names the config; go-containerregistry's ConfigName would
	// download it to hash it.
	bm, err := p.image.Manifest()
	if err != nil {
		return nil, pr, fmt.Errorf("reading base manifest: %w", err)
	}
	rawCfg, err := e.cache.Blob(bm.Config.Digest, p.image.RawConfigFile)
	if err != nil {
		return nil, pr, fmt.Errorf("reading base config: %w", err)
	}
	cfg, err := manifests.PatchConfig(rawCfg, patch)
	if err != nil {
		return nil, pr, err
	}
	if err := checkRunAs(s, cfg); err != nil {
		return nil, pr, err
	}
	img, err := manifests.Append(p.image, cfg, newLayers, manifests.AppendOptions{Family: family, Annotations: annotations})
	if err != nil {
		return nil, pr, err
	}
	if n := len(baseLayers) + len(newLayers); s.Policy.MaxLayers > 0 && n > s.Policy.MaxLayers {
		return nil, pr, fmt.Errorf("image has %d layers (%d from the base), over maxLayers %d; nothing was pushed", n, len(baseLayers), s.Policy.MaxLayers)
	}
	m, _ := img.Manifest()
	pr.CompressedSize = m.Config.Size
	for _, d := range m.Layers {
		pr.CompressedSize += d.Size
	}
	for i := range baseLayers {
		n, err := fsys.UncompressedSize(ctx, i)
		if err != nil {
			return nil, pr, err
		}
		uncompressed += n
	}
	pr.UncompressedSize = uncompressed
	d, _ := img.Digest()
	pr.Digest = d.String()
	if s.MaxSize > 0 && uncompressed > s.MaxSize {
		return nil, pr, fmt.Errorf("image is %s uncompressed, %s over maxSize %s; nothing was pushed", HumanSize(uncompressed), HumanSize(uncompressed-s.MaxSize), HumanSize(s.MaxSize))
	}
	return img, pr, nil
}

// tracked wraps a new layer so reading its blob (to upload or copy it) is
// reported as progress.
func (e *Engine) tracked(image string, l *layers.Layer) v1.Layer {
	if _, ok := e.opts.Progress.(nopProgress); ok {
		return l
	}
	d, _ := l.Digest()
	return &trackedLayer{Layer: l, label: image + ": blob " + shortDigest(d.Hex), progress: e.opts.Progress}
}

func mustDiffID(l *layers.Layer) v1.Hash {
	d, _ := l.DiffID()
	return d
}

// HumanSize formats a byte count in decimal units, as docker images does.
func HumanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
