#!/usr/bin/env bash
# bench/run.sh: time gantry against `crane append` and buildah, side by side,
# on generated workloads pushed to a real registry on loopback, and write the
# table to bench/RESULTS.md. Run as root from anywhere:
#
#   bash bench/run.sh
#
# Environment (all optional):
#   BENCH_DIR=/tmp/gantry-bench  scratch space: workloads, registry, caches
#   REPS_SMALL=5 REPS_BIG=3      runs per tool and scenario (medians are reported)
#   WORKLOADS="small big"        which workloads
#   TOOLS="gantry crane buildah" which tools (gantry is always needed for ratios)
#   CRANE_VERSION=v0.22.1        crane to `go install` from the module proxy
#   REGISTRY=distribution        distribution (default): CNCF distribution v3.0.0, `go install`ed
#                                with this Go; debian: Debian's docker-registry 2.8 (built with
#                                Go 1.19, whose SHA-256 does not use the CPU's SHA extensions,
#                                so the registry's own hashing takes a core from the tools)
#   RESULTS=bench/RESULTS.md     where the Markdown goes
#   REGISTRY_DIR=$BENCH_DIR/registry  the registry's storage; a directory on tmpfs (e.g.
#                                /dev/shm/gantry-registry) takes the registry's own disk
#                                syncs out of every tool's times
#   SPLIT=32MB                   the part size of the one-file run with --split
#   KEEP=1                       keep BENCH_DIR afterwards (default: remove the bulky parts)
#   BENCH_NICE=-10               run the timed commands and the registry at this nice
#                                level (and, with autogroup scheduling, this session's
#                                group too), so other work on a shared machine disturbs less
# See bench/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/gantry-bench}
REPS_SMALL=${REPS_SMALL:-5}
REPS_BIG=${REPS_BIG:-3}
WORKLOADS=${WORKLOADS:-small big}
TOOLS=${TOOLS:-gantry crane buildah}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
RESULTS=${RESULTS:-$REPO/bench/RESULTS.md}
KEEP=${KEEP:-0}
REGISTRY=${REGISTRY:-distribution}
REGISTRY_DIR=${REGISTRY_DIR:-$BENCH_DIR/registry}
SPLIT=${SPLIT:-32MB}
BENCH_NICE=${BENCH_NICE:-0}
NICE=()
[ "$BENCH_NICE" = 0 ] || NICE=(nice -n "$BENCH_NICE")
AUTOGROUP_NICE= # with autogroup scheduling, nice only ranks processes within a session
HTML=/usr/share/nginx/html
export BUILDAH_ISOLATION=chroot

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: buildah's vfs storage and apt-get need it"
case " $TOOLS " in *" gantry "*) ;; *) die "TOOLS must include gantry (every ratio is against it)" ;; esac
case $REGISTRY in debian | distribution) ;; *) die "REGISTRY must be debian or distribution" ;; esac
case "$BENCH_DIR" in "$REPO"|"$REPO"/*) die "BENCH_DIR must be outside the repository" ;; esac
command -v go >/dev/null || die "go is not installed"

# --- tools -------------------------------------------------------------------
missing=()
for pair in docker-registry:docker-registry buildah:buildah skopeo:skopeo jq:jq curl:curl tar:tar; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} (Debian packages)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BIN=$BENCH_DIR/bin
WORK=$BENCH_DIR/work
LOGS=$BENCH_DIR/logs
say "preparing $BENCH_DIR"
rm -rf "$WORK" "$LOGS" "$REGISTRY_DIR" "$BENCH_DIR/registry-auth" "$BENCH_DIR/data"
mkdir -p "$BIN" "$WORK" "$LOGS" "$BENCH_DIR/data"
RAW=$WORK/results.tsv
META=$WORK/meta.tsv
: >"$RAW"
: >"$META"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

if [ ! -x "$BIN/crane" ] || ! "$BIN/crane" version 2>/dev/null | grep -qx "$CRANE_VERSION"; then
	say "go install crane@$CRANE_VERSION"
	GOBIN=$BIN GOFLAGS= go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi
if [ "$REGISTRY" = distribution ] && [ ! -x "$BIN/registry" ]; then
	say "go install distribution/v3/cmd/registry@v3.0.0"
	GOBIN=$BIN GOFLAGS= go install github.com/distribution/distribution/v3/cmd/registry@v3.0.0
fi
say "building gantry and the bench helpers"
(cd "$REPO" && GOFLAGS=-buildvcs=false go build -o "$BIN/gantry" ./cmd/gantry &&
	GOFLAGS=-buildvcs=false go build -o "$BIN/harness" ./bench/harness &&
	GOFLAGS=-buildvcs=false go build -o "$BIN/gen" ./bench/gen &&
	GOFLAGS=-buildvcs=false go build -o "$BIN/floor" ./bench/floor)
H=$BIN/harness
# The benchmark appends a static site as crane and buildah do: no --user, so
# the image runs as the base's user (root); newer gantry refuses that unless told.
GANTRY_FLAGS=()
case $("$BIN/gantry" append --help 2>&1 || true) in *--allow-root*) GANTRY_FLAGS+=(--allow-root) ;; esac

# --- machine and versions ----------------------------------------------------
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] || commit="$commit + uncommitted changes"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta nproc "$(nproc)"
meta memory "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
meta kernel "$(uname -r)"
meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average: other work on the machine shares the $(nproc) cores)"
meta gantry "$commit"
meta go "$(go version | cut -d' ' -f3-)"
meta crane "$("$BIN/crane" version) (go install from the module proxy)"
meta buildah "$(buildah --version | cut -d' ' -f3), vfs storage, chroot isolation"
mkdir -p "$REGISTRY_DIR"
STORAGE="$(stat -f -c %T "$REGISTRY_DIR")"
if [ "$REGISTRY" = distribution ]; then
	REG_CMD=("$BIN/registry" serve)
	meta registry "distribution $("$BIN/registry" --version | awk '{print $3}') built with $(go version | cut -d' ' -f3) (filesystem storage on $STORAGE, plain HTTP on 127.0.0.1)"
else
	REG_CMD=(docker-registry serve)
	meta registry "Debian docker-registry $(docker-registry --version | cut -d' ' -f3) built with $(go version /usr/bin/docker-registry 2>/dev/null | cut -d' ' -f2) (filesystem storage on $STORAGE, plain HTTP on 127.0.0.1)"
fi
meta tar "$(tar --version | head -1)"
runs=
for w in $WORKLOADS; do case $w in small) runs+="W-small ×$REPS_SMALL, " ;; big) runs+="W-big ×$REPS_BIG, " ;; esac; done
[ "$BENCH_NICE" = 0 ] || runs+="nice $BENCH_NICE (timed commands and registry), "
meta runs "${runs%, }; per tool and scenario, tools interleaved"

# --- registry ----------------------------------------------------------------
PORT=$("$H" port)
REG=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REG
EOF
REG_PID=
AUTH_PID=
cleanup() {
	local rc=$?
	if [ -n "$AUTOGROUP_NICE" ]; then echo "$AUTOGROUP_NICE" >/proc/self/autogroup 2>/dev/null || true; fi
	for pid in $REG_PID $AUTH_PID; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$KEEP" != 1 ]; then
		rm -rf "$REGISTRY_DIR" "$BENCH_DIR/registry-auth" "$BENCH_DIR/data" "$WORK"/gantry-* "$WORK"/buildah-* "$WORK"/*.tar "$WORK"/floor-*
	fi
	[ $rc = 0 ] || printf 'bench: failed (exit %s); logs in %s\n' "$rc" "$LOGS" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$BENCH_NICE" != 0 ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && [ -w /proc/self/autogroup ]; then
	AUTOGROUP_NICE=$(sed -n 's/.* nice //p' /proc/self/autogroup)
	echo "$BENCH_NICE" >/proc/self/autogroup
fi
say "starting ${REG_CMD[0]##*/} on $REG"
"${NICE[@]}" "${REG_CMD[@]}" "$WORK/registry.yml" >"$LOGS/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
	curl -fsS -o /dev/null "http://$REG/v2/" 2>/dev/null && break
	kill -0 "$REG_PID" 2>/dev/null || die "the registry exited: $(tail -5 "$LOGS/registry.log")"
	sleep 0.1
