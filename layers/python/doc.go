// Package python installs Python wheels into an image layer for a target
// platform, with no pip and no Python on the build machine: per platform of
// a multi-arch base it picks, from a hash-pinned lock, the wheel that
// platform's CPython loads and lays it out as the wheel spec (PEP 427/491)
// and pypa/installer do.
//
// The four steps, each usable on its own:
//
//	t, err := python.DetectTarget(ctx, baseFS, cfg.Env, "linux", "arm64", "v8", "")
//	reqs, err := python.ParseLock("requirements.lock", log)
//	wheels, err := python.Select(ctx, &python.Finder{Sources: srcs, Cache: dir}, reqs, t)
//	entries, err := python.Install(ctx, wheels, t, python.InstallOptions{Cache: dir})
//	layer, err := builder.Build(ctx, entries)
//
// # Targets
//
// DetectTarget reads the base image's filesystem through BaseFS (the engine
// adapts layers.BaseFS to it) and finds the Python, its site directory, its
// scripts directory and the C library; see DetectTarget for the rules. A
// Target can also be written by hand.
//
// # Locks
//
// ParseLock reads pip-compile --generate-hashes / uv export requirements
// files and PEP 751 pylock.toml files. Every requirement is name==version
// with at least one sha256; environment markers are evaluated per target
// by Requirement.Applies (markers that depend on the build machine, such as
// platform_release, are refused when the lock is read). Dependencies are not
// resolved: the lock is the complete set.
//
// # Picking wheels
//
// Target.Tags lists the PEP 425 tags CPython supports on the target in
// packaging.tags.sys_tags() order; Select takes for each requirement the
// wheel with the best tag. Sources are find-links directories and PEP 503
// (HTML) / PEP 691 (JSON) simple indexes, asked in order; the first that
// has a usable wheel wins (files a pylock.toml lists come first). Only
// wheels whose sha256 the lock allows are used; every download is verified
// and stored by its sha256 under Finder.Cache, and each pick is remembered
// there too, so a rebuild with the same lock, target and sources makes no
// request and reads no wheel.
//
// # Installing
//
// Install verifies every member of every wheel against the wheel's RECORD
// (the same set of files, each with its sha256 or sha384/sha512 and size;
// names that are absolute, contain "..", or are symlinks are refused) while
// extracting it into a content-addressed store (InstallOptions.Cache/
// python/files/<sha256>); the entries point into the store, so no wheel is
// held in memory. What goes where:
//
//   - the wheel's root, NAME-VER.data/purelib and /platlib → Target.SiteDir
//   - NAME-VER.data/scripts → Target.ScriptsDir, mode 0755; a first line
//     "#!python" (or "#!pythonw") becomes "#!<Target.Interpreter>"
//   - NAME-VER.data/headers → <Prefix>/include/pythonX.Y/<project name>
//   - NAME-VER.data/data → Target.Prefix
//   - entry_points.txt [console_scripts] and [gui_scripts] → launchers in
//     ScriptsDir, mode 0755, the text pypa/installer writes
//   - .dist-info/INSTALLER is "gantry\n"; .dist-info/RECORD lists every
//     file written, relative to SiteDir (../../../bin/x), RECORD itself
//     with no hash
//
// Members keep their execute bit (zip external attributes). Two files at
// one path, from one wheel or two, are an error naming both.
//
// Directories: Install emits a directory entry (DirMode or 0755, Owner) for
// every directory it creates beneath the directory a file is installed
// into: below SiteDir, ScriptsDir, <Prefix>/include/pythonX.Y, and for data
// files below <Prefix>/<first component> (<Prefix>/share, /etc, ... are
// taken to be the base's). Those directories themselves are not emitted,
// so the base's modes and owners stay, except Target.NewDirs: the ones
// DetectTarget found missing, which are created.
//
// Not done: no .pyc files are compiled (Python compiles modules on first
// import when it can write there, else on every start); no direct_url.json
// or REQUESTED is written; no dependency resolution; no sdist builds; only
// CPython (not PyPy, debug or free-threaded builds) on linux.
package python
