// Package debian installs Debian packages into an image layer for one
// architecture, with no dpkg, apt or emulator: it reads the base image's
// dpkg database and apt configuration, resolves the packages against a
// signed archive, and lays out their files and dpkg's database as layer
// entries.
//
//	srcs, err := debian.BaseSources(ctx, baseFS)          // or ParseSourceLine
//	res, err := debian.Install(ctx, baseFS, debian.Options{
//		Arch: "arm64", Platform: "linux/arm64/v8", Packages: reqs, Sources: srcs,
//		Keys: func(ctx context.Context, a *debian.Archive) (openpgp.EntityList, error) { return debian.BaseKeys(ctx, baseFS, a) },
//		Cache: dir,
//	})
//	layer, err := builder.Build(ctx, res.Entries)
//
// Plan is Install without the downloads of .debs, for a lock file; with
// Options.Locked, Install installs exactly the locked packages.
//
// # Archives
//
// Sources are sources.list one-line entries or deb822 .sources stanzas
// (arch=, signed-by= as a file or an inline key; trusted=yes is refused;
// flat repositories are not supported). For each, InRelease (or Release
// and Release.gpg) is fetched and its OpenPGP signature verified (and its
// Valid-Until, unless check-valid-until=no); the
// Packages index of each component for the architecture and "all" (xz,
// gzip or plain, by hash when the archive has Acquire-By-Hash) is checked
// against the Release's SHA256 before it is read. Downloads are kept by
// sha256 under <Cache>/debian/blobs.
//
// # Resolution
//
// Universe.Resolve follows Pre-Depends and Depends (not Recommends or
// Suggests): versions compare as dpkg does (Compare), an alternative the
// base or the chosen packages meet wins, else the first the archive has
// (its newest fitting version; for a virtual package the first provider by
// name) whose own dependencies can be met — one that fails is undone and
// the next alternative tried; Multi-Arch decides what meets pkg:any. A
// package once chosen stays chosen (no other version of it is tried for a
// later dependency's sake). What the base has installed
// is never installed again or replaced; a dependency it does not meet is an
// error naming the chain of packages that led to it. Conflicts and Breaks
// against the base or the chosen packages are errors.
//
// # Layout
//
// Each .deb is read once (ar, control.tar and data.tar in xz, zstd or
// gzip) into a content store (<Cache>/debian/files/<sha256>, and what it
// held in <Cache>/debian/unpacked/<deb sha256>.json), so a rebuild reads no
// .deb. Every member's path is resolved through the symlinks of the base
// and of the layer itself: on a merged-/usr base ./bin/ps becomes
// usr/bin/ps and the base's /bin symlink is never replaced. Directories the
// base has are not written (their modes and owners stay); files keep the
// package's modes and owners; hard links become copies; two packages
// writing different content at one path is an error.
//
// dpkg's database is merged, not replaced: the base's status file with a
// stanza per new package after it (Status: install ok installed,
// Conffiles with their md5sums), or status.d/NAME files for a base that
// keeps only status.d (distroless); and info/NAME.list (the paths as the
// package names them), md5sums, conffiles and the other control files
// (NAME:ARCH.* for Multi-Arch: same packages).
//
// Maintainer scripts are not run: Result.Warnings names each preinst and
// postinst, each activated trigger but ldconfig's (the libraries are in the
// default search paths), and files added to /etc/ld.so.conf.d.
package debian