done
curl -fsS -o /dev/null "http://$REG/v2/" || die "the registry did not answer on $REG"

# A second registry that wants a password, for the wrong-credentials run.
AUTH_REG=127.0.0.1:$("$H" port)
"$H" htpasswd bench right-password >"$WORK/htpasswd"
sed -e "s|rootdirectory: .*|rootdirectory: $BENCH_DIR/registry-auth|" -e "s|addr: .*|addr: $AUTH_REG|" "$WORK/registry.yml" >"$WORK/registry-auth.yml"
printf 'auth:\n  htpasswd:\n    realm: bench\n    path: %s\n' "$WORK/htpasswd" >>"$WORK/registry-auth.yml"
"${REG_CMD[@]}" "$WORK/registry-auth.yml" >"$LOGS/registry-auth.log" 2>&1 &
AUTH_PID=$!
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$AUTH_REG/v2/")" = 401 ] && break
	kill -0 "$AUTH_PID" 2>/dev/null || die "the password registry exited: $(tail -5 "$LOGS/registry-auth.log")"
	sleep 0.1
done

BASE=$REG/base/nginx:alpine
say "pushing the two-platform base to $BASE"
skopeo copy -q --all --dest-tls-verify=false "oci:$REPO/testdata/bases/nginx-alpine:alpine" "docker://$BASE" >>"$LOGS/setup.log" 2>&1
"$BIN/crane" manifest --insecure "$BASE" | jq -e '[.manifests[] | select(.platform.os == "linux")] | length == 2' >/dev/null ||
	die "the base is not a two-platform index"

