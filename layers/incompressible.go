package layers

import (
	"bytes"
	"path"
	"strings"
)

// incompressible reports whether a file's content is already compressed
// (an archive, an image, a font, media), from its name or its first
// bytes: deflating it costs time and saves nothing, so it is stored.
func incompressible(name string, head []byte, gzipped bool) bool {
	if gzipped {
		return true // a precompressed entry's content is gzip
	}
	if storedExt[strings.ToLower(path.Ext(name))] {
		return true
	}
	for _, m := range storedMagic {
		if len(head) >= m.at+len(m.magic) && bytes.Equal(head[m.at:m.at+len(m.magic)], m.magic) {
			return true
		}
	}
	return false
}

var storedExt = map[string]bool{
	".gz": true, ".tgz": true, ".bz2": true, ".xz": true, ".txz": true, ".zst": true, ".lz4": true, ".br": true,
	".zip": true, ".jar": true, ".war": true, ".whl": true, ".7z": true, ".rar": true, ".apk": true, ".deb": true, ".rpm": true,
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".avif": true, ".heic": true,
	".woff": true, ".woff2": true,
	".mp3": true, ".mp4": true, ".m4a": true, ".m4v": true, ".ogg": true, ".opus": true, ".webm": true, ".mov": true, ".mkv": true,
}

var storedMagic = []struct {
	at    int
	magic []byte
}{
	{0, []byte{0x1f, 0x8b}},                       // gzip
	{0, []byte{0x28, 0xb5, 0x2f, 0xfd}},           // zstd
	{0, []byte{0xfd, '7', 'z', 'X', 'Z', 0}},      // xz
	{0, []byte("BZh")},                            // bzip2
	{0, []byte("PK\x03\x04")},                     // zip, jar, wheel
	{0, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}}, // 7z
	{0, []byte("\x89PNG\r\n\x1a\n")},              // png
	{0, []byte{0xff, 0xd8, 0xff}},                 // jpeg
	{0, []byte("GIF8")},                           // gif
	{8, []byte("WEBP")},                           // webp (RIFF....WEBP)
	{0, []byte("wOF2")},                           // woff2
	{0, []byte("wOFF")},                           // woff
	{4, []byte("ftyp")},                           // mp4, mov, heic, avif
	{0, []byte{0x1a, 0x45, 0xdf, 0xa3}},           // webm, mkv
	{0, []byte("OggS")},                           // ogg
}
