package attest

import (
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// purl writes a package URL (github.com/package-url/purl-spec): type,
// namespace, name, version and key/value qualifiers (empty values left
// out, keys sorted), each part percent-encoded as the spec asks.
func purl(typ, namespace, name, version string, qualifiers ...string) string {
	var b strings.Builder
	b.WriteString("pkg:" + typ + "/")
	if namespace != "" {
		for _, seg := range strings.Split(namespace, "/") {
			b.WriteString(escape(seg) + "/")
		}
	}
	b.WriteString(escape(name))
	if version != "" {
		b.WriteString("@" + escape(version))
	}
	type kv struct{ k, v string }
	var qs []kv
	for i := 0; i+1 < len(qualifiers); i += 2 {
		if qualifiers[i+1] != "" {
			qs = append(qs, kv{qualifiers[i], qualifiers[i+1]})
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].k < qs[j].k })
	for i, q := range qs {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		b.WriteString(sep + q.k + "=" + escapeQualifier(q.v))
	}
	return b.String()
}

const hexDigits = "0123456789ABCDEF"

// escape percent-encodes all but the unreserved characters.
func escape(s string) string { return escapeExcept(s, "") }

// escapeQualifier also keeps "/" (repository_url=docker.io/library/nginx).
func escapeQualifier(s string) string { return escapeExcept(s, "/") }

func escapeExcept(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~"+keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// Deb is the purl of a Debian package as a Debian package installer
// reports it: pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12.
func Deb(namespace, name, version, arch string, osr OSRelease) string {
	if namespace == "" {
		namespace = "debian"
	}
	return purl("deb", namespace, name, version, "arch", arch, "distro", osr.Distro())
}

// PyPI is the purl of a Python package (its name as PEP 503 normalises it).
func PyPI(name, version string) string {
	return purl("pypi", "", strings.ToLower(strings.ReplaceAll(name, "_", "-")), version)
}

// OCI is the purl of an image: its repository's last part, its manifest
// digest, and its architecture; repository (the full repository name) and
// tag when known.
func OCI(repository string, d v1.Hash, p v1.Platform, tag string) string {
	name := repository
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	repoURL := ""
	if repository != name {
		repoURL = repository
	}
	return purl("oci", "", strings.ToLower(name), d.String(), "arch", p.Architecture, "repository_url", repoURL, "tag", tag)
}