# --- the tools' sequences ----------------------------------------------------
timed() { # timed WORKLOAD TOOL SCENARIO ITER -- CMD... [:: CMD...]
	local w=$1 tool=$2 sc=$3 i=$4
	shift 4
	sync # untimed: what the last step wrote is not flushed during this one
	"${NICE[@]}" "$H" time -out "$RAW" -registry-pid "$REG_PID" -tag "$w $tool $sc $i" -log "$LOGS/$w-$tool.log" "$@"
}
has() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }

run_gantry() { # W SCEN ITER STATE
	gantry_at "$1" "$2" "$3" "$SRC" "$WORK/gantry-$1-$4" "$REG/bench/$1-gantry-$4:latest"
}
run_crane() {
	local w=$1 sc=$2 i=$3 st=$4
	timed "$w" crane "$sc" "$i" -- tar --sort=name --owner=1001 --group=1001 --numeric-owner --mode=u=rwX,go=rX --mtime=@0 \
		-C "$SRC" -cf "$WORK/layer-$w.tar" --transform "s,^\\.,${HTML#/}," . \
		:: "$BIN/crane" append --insecure --platform linux/amd64 -b "$BASE" -f "$WORK/layer-$w.tar" -t "$REG/bench/$w-crane-$st:latest"
}
run_buildah() {
	local w=$1 sc=$2 i=$3 st=$4
	local b=(buildah --storage-driver vfs --root "$WORK/buildah-$w-$st/root" --runroot "$WORK/buildah-$w-$st/run")
	timed "$w" buildah "$sc" "$i" -- "${b[@]}" from --name "ctr-$w-$sc-$i" --tls-verify=false "docker://$BASE" \
		:: "${b[@]}" copy --chown 1001:1001 "ctr-$w-$sc-$i" "$SRC" "$HTML" \
		:: "${b[@]}" commit "ctr-$w-$sc-$i" "bench-$w" \
		:: "${b[@]}" push --tls-verify=false "bench-$w" "docker://$REG/bench/$w-buildah-$st:latest"
	# untimed: drop the container and the committed image (buildah reuses neither)
	"${b[@]}" rm "ctr-$w-$sc-$i" >/dev/null
	"${b[@]}" rmi "bench-$w" >/dev/null 2>&1 || true
}
# gantry where CI runs: gantry_at W SCEN ITER SRC CACHE DEST [FLAGS...]
gantry_at() {
	local w=$1 sc=$2 i=$3
	shift 3
	gantry_argv "$@"
	timed "$w" gantry "$sc" "$i" -- "${ARGV[@]}"
}
# gantry_argv SRC CACHE DEST [FLAGS...]: the command line of every gantry run, in ARGV
gantry_argv() {
	local src=$1 cache=$2 dest=$3
	shift 3
	ARGV=("$BIN/gantry" append --base "$BASE" --layer "$src:$HTML" --owner 1001:1001 \
		--push "$dest" --cache-dir "$cache" -q "${GANTRY_FLAGS[@]}" "$@")
}
# the registry's access log counts blob uploads
mark() { wc -l <"$LOGS/registry.log"; }
uploads_since() { tail -n +"$(($1 + 1))" "$LOGS/registry.log" | grep -cE '"(PATCH|PUT) /v2/[^ ]*/blobs/uploads/' || true; }
ci_scenarios() { # W REPS STATE: fresh checkout, fresh runner, --cache-from, wrong credentials
	local w=$1 reps=$2 st=$3 i m dest=$REG/bench/$w-gantry-$3:latest
	say "W-$w: gantry where CI runs ×$reps"
	m=$(mark)
	for i in $(seq "$reps"); do # the same files with new mtimes at the same path, the cache of the last build
		rm -rf "$SRC-checkout" && cp -r "$SRC" "$SRC-checkout" && rm -rf "$SRC" && mv "$SRC-checkout" "$SRC"
		gantry_at "$w" freshcheckout "$i" "$SRC" "$WORK/gantry-$w-$st" "$dest"
	done
	meta "uploads_${w}_freshcheckout" "$(uploads_since "$m")"
	m=$(mark)
	for i in $(seq "$reps"); do # an empty cache, the image in the registry
		rm -rf "$WORK/gantry-$w-fresh"
		gantry_at "$w" freshrunner "$i" "$SRC" "$WORK/gantry-$w-fresh" "$dest"
	done
	meta "uploads_${w}_freshrunner" "$(uploads_since "$m")"
	m=$(mark)
	for i in $(seq "$reps"); do # an empty cache, a new tag, --cache-from the last one
		rm -rf "$WORK/gantry-$w-fresh"
		gantry_at "$w" cachefrom "$i" "$SRC" "$WORK/gantry-$w-fresh" "${dest%:latest}:pr-$i" --cache-from :latest
	done
	meta "uploads_${w}_cachefrom" "$(uploads_since "$m")"
	for i in $(seq "$reps"); do # a wrong password: exit 3 before any layer is built
		rm -rf "$WORK/gantry-$w-fresh"
		timed "$w" gantry wrongcreds "$i" -- bash -c 'echo wrong-password | "$@"; [ $? = 3 ]' _ "$BIN/gantry" append --base "$BASE" \
			--layer "$SRC:$HTML" --push "$AUTH_REG/bench/$w:latest" --registry-user bench --registry-password-stdin \
			--cache-dir "$WORK/gantry-$w-fresh" -q "${GANTRY_FLAGS[@]}"
	done
	rm -rf "$WORK/gantry-$w-fresh"
}
drop_state() { # remove what a cold run left behind (cache, storage, tar)
	local w=$1 st=$2
	rm -rf "$WORK/gantry-$w-$st" "$WORK/buildah-$w-$st"
}

change_one_file() { # rewrite the content of one file, as an edit would
	printf '\n/* edited for run %s at %s */\n' "$2" "$(date +%s%N)" >>"$SRC/$1"
}

kind() { # describe a manifest's media type
	jq -r '.mediaType // "" | if test("index|list") then "an index" elif test("manifest") then "a single image manifest" else "unknown (" + . + ")" end'
}
checks() { # once per workload: what each tool pushed
	local w=$1 st=$2 m t digest listing files owners
	if has gantry; then
		m=$("$BIN/crane" manifest --insecure "$REG/bench/$w-gantry-$st:latest")
		meta "check_${w}_gantry" "W-$w gantry pushed $(kind <<<"$m") of $(jq '[.manifests[] | select(.platform.os != "unknown")] | length' <<<"$m") platform images ($(jq -r '[.manifests[] | select(.platform.os != "unknown") | .platform | [.os, .architecture, .variant // empty] | join("/")] | join(", ")' <<<"$m")) and $(jq '[.manifests[] | select(.platform.os == "unknown")] | length' <<<"$m") attestation manifests"
	fi
	for t in crane buildah; do
		has "$t" || continue
		m=$("$BIN/crane" manifest --insecure "$REG/bench/$w-$t-$st:latest")
		meta "check_${w}_$t" "W-$w $t pushed $(kind <<<"$m") (linux/amd64 only) with $(jq '.layers | length' <<<"$m") layers"
	done
	for t in $TOOLS; do
		[ "$w" = small ] || [ "$t" = gantry ] || continue
		digest=$("$BIN/crane" manifest --insecure --platform linux/amd64 "$REG/bench/$w-$t-$st:latest" | jq -r '.layers[-1].digest')
		listing=$("$BIN/crane" blob --insecure "$REG/bench/$w-$t-$st@$digest" | tar -tvzf -)
		files=$(grep -c "^-.* ${HTML#/}/" <<<"$listing" || true)
		owners=$(grep " ${HTML#/}/." <<<"$listing" | awk '{print $2}' | sort -u | tr '\n' ' ')
		meta "check_${w}_${t}_layer" "W-$w $t: the new layer holds $files regular files under $HTML, owned by ${owners% }"
		if [ "$t" = gantry ] && [ -d "$WORK/floor-$w" ]; then # the floor must do exactly gantry's work
			if [ -e "$WORK/floor-$w/blobs/$(tr : / <<<"$digest")" ]; then
				meta "check_${w}_floor" "W-$w floor: its blob is byte-identical to gantry's pushed layer (${digest:0:19}…)"
			else
				meta "check_${w}_floor" "W-$w floor: its blob differs from gantry's pushed layer ${digest:0:19}…"
			fi
		fi
	done
}

# --- one workload ------------------------------------------------------------
bench_workload() {
	local w=$1 reps=$2 changed i t last
	SRC=$BENCH_DIR/data/$w
	say "W-$w: generating"
	meta "workload_$w" "$("$BIN/gen" -workload "$w" -out "$SRC" | cut -d: -f2- | sed 's/^ *//')"
	case $w in small) changed=assets/js/main.js ;; *) changed=app/main.js ;; esac

	say "W-$w: cold (new repository, empty cache and storage), and gantry cold with --user ×$reps"
	for i in $(seq "$reps"); do
		[ "$i" = 1 ] || drop_state "$w" "cold$((i - 1))"
		for t in $TOOLS; do "run_$t" "$w" cold "$i" "cold$i"; done
		# cold with a user merged into each platform's /etc/passwd, beside the
		# cold runs it is compared with (run later, it came out 0.15-0.5 s slower
		# for the same work)
		gantry_at "$w" colduser "$i" "$SRC" "$WORK/gantry-$w-coldu" "$REG/bench/$w-gantry-user$i:latest" --user appuser:1001:appgroup:1001
		rm -rf "$WORK/gantry-$w-coldu"
		rm -rf "$WORK/floor-$w"
		timed "$w" floor cold "$i" -- "$BIN/floor" -dir "$SRC" -to "$HTML" -cache-dir "$WORK/floor-$w"
	done
	last=cold$reps
	checks "$w" "$last"
	rm -rf "$WORK/floor-$w"

	say "W-$w: rebuild with nothing changed ×$reps"
	for i in $(seq "$reps"); do
		for t in $TOOLS; do "run_$t" "$w" nochange "$i" "$last"; done
	done

	say "W-$w: rebuild after changing $changed ×$reps"
	for i in $(seq "$reps"); do
		change_one_file "$changed" "$i"
		for t in $TOOLS; do "run_$t" "$w" onefile "$i" "$last"; done
	done
	# The rest is gantry's alone. Drop what buildah and crane left (GBs of vfs
	# storage, a tar): with it on disk and in the page cache, gantry's cold
	# --user runs took 0.2-0.4 s longer than its cold runs; in a run without
	# buildah, as long.
	rm -rf "$WORK"/buildah-"$w"-* "$WORK/layer-$w.tar"
	ci_scenarios "$w" "$reps" "$last"
	# after the CI scenarios, which need the tree as it was last pushed
	if [ "$w" = big ]; then # one layer cut into parts: a change uploads its part only
		local split=$WORK/gantry-$w-split m
		say "W-$w: gantry --split $SPLIT: a build (untimed), then one file changed ×$reps"
		gantry_argv "$SRC" "$split" "$REG/bench/$w-gantry-split:latest" --split "$SPLIT"
		"${ARGV[@]}" >>"$LOGS/$w-gantry.log" 2>&1
		m=$(mark)
		for i in $(seq "$reps"); do
			change_one_file "$changed" "split$i"
			gantry_at "$w" onefilesplit "$i" "$SRC" "$split" "$REG/bench/$w-gantry-split:latest" --split "$SPLIT"
		done
		meta "check_${w}_split" "W-$w gantry --split $SPLIT: $("$BIN/crane" manifest --insecure --platform linux/amd64 "$REG/bench/$w-gantry-split:latest" | jq '.layers | length') layers (2 from the base); $(uploads_since "$m") blob upload requests (PATCH and PUT) in $reps one-file runs: per run, the changed part and, per platform, a config, an SBOM and a provenance"
		rm -rf "$split"
	fi
	drop_state "$w" "$last"
	rm -f "$WORK/layer-$w.tar"
	rm -rf "$SRC"
}

for w in $WORKLOADS; do
	case $w in
	small) bench_workload small "$REPS_SMALL" ;;
	big) bench_workload big "$REPS_BIG" ;;
	*) die "unknown workload $w (small, big)" ;;
	esac
done
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

say "results"
"$H" report -results "$RAW" -meta "$META" -md "$RESULTS"
cp "$RAW" "$LOGS/results.tsv"
printf '\nbench: wrote %s (raw timings: %s/results.tsv)\n' "$RESULTS" "$LOGS" >&2
