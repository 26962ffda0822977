#!/usr/bin/env bash
# bench/matrix.sh: the release matrix made three ways on this machine, in one invocation,
# from the same local Debian packages, each into a fresh loopback registry, and one table
# comparing them. See bench/README.md for the columns and numbers.
#
#   bench/matrix.sh                 6 hosts x 5 targets (+ the all-target images), d7.2
#   bench/matrix.sh --quick         2 hosts (amd64 arm64v8) x 2 targets: the CI smoke run
#   bench/matrix.sh --all-targets   every target the packages ship gets pkg/full and a
#                                   single-target image (what a real release does)
#   options: --runs N (docker run samples, default 20), --prune (docker builder prune -f
#   before each daemon build phase), --fetch-only, -h
#   QUS_BIN=PATH measures that binary instead of building one with cargo --release
#   QUS_BENCH_DEBS=DIR reads the packages there (default ~/.cache/qus/bench-debs)
#
# 1. The dbhi/qus way (the baseline), reproduced from dbhi/qus's run.sh with the docker CLI:
#    per host, `dpkg --fsys-tarfile DEB | tar -x` of the emulators into bin-static/, then
#    DOCKER_BUILDKIT=0 `docker build --platform P --no-cache` of
#      H-dV-pkg       FROM scratch / COPY ./* /usr/bin/                     (context bin-static/)
#      H-dV-register  busybox + /qus/register + /qus/qemu-binfmt-conf.sh    (context: host dir)
#      H-dV           FROM H-dV-register / COPY --from=H-dV-pkg /usr/bin/qemu-* /qus/bin/
#                     / VOLUME /qus                                         (context: host dir)
#      H-dV-T         as H-dV with /usr/bin/qemu-T-static only              (empty context)
#    then `docker push` of each image and `docker manifest create --insecure` + `docker
#    manifest push --insecure --purge` of every list qus publishes (same tags, from `qus plan`).
#    Simplified, and why:
#    - No network: the .deb files are read from disk (dbhi: `curl URL | dpkg --fsys-tarfile -`).
#    - FROM <arch>/busybox cannot be pulled here: the register image is FROM scratch with
#      Debian's busybox-static (/bin/busybox, /bin/sh -> busybox), the same binary qus uses.
#      `ADD https://…/qemu-binfmt-conf.sh` + `RUN chmod +x` (a RUN needs the host arch) become
#      a COPY of a local stand-in with its mode set in the context. register.sh and
#      qemu-binfmt-conf.sh are small stand-ins written here (a few KB, never run).
#    - The register and full images are built with the host folder as context, as dbhi does
#      with its repository root (no .dockerignore): bin-static/ is sent to the daemon again.
#      dbhi's releases/*.tgz assets are not made (qus release does not make assets either).
#    - dbhi has no single-target images; they are built its way (FROM register, COPY --from
#      the pkg image), with an empty context, which is the cheapest way to build them.
#    - Only the emulators in the config's target list are extracted (explicit tar members
#      instead of the qemu-*-static wildcard): both sides hold the SAME emulator set.
# 2. `qus release` for the same hosts, targets and tags: qus writes every layer, config and
#    manifest itself and uploads them with its own registry client, with DOCKER_HOST naming
#    a socket nobody listens on (it needs no daemon), and a fresh QUS_CACHE (nothing
#    extracted, no layer compressed yet). Then:
#    - warm: the same command again, same cache (nothing changed: HEADs only);
#    - fresh: the same command with another empty QUS_CACHE (a new CI runner: every image is
#      computed again, and nothing may be uploaded or written: the digests are the same).
# 3. `qus release --builder dockerfile --no-cache` (qus's previous way: Dockerfile.template
#    through the daemon's classic builder, pushed by the daemon) for the same tags, with its
#    own fresh QUS_CACHE, into its own fresh registry.
#
# What they share: the Docker daemon, used by 1 and 3 (2 never talks to it). Both build with
# --no-cache, so the classic builder never reuses a layer (its cache is the image store,
# which `docker builder prune` does not touch; --prune runs it anyway). The daemon's layer
# store may still hold layers with the same content from other work: a build then still
# copies and diffs its files, and only the storage is shared. Pushes always compress and
# upload: every registry is new. The docker run comparison pulls qus's images from its
# registry into the daemon after every timing (and removes them at the end).
#
# Everything is on loopback: three docker-registry processes on free 127.0.0.1 ports,
# storage in a temp folder; all of it, and every image tag this script made, is removed at
# the end. The qus binary is copied into the temp folder first (a rebuild during the run
# does not change what is measured). The packages are fetched once with a private apt
# state (as ci/fetch-test-debs does) into ~/.cache/qus/bench-debs.
# Results: bench/out/matrix-<mode>-<time>.json and .txt.
set -euo pipefail
export LC_ALL=C

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

mode=default runs=20 prune=0 fetch_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) mode=quick ;;
    --all-targets) mode=all ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --prune) prune=1 ;;
    --fetch-only) fetch_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "matrix.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
outdir=$here/out
cache=$HOME/.cache/qus
debs=${QUS_BENCH_DEBS:-$cache/bench-debs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
source_name=d7.2
repo_path="qus-bench"
case $mode in
  quick) hosts=(amd64 arm64v8); targets=(aarch64 riscv64) ;;
  *) hosts=(amd64 arm64v8 arm32v7 i386 ppc64le s390x); targets=(aarch64 arm riscv64 ppc64le s390x) ;;
esac
# The host this machine runs (the docker run comparison uses its images).
case $(uname -m) in
  x86_64) native=amd64 ;; aarch64) native=arm64v8 ;; ppc64le) native=ppc64le ;; s390x) native=s390x ;;
  *) native=unsupported ;;
esac
[[ " ${hosts[*]} " == *" $native "* ]] || { echo "matrix.sh: this machine ($(uname -m)) is not a benchmarked host" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "matrix.sh: --runs needs a positive number" >&2; exit 2; }

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
now() { printf '%s' "$EPOCHREALTIME"; }
# elapsed START [END]: seconds between two $EPOCHREALTIME values, 3 decimals.
elapsed() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo MET; else echo MISSED; fi; }

deb_arch() {
  case $1 in
    amd64) echo amd64 ;; arm64v8) echo arm64 ;; arm32v7) echo armhf ;; arm32v6) echo armel ;;
    i386) echo i386 ;; ppc64le) echo ppc64el ;; s390x) echo s390x ;; riscv64) echo riscv64 ;;
    *) die "unknown host $1" ;;
  esac
}

# --- tools -------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1; }
for t in docker docker-registry dpkg-deb tar jq curl python3 apt-get gzip; do
  need "$t" || die "$t is missing"
done
[ -n "${QUS_BIN:-}" ] || need cargo || die "cargo is missing (or set QUS_BIN)"
if [ ! -x /usr/bin/time ]; then
  say "installing Debian's time (for peak RSS)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
if ! need hyperfine; then
  say "installing Debian's hyperfine (for docker run timings)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
    say "hyperfine is not available: docker run is timed with a loop"
fi

# --- packages: a private apt state, this machine's dpkg and apt setup untouched ----------
fetch_debs() {
  local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg line suite pkg a
  local -a missing opts
  mkdir -p "$debs"
  local wanted=("bookworm qemu-user-static" "trixie busybox-static")
  for line in "${wanted[@]}"; do
    read -r suite pkg <<<"$line"
    missing=()
    for h in "${hosts[@]}"; do
      a=$(deb_arch "$h")
      compgen -G "$debs/${pkg}_*_${a}.deb" >/dev/null || missing+=("$pkg:$a")
    done
    [ ${#missing[@]} -eq 0 ] && continue
    mirror=${QUS_MIRROR:-}
    if [ -z "$mirror" ]; then
      mirror=$(awk 'tolower($1)=="uris:" && $2 ~ /\/debian\/?$/ {print $2; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    fi
    if [ -z "$mirror" ]; then
      mirror=$(awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) {print $i; exit}}' \
        /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || die "no Debian mirror: set QUS_MIRROR=<base URL of a Debian mirror>"
    local state=$cache/bench-apt/$suite
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$state/sources.list"
    opts=(-o "Dir::State::Lists=$state/lists" -o "Dir::Etc::SourceList=$state/sources.list"
          -o "Dir::Etc::SourceParts=/nonexistent" -o "Dir::Cache=$state/cache"
          -o "APT::Architectures=amd64,arm64,armhf,i386,ppc64el,s390x"
          -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
    say "fetching $suite: ${missing[*]}"
    apt-get -qq "${opts[@]}" update
    (cd "$debs" && apt-get -qq "${opts[@]}" download "${missing[@]}")
  done
}
fetch_debs
[ "$fetch_only" = 1 ] && { ls -l "$debs"; exit 0; }

deb_file() { # PACKAGE HOST -> newest matching file
  local f
  f=$(compgen -G "$debs/${1}_*_$(deb_arch "$2").deb" | sort | tail -n1) ||
    die "no $1 for $2 in $debs"
  printf '%s' "$f"
}
# The emulators a package ships (qemu-T-static), cached beside it.
shipped() {
  local f=$1 list=$1.targets
  if [ ! -s "$list" ] || [ "$list" -ot "$f" ]; then
    dpkg-deb -c "$f" | awk '{print $NF}' |
      sed -n 's#^\./usr/bin/qemu-\(.*\)-static$#\1#p' | sort >"$list.tmp"
    mv "$list.tmp" "$list"
  fi
  cat "$list"
}

# --- the qus binary ----------------------------------------------------------------------
if [ -n "${QUS_BIN:-}" ]; then
  # CI's smoke run reuses the binary its tests built: it proves the script works, and a
  # debug build's times are not the ones to quote.
  qus=$QUS_BIN
  say "qus: $qus (QUS_BIN)"
else
  say "cargo build --release -p qus (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$root" && cargo build --release -p qus --locked -q)
  qus=$CARGO_TARGET_DIR/release/qus
fi
[ -x "$qus" ] || die "$qus was not built"
# Which qus was measured: the commit, whether the tree had changes, and the binary's sum.
qus_rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
# (With QUS_BIN, the binary may come from another state of the tree than the one named.)
qus_from=${QUS_BIN:+", given by QUS_BIN=$QUS_BIN: built from that tree or another"}

# --- work dir, registries, clean-up --------------------------------------------------------
work=$(mktemp -d /tmp/qus-bench.XXXXXX)
export DOCKER_CONFIG=$work/docker-config # no credentials needed on loopback; ~/.docker untouched
mkdir -p "$DOCKER_CONFIG"
reg_pids=() sampler_pid='' made_refs=$work/made-refs
: >"$made_refs"
binfmt_state() {
  if mountpoint -q /proc/sys/fs/binfmt_misc 2>/dev/null; then
    ls /proc/sys/fs/binfmt_misc
  else
    echo "(binfmt_misc not mounted)"
  fi
}
binfmt_before=$(binfmt_state)

cleanup() {
  local rc=$? p
  set +e
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  for p in "${reg_pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if [ -s "$made_refs" ]; then
    sort -u "$made_refs" | xargs -r docker rmi >/dev/null 2>&1
    # A tag that did not exist fails the batch above: remove the rest one by one.
    sort -u "$made_refs" | while read -r p; do
      docker image inspect "$p" >/dev/null 2>&1 && docker rmi "$p" >/dev/null 2>&1
    done
  fi
  p=$(binfmt_state)
  if [ "$p" != "$binfmt_before" ]; then
    say "WARNING: the host's binfmt_misc changed during the run (this script registers nothing:"
    say "  another process on this machine did?): before: $(echo "$binfmt_before" | tr '\n' ' ')"
    say "  after: $(echo "$p" | tr '\n' ' ')"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binary measured is a copy: a rebuild of $QUS_BIN during the run changes nothing here.
mkdir -p "$work/bin"
cp "$qus" "$work/bin/qus"
qus=$work/bin/qus
qus_sum=$(sha256sum "$qus" | cut -c1-12)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# start_registry NAME -> sets REG_PORT; storage in $work/NAME/storage, log in $work/NAME/log
start_registry() {
  local name=$1 dir=$work/$1 port i
  mkdir -p "$dir/storage"
  for i in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: qus-bench-upload-state
EOC
    docker-registry serve "$dir/config.yml" >>"$dir/log" 2>&1 &
    local pid=$!
    local t
    for t in $(seq 100); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null &&
        grep -q "listening on 127.0.0.1:$port" "$dir/log"; then
        reg_pids+=("$pid")
        REG_PORT=$port
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    [ "$t" = 100 ] && die "docker-registry did not start; log: $dir/log"
  done
  die "no free port for docker-registry"
}
reg_stats() { # NAME -> "bytes blobs"
  local s=$work/$1/storage
  printf '%s %s' "$(du -sb "$s" | cut -f1)" \
    "$(find "$s" -path '*/docker/registry/v2/blobs/sha256/*/*/data' -type f | wc -l)"
}
log_size() { stat -c %s "$work/$1/log"; }
# uploads NAME FROM_OFFSET -> "blob_puts blob_posts manifest_puts requests" since the offset
uploads() {
  tail -c +"$(($2 + 1))" "$work/$1/log" | awk '
    /"PUT \/v2\/[^"]*\/blobs\/uploads\// { put++ }
    /"POST \/v2\/[^"]*\/blobs\/uploads\// { post++ }
    /"PUT \/v2\/[^"]*\/manifests\// { man++ }
    /"(GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\// { req++ }
    END { printf "%d %d %d %d", put, post, man, req }'
}

# CPU sampler, 4 times a second: dockerd + containerd ticks, the machine's busy and total
# ticks, the running qus process's ticks (all its threads; the pid comes from
# $work/client.pid, and the column adds up over the runs, so it only grows) and the three
# registries' ticks.
hz=$(getconf CLK_TCK)
proc_ticks() { local f; { read -r -a f <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return; }; echo $((f[13] + f[14])); }
dockerd_pid=$(pidof dockerd | awk '{print $1}')
containerd_pid=$(pidof containerd | awk '{print $1}')
sampler() {
  local c busy total d k r p cpid='' seen='' done_ticks=0 last=0 x
  while :; do
    read -r -a c </proc/stat
    total=0; for k in 1 2 3 4 5 6 7 8; do total=$((total + c[k])); done
    busy=$((total - c[4] - c[5]))
    d=$(( $(proc_ticks "${dockerd_pid:-0}") + $(proc_ticks "${containerd_pid:-0}") ))
    r=0; for p in "${reg_pids[@]}"; do r=$((r + $(proc_ticks "$p"))); done
    cpid=''; [ -s "$work/client.pid" ] && read -r cpid <"$work/client.pid"
    if [ -n "$cpid" ]; then
      # A new run: what the previous one used stays counted.
      [ "$cpid" = "$seen" ] || { done_ticks=$((done_ticks + last)); last=0; seen=$cpid; }
      x=$(proc_ticks "$cpid")
      [ "$x" -gt "$last" ] && last=$x # an exited process keeps its last reading
    fi
    printf '%s %s %s %s %s %s\n' "$EPOCHREALTIME" "$d" "$busy" "$total" "$((done_ticks + last))" "$r"
    sleep 0.25
  done
}
# cpu_between T0 T1 -> "daemon_s machine_s client_s registry_s" (CPU seconds, nearest samples)
cpu_between() {
  awk -v a="$1" -v b="$2" -v hz="$hz" '
    { t[NR] = $1; d[NR] = $2; m[NR] = $3; c[NR] = $5; r[NR] = $6 }
    END {
      i = 1; while (i < NR && t[i + 1] <= a) i++
      j = i; while (j < NR && t[j] < b) j++
      printf "%.1f %.1f %.1f %.1f", (d[j] - d[i]) / hz, (m[j] - m[i]) / hz, (c[j] - c[i]) / hz, (r[j] - r[i]) / hz
    }' "$work/cpu.samples"
}

# --- the config: exactly these packages, pinned ------------------------------------------
mkdir -p "$outdir"
known=$(awk '/- name: d7.2/ {f = 1} f && /targets:/ { sub(/.*targets: \[/, ""); sub(/\].*/, ""); gsub(/ /, ""); print; exit }' \
  "$root/images/qus.yml" | tr ',' ' ')
[ -n "$known" ] || die "cannot read the d7.2 target list from images/qus.yml"
pin() { # HOST FILE [TARGETS] -> one YAML flow mapping line
  local name plain
  name=$(basename "$2")
  plain=$(printf '%s' "$name" | sed 's/_[0-9]*%3a/_/')
  local pkg=${plain%%_*} dir
  case $pkg in busybox*) dir=pool/main/b/busybox ;; *) dir=pool/main/q/qemu ;; esac
  printf '%s: { file: %s/%s, size: %s, sha256: %s%s }' "$1" "$dir" "$plain" \
    "$(stat -c %s "$2")" "$(sha256sum "$2" | cut -d' ' -f1)" "${3:+, targets: [$3]}"
}
declare -A qemu_deb bb_deb host_targets
union=()
for h in "${hosts[@]}"; do
  qemu_deb[$h]=$(deb_file qemu-user-static "$h")
  bb_deb[$h]=$(deb_file busybox-static "$h")
  ship=$(shipped "${qemu_deb[$h]}")
  sel=()
  if [ "$mode" = all ]; then
    for t in $known; do grep -qx "$t" <<<"$ship" && sel+=("$t"); done
  else
    for t in "${targets[@]}"; do grep -qx "$t" <<<"$ship" && sel+=("$t"); done
  fi
  host_targets[$h]="${sel[*]}"
  for t in "${sel[@]}"; do [[ " ${union[*]} " == *" $t "* ]] || union+=("$t"); done
done
[ "$mode" = all ] && targets=("${union[@]}")
qemu_version=$(dpkg-deb -f "${qemu_deb[${hosts[0]}]}" Version)
bb_version=$(dpkg-deb -f "${bb_deb[${hosts[0]}]}" Version)
cfg=$work/qus.yml
{
  echo "# Written by bench/matrix.sh for exactly the packages in $debs."
  echo "repo: $repo_path"
  echo "default: $source_name"
  all=${hosts[*]}; echo "hosts: [${all// /, }]"
  echo "busybox:"
  echo "  package: busybox-static"
  echo "  suite: trixie"
  echo "  version: \"$bb_version\""
  echo "  files:"
  for h in "${hosts[@]}"; do echo "    $(pin "$h" "${bb_deb[$h]}")"; done
  echo "sources:"
  echo "  - name: $source_name"
  echo "    distro: debian"
  echo "    suite: bookworm"
  echo "    package: qemu-user-static"
  echo "    version: \"$qemu_version\""
  all=${targets[*]}; echo "    targets: [${all// /, }]"
  echo "    files:"
  for h in "${hosts[@]}"; do
    extra=''
    all=${host_targets[$h]}
    [ "$all" != "${targets[*]}" ] && extra=${all// /, }
    echo "      $(pin "$h" "${qemu_deb[$h]}" "$extra")"
  done
} >"$cfg"
cp "$cfg" "$outdir/qus-bench.yml"

# --- the plan: the tags every side makes -------------------------------------------------
start_registry base
base_port=$REG_PORT
start_registry qus
qus_port=$REG_PORT
start_registry df
df_port=$REG_PORT
base_repo=127.0.0.1:$base_port/$repo_path
qus_repo=127.0.0.1:$qus_port/$repo_path
df_repo=127.0.0.1:$df_port/$repo_path
host_list=$(IFS=,; echo "${hosts[*]}")
target_list=$(IFS=,; echo "${targets[*]}")
matrix=(--hosts "$host_list" --targets "$target_list" --sources "$source_name")
"$qus" --config "$cfg" plan --repo "$repo_path" "${matrix[@]}" --json >"$work/plan.json"
n_images=$(jq '.images | length' "$work/plan.json")
n_lists=$(jq '.manifests | length' "$work/plan.json")
n_emulators=$(jq '[.images[] | select(.kind == "pkg") | .targets | length] | add' "$work/plan.json")
for r in "$base_repo" "$qus_repo" "$df_repo"; do
  jq -r '.images[].tag' "$work/plan.json" | sed "s#^#$r:#" >>"$made_refs"
done
while read -r tag; do
  for r in "$qus_repo:$tag" "$df_repo:$tag"; do
    docker image inspect "$r" >/dev/null 2>&1 && docker rmi "$r" >/dev/null
  done
done < <(jq -r '.images[].tag' "$work/plan.json")

load_before=$(uptime | sed 's/.*load average: //')
sampler >"$work/cpu.samples" &
sampler_pid=$!
say "matrix: ${#hosts[@]} hosts (${hosts[*]}), targets ${targets[*]}; $n_images images, $n_lists lists, $n_emulators emulators in the pkg images; load $load_before"

# --- 1. the dbhi/qus way ---------------------------------------------------------------
# Client-side CPU of a phase, from bash's `times` (children: dpkg, tar, the docker CLI).
# (`times` must run in this shell, not in a $(…) subshell, to see the children's times.)
child_cpu() {
  times >"$work/times.txt"
  CPU_NOW=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times.txt")
}
blog=$work/baseline.log
base_dir=$work/base
phase_start() { PH_T0=$(now); child_cpu; PH_C0=$CPU_NOW; }
declare -A B_WALL B_CLIENT B_T0 B_T1
phase_end() {
  local t1; t1=$(now); child_cpu
  B_WALL[$1]=$(elapsed "$PH_T0" "$t1"); B_CLIENT[$1]=$(calc "$CPU_NOW - $PH_C0" 2)
  B_T0[$1]=$PH_T0; B_T1[$1]=$t1
}

[ "$prune" = 1 ] && docker builder prune -f >/dev/null
say "baseline: extract"
b_start=$(now)
phase_start
for h in "${hosts[@]}"; do
  d=$base_dir/$h
  mkdir -p "$d/bin-static" "$d/busybox-rootfs/bin"
  members=()
  for t in ${host_targets[$h]}; do members+=("./usr/bin/qemu-$t-static"); done
  dpkg --fsys-tarfile "${qemu_deb[$h]}" | tar -x -C "$d/bin-static" --strip-components=3 "${members[@]}"
  dpkg --fsys-tarfile "${bb_deb[$h]}" | tar -x -C "$d/busybox-rootfs" --wildcards '*bin/busybox'
  bb=$(find "$d/busybox-rootfs" -name busybox -type f)
  [ "$bb" = "$d/busybox-rootfs/bin/busybox" ] || { mv "$bb" "$d/busybox-rootfs/bin/busybox"; rm -rf "$d/busybox-rootfs/usr"; }
  ln -s busybox "$d/busybox-rootfs/bin/sh"
  # Stand-ins for dbhi's register.sh and the qemu-binfmt-conf.sh it ADDs (never run here).
  cat >"$d/register.sh" <<'EOF'
#!/bin/sh
# stand-in for dbhi/qus register.sh: wraps qemu-binfmt-conf.sh
QEMU_BIN_DIR=${QEMU_BIN_DIR:-/usr/bin}
cd "$(dirname "$0")" && exec sh ./qemu-binfmt-conf.sh --qemu-path="$QEMU_BIN_DIR" "$@"
EOF
  {
    echo '#!/bin/sh'
    echo '# stand-in for QEMU scripts/qemu-binfmt-conf.sh'
    for t in $known; do echo "${t}_magic='...'; ${t}_mask='...'; ${t}_family=$t"; done
  } >"$d/qemu-binfmt-conf.sh"
  chmod +x "$d/register.sh" "$d/qemu-binfmt-conf.sh"
  mkdir -p "$d/empty"
done
phase_end extract
raw_emulator_bytes=$(find "$base_dir" -path '*/bin-static/*' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')

[ "$prune" = 1 ] && docker builder prune -f >/dev/null
say "baseline: build"
bbuild() { # REF PLATFORM CONTEXT, Dockerfile on stdin
  DOCKER_BUILDKIT=0 docker build --platform "$2" --no-cache -t "$1" -f- "$3" >>"$blog" 2>&1 ||
    die "baseline build of $1 failed; see the log"
  echo "$1" >>"$made_refs"
}
phase_start
for h in "${hosts[@]}"; do
  d=$base_dir/$h
  p=$(jq -r --arg h "$h" '[.images[] | select(.host == $h)][0].platform | "\(.os)/\(.architecture)\(if .variant then "/" + .variant else "" end)"' "$work/plan.json")
  img=$base_repo:$h-$source_name
  bbuild "$img-pkg" "$p" "$d/bin-static" <<'EOF'
FROM scratch
COPY ./* /usr/bin/
EOF
  bbuild "$img-register" "$p" "$d" <<'EOF'
FROM scratch
COPY busybox-rootfs/ /
ENV QEMU_BIN_DIR=/qus/bin
COPY ./register.sh /qus/register
COPY ./qemu-binfmt-conf.sh /qus/qemu-binfmt-conf.sh
ENTRYPOINT ["/qus/register"]
EOF
  bbuild "$img" "$p" "$d" <<EOF
FROM $img-register
COPY --from=$img-pkg /usr/bin/qemu-* /qus/bin/
VOLUME /qus
EOF
  for t in ${host_targets[$h]}; do
    bbuild "$img-$t" "$p" "$d/empty" <<EOF
FROM $img-register
COPY --from=$img-pkg /usr/bin/qemu-$t-static /qus/bin/
VOLUME /qus
EOF
  done
done
phase_end build

say "baseline: push"
phase_start
for tag in $(jq -r '.images[].tag' "$work/plan.json"); do
  docker push "$base_repo:$tag" >>"$blog" 2>&1 || die "docker push $base_repo:$tag failed"
done
phase_end push

say "baseline: manifests"
phase_start
n=$(jq '.manifests | length' "$work/plan.json")
for i in $(seq 0 $((n - 1))); do
  list=$(jq -r --argjson i "$i" '.manifests[$i].tag' "$work/plan.json")
  mapfile -t entries < <(jq -r --argjson i "$i" '.manifests[$i].entries[].tag' "$work/plan.json" | sed "s#^#$base_repo:#")
  docker manifest create --insecure "$base_repo:$list" "${entries[@]}" >>"$blog" 2>&1 ||
    die "docker manifest create $list failed"
  docker manifest push --insecure --purge "$base_repo:$list" >>"$blog" 2>&1 ||
    die "docker manifest push $list failed"
done
phase_end manifests
B_TOTAL=$(elapsed "$b_start")
read -r base_bytes base_blobs <<<"$(reg_stats base)"
# Classic-builder steps, and those that create a container ("Running in"): ENV, LABEL,
# ENTRYPOINT, VOLUME… (COPY commits a layer without one).
base_steps=$(grep -c '^Step [0-9]' "$blog" || true)
base_containers=$(grep -c -- '---> Running in' "$blog" || true)

# --- 2. qus release, 3. qus release --builder dockerfile ----------------------------------
ts_lines() { local line; while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }
# run_qus NAME REGISTRY CACHE daemon|no-daemon [RELEASE OPTIONS…]: `qus release --json`
# into that registry with QUS_CACHE=CACHE, under /usr/bin/time -v (NAME.time); stderr lines
# timestamped in NAME.log, the JSON in NAME.json; sets Q_T0 Q_T1 Q_LOG0 (the registry log's
# size before). no-daemon: DOCKER_HOST names a socket nobody listens on (the run needs no
# daemon).
run_qus() {
  local name=$1 reg=$2 qcache=$3 rc port
  local -a daemon_env=()
  [ "$4" = no-daemon ] && daemon_env=("DOCKER_HOST=unix://$work/no-daemon.sock")
  shift 4
  port=$(sed -n 's/^  addr: 127.0.0.1://p' "$work/$reg/config.yml")
  Q_LOG0=$(log_size "$reg")
  Q_T0=$(now)
  set +e
  # sh writes its pid (that exec makes qus's) for the CPU sampler.
  # shellcheck disable=SC2016
  { /usr/bin/time -v -o "$work/$name.time" sh -c 'echo "$$" >"$0"; exec "$@"' "$work/client.pid" \
      env QUS_CACHE="$qcache" "${daemon_env[@]}" "$qus" --config "$cfg" release --repo "127.0.0.1:$port/$repo_path" \
      --debs "$debs" "${matrix[@]}" "$@" --json 2>&1 >"$work/$name.json"; } | ts_lines >"$work/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  Q_T1=$(now)
  [ "$rc" = 0 ] || { tail -n 20 "$work/$name.log" >&2; die "qus release ($name) failed"; }
  cp "$work/$name.log" "$work/$name.json" "$outdir/" 2>/dev/null || true
}
# first_time NAME REGEX -> timestamp of the first matching progress line (or empty)
first_time() { awk -v re="$2" '$0 ~ re { print $1; exit }' "$work/$1.log"; }
rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$1.time"; }
cpu_s() { awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$work/$1.time"; }
# Wall time, and start/end, of each phase of every side, by "SIDE.PHASE"; totals by side.
declare -A WALL TS0 TS1 TOTAL
phases=(extract build push manifests)
# run_phases SIDE NAME BUILD_END_REGEX: the phases of the run just made, from its progress
# lines: extract to "extracted N emulators", build to BUILD_END_REGEX, push to the first
# list line, manifests to the end.
run_phases() {
  local side=$1 name=$2 e b l p
  e=$(first_time "$name" 'qus: extracted ')
  b=$(first_time "$name" "$3")
  l=$(first_time "$name" ' (written|unchanged) [(][0-9]+ platforms[)]$')
  if [ -z "$e" ] || [ -z "$b" ] || [ -z "$l" ]; then
    die "cannot find the phases in qus's progress lines ($work/$name.log)"
  fi
  TS0[$side.extract]=$Q_T0 TS1[$side.extract]=$e
  TS0[$side.build]=$e TS1[$side.build]=$b
  TS0[$side.push]=$b TS1[$side.push]=$l
  TS0[$side.manifests]=$l TS1[$side.manifests]=$Q_T1
  for p in "${phases[@]}"; do WALL[$side.$p]=$(elapsed "${TS0[$side.$p]}" "${TS1[$side.$p]}"); done
  TOTAL[$side]=$(elapsed "$Q_T0" "$Q_T1")
}
for p in "${phases[@]}"; do
  WALL[base.$p]=${B_WALL[$p]} TS0[base.$p]=${B_T0[$p]} TS1[base.$p]=${B_T1[$p]}
done
TOTAL[base]=$B_TOTAL

say "qus release (cold: empty QUS_CACHE, new registry)"
run_qus qus-cold qus "$work/qus-cache" no-daemon
run_phases qus qus-cold 'qus: [0-9]+ layers ready'
q_rss_kb=$(rss_kb qus-cold)
q_cpu=$(cpu_s qus-cold)
read -r qus_bytes qus_blobs <<<"$(reg_stats qus)"
read -r cold_puts cold_posts cold_mputs cold_reqs <<<"$(uploads qus "$Q_LOG0")"
read -r base_puts base_posts base_mputs base_reqs <<<"$(uploads base 0)"
cold_up_bytes=$(jq '.uploads.bytes' "$work/qus-cold.json")
cold_layers=$(sed -n 's/.* qus: \([0-9][0-9]*\) layers ready$/\1/p' "$work/qus-cold.log" | head -n1)

say "qus release (warm: nothing changed, same QUS_CACHE)"
run_qus qus-warm qus "$work/qus-cache" no-daemon
W_TOTAL=$(elapsed "$Q_T0" "$Q_T1")
w_rss_kb=$(rss_kb qus-warm)
read -r warm_puts warm_posts warm_mputs warm_reqs <<<"$(uploads qus "$Q_LOG0")"
tail -c +"$((Q_LOG0 + 1))" "$work/qus/log" | grep -E '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' >"$outdir/qus-warm-access.log" || true
# status_count NAME JQ_PATH STATUS -> how many entries of that array have that status
status_count() { jq --arg s "$3" "[$2[] | select(.status == \$s)] | length" "$work/$1.json"; }
warm_pushed=$(status_count qus-warm .pushed pushed)
warm_present=$(status_count qus-warm .pushed present)
warm_built=$(status_count qus-warm .images built)
warm_lists_written=$(status_count qus-warm .lists written)
warm_up_blobs=$(jq '.uploads.blobs' "$work/qus-warm.json")

say "qus release (fresh: another empty QUS_CACHE, as a new CI runner)"
run_qus qus-fresh qus "$work/qus-cache-fresh" no-daemon
F_TOTAL=$(elapsed "$Q_T0" "$Q_T1")
f_rss_kb=$(rss_kb qus-fresh)
read -r fresh_puts _ fresh_mputs fresh_reqs <<<"$(uploads qus "$Q_LOG0")"
fresh_built=$(status_count qus-fresh .images built)
fresh_unchanged=$(status_count qus-fresh .images unchanged)
fresh_lists_written=$(status_count qus-fresh .lists written)
digests() { jq -S '[.pushed[] | {reference, digest}] + [.lists[] | {reference, digest}]' "$work/$1.json"; }
if [ "$(digests qus-cold)" = "$(digests qus-fresh)" ]; then fresh_same=true; else fresh_same=false; fi

[ "$prune" = 1 ] && docker builder prune -f >/dev/null
say "qus release --builder dockerfile --no-cache (cold: empty QUS_CACHE, new registry)"
run_qus df-cold df "$work/df-cache" daemon --builder dockerfile --no-cache --verbose
run_phases df df-cold 'qus: [[][0-9]+/[0-9]+[]] (pushing |.* is already in the registry$)'
df_rss_kb=$(rss_kb df-cold)
df_cpu=$(cpu_s df-cold)
read -r df_bytes df_blobs <<<"$(reg_stats df)"
read -r df_puts df_posts df_mputs df_reqs <<<"$(uploads df "$Q_LOG0")"
df_steps=$(grep -c 'qus:   Step [0-9]' "$work/df-cold.log" || true)
df_containers=$(grep -c -- '---> Running in' "$work/df-cold.log" || true)

# Every registry holds what was asked: every tag and list (read back through the API).
accept='application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'
for port in "$base_port" "$qus_port" "$df_port"; do
  for tag in $(jq -r '.images[].tag, .manifests[].tag' "$work/plan.json"); do
    curl -fsS -o /dev/null -I -H "Accept: $accept" \
      "http://127.0.0.1:$port/v2/$repo_path/manifests/$tag" || die "127.0.0.1:$port lacks $tag"
  done
done

# Where the bytes go: each registry's layer bytes, attributed to the first image kind (in
# plan order: register, pkg, full, single) that stores them.
bytes_by_kind() { # PORT -> JSON {register: B, pkg: B, full: B, single: B}
  local port=$1 tag kind
  jq -r '.images[] | "\(.tag) \(.kind)"' "$work/plan.json" | while read -r tag kind; do
    curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
      "http://127.0.0.1:$port/v2/$repo_path/manifests/$tag" |
      jq -c --arg k "$kind" '[.config] + .layers | .[] | {k: $k, d: .digest, s: .size}'
  done | jq -s 'reduce .[] as $x ({seen: {}, out: {register: 0, pkg: 0, full: 0, single: 0}};
      if .seen[$x.d] then . else .seen[$x.d] = true | .out[$x.k] += $x.s end) | .out'
}
base_kinds=$(bytes_by_kind "$base_port")
qus_kinds=$(bytes_by_kind "$qus_port")
df_kinds=$(bytes_by_kind "$df_port")

# --- docker run: qus's all-target image against a no-op container ------------------------
noop=$base_repo:noop-true
native_platform=$(jq -r --arg h "$native" '[.images[] | select(.host == $h)][0].platform | "\(.os)/\(.architecture)\(if .variant then "/" + .variant else "" end)"' "$work/plan.json")
mkdir -p "$work/noop"
cp "$base_dir/$native/busybox-rootfs/bin/busybox" "$work/noop/busybox"
DOCKER_BUILDKIT=0 docker build -q --no-cache --platform "$native_platform" -t "$noop" -f- "$work/noop" >>"$blog" 2>&1 <<'EOF'
FROM scratch
COPY busybox /bin/busybox
ENTRYPOINT ["/bin/busybox", "true"]
EOF
echo "$noop" >>"$made_refs"
full_img=$qus_repo:$native-$source_name
reg_img=$qus_repo:$native-$source_name-register
# qus release never touched the daemon: pull the two images from qus's registry (loopback
# registries are plain HTTP to this daemon); they are in made_refs, removed at the end.
t0=$(now)
for r in "$reg_img" "$full_img"; do
  docker pull -q "$r" >>"$blog" 2>&1 || die "docker pull $r failed"
done
pull_s=$(elapsed "$t0")
run_full=(docker run --rm --cap-add SYS_ADMIN "$full_img" --dry-run)
run_reg=(docker run --rm --cap-add SYS_ADMIN "$reg_img" --dry-run)
run_noop=(docker run --rm --cap-add SYS_ADMIN "$noop")
binfmt_run_before=$(binfmt_state)
"${run_full[@]}" >"$work/dry-run.out" 2>&1 || { cat "$work/dry-run.out" >&2; die "docker run of $full_img --dry-run failed"; }
dry_lines=$(grep -c '^:' "$work/dry-run.out" || true)
full_layers=$(docker image inspect "$full_img" --format '{{len .RootFS.Layers}}')
"${run_reg[@]}" >/dev/null 2>&1 || die "docker run of $reg_img --dry-run failed"
"${run_noop[@]}" || die "docker run of $noop failed"
say "docker run: $runs runs each of noop, register, full ($full_layers layers, $dry_lines binfmt lines)"
# Passes in rotating orders (hyperfine), or runs interleaved (the loop), so that a change in
# the machine's load hits all three alike; the ratio is of medians.
cmds=("${run_noop[*]}" "${run_reg[*]}" "${run_full[*]}")
if need hyperfine; then
  # Four short passes, each in another order: a burst of other work on the machine then
  # falls on all three commands alike, and the medians ignore it.
  per=$(((runs + 3) / 4)); [ "$per" -ge 2 ] || per=2
  orders=("0 1 2" "2 1 0" "1 2 0" "0 2 1")
  for k in 0 1 2 3; do
    read -r -a o <<<"${orders[$k]}"
    hyperfine -N --style none --warmup 1 --runs "$per" --export-json "$work/run-$k.json" \
      "${cmds[${o[0]}]}" "${cmds[${o[1]}]}" "${cmds[${o[2]}]}" >/dev/null 2>&1
  done
  jq -s --arg a "${cmds[0]}" --arg b "${cmds[1]}" --arg c "${cmds[2]}" \
    '[.[].results[]] as $r | {noop: [$r[] | select(.command == $a) | .times[]],
      register: [$r[] | select(.command == $b) | .times[]], full: [$r[] | select(.command == $c) | .times[]]}' \
    "$work"/run-[0-3].json >"$work/run-times.json"
  run_tool=hyperfine
else
  for n in noop register full; do : >"$work/times-$n"; done
  for _ in 1 2 3; do "${run_noop[@]}" >/dev/null 2>&1; done
  for _ in $(seq "$runs"); do
    i=0
    for n in noop register full; do
      read -r -a c <<<"${cmds[$i]}"
      t0=$(now); "${c[@]}" >/dev/null 2>&1; elapsed "$t0" >>"$work/times-$n"; echo >>"$work/times-$n"
      i=$((i + 1))
    done
  done
  jq -n --rawfile a "$work/times-noop" --rawfile b "$work/times-register" --rawfile c "$work/times-full" \
    'def nums: split("\n") | map(select(length > 0) | tonumber);
     {noop: ($a | nums), register: ($b | nums), full: ($c | nums)}' >"$work/run-times.json"
  run_tool=loop
fi
[ "$(binfmt_state)" = "$binfmt_run_before" ] || say "WARNING: binfmt_misc changed while the docker run timings ran"
stat_of() { # NAME median|mean|stddev
  jq --arg n "$1" --arg s "$2" '.[$n] as $t | ($t | length) as $k | ($t | add / $k) as $m |
    if $s == "median" then ($t | sort | if $k % 2 == 1 then .[($k - 1) / 2] else (.[$k / 2 - 1] + .[$k / 2]) / 2 end)
    elif $s == "mean" then $m else (($t | map((. - $m) * (. - $m)) | add) / $k | sqrt) end' "$work/run-times.json"
}
run_noop_s=$(stat_of noop median) run_reg_s=$(stat_of register median) run_full_s=$(stat_of full median)
run_noop_sd=$(stat_of noop stddev) run_reg_sd=$(stat_of register stddev) run_full_sd=$(stat_of full stddev)

# Who compresses, and how well: the largest layer qus pushed (qus's own gzip), the same
# layer tar as the daemon compressed it for the --builder dockerfile push, and GNU gzip
# -1/-6/-9 and zstd -3/-19 of that tar, with their speed on one core.
largest_blob() { find "$work/$1/storage/docker/registry/v2/blobs" -name data -type f -printf '%s %p\n' | sort -n | tail -n1 | cut -d' ' -f2; }
big=$(largest_blob qus)
gunzip -c <"$big" >"$work/layer.tar"
layer_raw=$(stat -c %s "$work/layer.tar")
layer_sum=$(sha256sum <"$work/layer.tar" | cut -d' ' -f1)
df_big=$(largest_blob df)
if [ "$(gunzip -c <"$df_big" | sha256sum | cut -d' ' -f1)" = "$layer_sum" ]; then same_tar=true; else same_tar=false; fi
comp_json=$(
  {
    printf '{"layer_tar_bytes": %s, "qus_gzip": %s, "daemon_gzip": %s, "same_tar": %s' \
      "$layer_raw" "$(stat -c %s "$big")" "$(stat -c %s "$df_big")" "$same_tar"
    for c in "gzip -1" "gzip -6" "gzip -9" "zstd -3" "zstd -19"; do
      read -r -a cc <<<"$c"
      need "${cc[0]}" || { printf ', "%s": null' "${c//[ -]/}"; continue; }
      t0=$(now); n=$("${cc[@]}" -c <"$work/layer.tar" | wc -c); t=$(elapsed "$t0")
      printf ', "%s": {"bytes": %s, "mb_per_s": %s}' "${c//[ -]/}" "$n" "$(calc "$layer_raw / 1e6 / $t" 1)"
    done
    echo '}'
  }
)
rm -f "$work/layer.tar"

kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
sampler_pid=''
load_after=$(uptime | sed 's/.*load average: //')

# --- the table ---------------------------------------------------------------------------
# CPU seconds in each phase of each side: "daemon registry client machine"; the dbhi side's
# client CPU is bash's `times` (dpkg, tar, the docker CLI), qus's is the sampled process.
declare -A CPU
for s in base qus df; do
  for p in "${phases[@]}"; do
    read -r x y z w <<<"$(cpu_between "${TS0[$s.$p]}" "${TS1[$s.$p]}")"
    [ "$s" = base ] && z=${B_CLIENT[$p]}
    CPU[$s.$p]="$x $w $z $y"
  done
done
cpu_cell() { read -r a b c d <<<"${CPU[$1]}"; printf '%s / %s / %s / %s' "$a" "$b" "$c" "$d"; }
r_total=$(ratio "${TOTAL[base]}" "${TOTAL[qus]}")
r_df=$(ratio "${TOTAL[df]}" "${TOTAL[qus]}")
r_bytes=$(ratio "$qus_bytes" "$base_bytes")
r_run=$(ratio "$run_full_s" "$run_noop_s")
q_rss_mb=$(calc "$q_rss_kb / 1024" 1)
g_speed=$(verdict "$r_total >= 8")
g_df=$(verdict "$r_df >= 2")
g_bytes=$(verdict "$r_bytes <= 0.4")
g_rss=$(verdict "$q_rss_mb < 400")
g_warm=$(verdict "$W_TOTAL <= 1 && $warm_puts == 0 && $warm_up_blobs == 0")
g_fresh=$(verdict "$fresh_puts == 0 && $fresh_lists_written == 0 && $fresh_mputs == 0 && \"$fresh_same\" == \"true\"")
g_run=$(verdict "$r_run <= 1.1")
base_client=$(calc "${B_CLIENT[extract]} + ${B_CLIENT[build]} + ${B_CLIENT[push]} + ${B_CLIENT[manifests]}" 2)
raw_mb_s=$(calc "$raw_emulator_bytes / 1e6 / ${WALL[qus.build]}" 1)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
txt=$outdir/matrix-$mode-$stamp.txt
{
  echo "qus bench ($mode, $stamp): ${#hosts[@]} hosts (${hosts[*]}) x targets (${targets[*]}), source $source_name"
  echo "  qus $($qus --version | awk '{print $NF}') tree at $qus_rev (binary sha256 $qus_sum$qus_from); $(docker version --format 'docker {{.Server.Version}}' 2>/dev/null), $(docker info --format '{{.Driver}}' 2>/dev/null)"
  echo "  qemu-user-static $qemu_version, busybox-static $bb_version; $n_images images, $n_lists lists,"
  echo "  $n_emulators emulators in the pkg images ($(mb "$raw_emulator_bytes") MB uncompressed); $(nproc) CPUs; load before: $load_before; after: $load_after"
  if awk -v a="${load_before%%,*}" -v b="${load_after%%,*}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
    echo "  NOTE: the 1-minute load exceeded the CPU count: other work shared this machine; re-run for clean numbers."
  fi
  echo "  columns: the dbhi/qus way; qus release (qus writes and uploads the images, no daemon);"
  echo "  qus release --builder dockerfile --no-cache (classic builder, daemon push); ratios: dbhi/qus, dockerfile/qus"
  echo
  printf '%-22s %12s %12s %12s %9s %9s\n' "phase (wall s)" "dbhi/qus way" "qus release" "dockerfile" "dbhi/qus" "df/qus"
  for p in "${phases[@]}"; do
    printf '%-22s %12s %12s %12s %8sx %8sx\n' "$p" "${WALL[base.$p]}" "${WALL[qus.$p]}" "${WALL[df.$p]}" \
      "$(ratio "${WALL[base.$p]}" "${WALL[qus.$p]}")" "$(ratio "${WALL[df.$p]}" "${WALL[qus.$p]}")"
  done
  printf '%-22s %12s %12s %12s %8sx %8sx   goals >= 8x: %s, >= 2x: %s\n' "total" "${TOTAL[base]}" "${TOTAL[qus]}" "${TOTAL[df]}" \
    "$r_total" "$r_df" "$g_speed" "$g_df"
  printf '%-22s %12s %12s %12s\n' "client CPU s" "$base_client" "$q_cpu" "$df_cpu"
  printf '%-22s %12s %12s %12s %8sx %9s   qus/dbhi; goal <= 0.4x: %s\n' "registry MB (du -sb)" "$(mb "$base_bytes")" "$(mb "$qus_bytes")" "$(mb "$df_bytes")" "$r_bytes" "" "$g_bytes"
  printf '%-22s %12s %12s %12s\n' "registry blobs" "$base_blobs" "$qus_blobs" "$df_blobs"
  printf '%-22s %12s %12s %12s   (qus: %s MB sent, by its JSON)\n' "blob uploads (PUT)" "$base_puts" "$cold_puts" "$df_puts" "$(mb "$cold_up_bytes")"
  for k in register pkg full single; do
    printf '%-22s %12s %12s %12s\n' "  MB new in $k" "$(mb "$(jq ".$k" <<<"$base_kinds")")" "$(mb "$(jq ".$k" <<<"$qus_kinds")")" "$(mb "$(jq ".$k" <<<"$df_kinds")")"
  done
  printf '%-22s %12s %12s %12s   (containers the classic builder created: %s | - | %s)\n' "builder steps" "$base_steps" "-" "$df_steps" "$base_containers" "$df_containers"
  printf '%-22s %12s %12s %12s   goal < 400 MB: %s\n' "qus peak RSS MB" "" "$q_rss_mb" "$(calc "$df_rss_kb / 1024" 1)" "$g_rss"
  printf '%-22s %12s %12s %12s   %s uploads, %s built, %s pushed, %s present, %s lists written, %s requests; goal <= 1 s, 0 uploads: %s\n' \
    "warm re-run s" "" "$W_TOTAL" "" "$warm_puts" "$warm_built" "$warm_pushed" "$warm_present" "$warm_lists_written" "$warm_reqs" "$g_warm"
  printf '%-22s %12s %12s %12s   empty QUS_CACHE: %s built, %s unchanged, %s uploads, %s manifests and %s lists written, same digests: %s; %s\n' \
    "fresh-cache re-run s" "" "$F_TOTAL" "" "$fresh_built" "$fresh_unchanged" "$fresh_puts" "$fresh_mputs" "$fresh_lists_written" "$fresh_same" "$g_fresh"
  printf '%-22s %12s %12s %12s %8sx %9s   goal <= 1.1x: %s\n' "docker run s (median)" "$(calc "$run_noop_s")" "$(calc "$run_full_s")" "" "$r_run" "" "$g_run"
  printf '%-22s %12s %12s %12s   noop: busybox true FROM scratch; qus: %s --dry-run (%s layers, %s lines), pulled in %s s\n' \
    "  +- stddev" "$(calc "$run_noop_sd")" "$(calc "$run_full_sd")" "" "$native-$source_name" "$full_layers" "$dry_lines" "$pull_s"
  printf '%-22s %12s %12s %12s %8sx %9s   register-only image (1 layer) --dry-run; %s, %s runs each\n' \
    "  register image" "" "$(calc "$run_reg_s")" "" "$(ratio "$run_reg_s" "$run_noop_s")" "" "$run_tool" "$runs"
  printf '%-22s %s\n' "gzip" "$(jq -r 'def m: . / 1e6 * 100 | round / 100; def g(k): if .[k] then "\(.[k].bytes | m) (\(.[k].mb_per_s) MB/s)" else "-" end;
    "largest layer \(.layer_tar_bytes / 1e6 * 10 | round / 10) MB tar -> qus \(.qus_gzip | m), daemon \(.daemon_gzip | m) MB (same tar: \(.same_tar)); one core: gzip -1 \(g("gzip1")), -6 \(g("gzip6")), -9 \(g("gzip9")); zstd -3 \(g("zstd3")), -19 \(g("zstd19"))"' <<<"$comp_json")"
  echo
  echo "CPU s by phase: daemon (dockerd+containerd) / registry / client (dbhi: dpkg, tar, docker CLI; qus: the qus process) / whole machine"
  echo "  ($(nproc) CPUs: the machine can use at most $(nproc) x wall; machine CPU above the others' sum is other work)"
  printf '%-22s %-26s %-26s %s\n' "" "dbhi/qus way" "qus release" "dockerfile"
  for p in "${phases[@]}"; do
    printf '%-22s %-26s %-26s %s\n' "$p" "$(cpu_cell "base.$p")" "$(cpu_cell "qus.$p")" "$(cpu_cell "df.$p")"
  done
  echo "qus build phase: $(mb "$raw_emulator_bytes") MB of emulators (tar + sha256 + gzip, one layer per CPU) in ${WALL[qus.build]} s = $raw_mb_s MB/s; $cold_layers distinct layers"
} | tee "$txt"

phase_json() { # SIDE -> {PHASE: {wall_s, daemon_cpu_s, registry_cpu_s, client_cpu_s, machine_cpu_s}}
  local p a b c d
  for p in "${phases[@]}"; do
    read -r a b c d <<<"${CPU[$1.$p]}"
    printf '{"%s":{"wall_s":%s,"daemon_cpu_s":%s,"registry_cpu_s":%s,"client_cpu_s":%s,"machine_cpu_s":%s}}\n' \
      "$p" "${WALL[$1.$p]}" "$a" "$b" "$c" "$d"
  done | jq -s add
}
jq -n \
  --arg mode "$mode" --arg stamp "$stamp" --arg load_before "$load_before" --arg load_after "$load_after" \
  --arg qemu "$qemu_version" --arg busybox "$bb_version" --argjson cpus "$(nproc)" \
  --arg hosts "${hosts[*]}" --arg targets "${targets[*]}" \
  --argjson images "$n_images" --argjson lists "$n_lists" --argjson emulators "$n_emulators" \
  --argjson raw "$raw_emulator_bytes" \
  --argjson bw "$(phase_json base)" --argjson qw "$(phase_json qus)" --argjson dw "$(phase_json df)" \
  --argjson btot "${TOTAL[base]}" --argjson qtot "${TOTAL[qus]}" --argjson dtot "${TOTAL[df]}" \
  --argjson bcpu "$base_client" --argjson qcpu "$q_cpu" --argjson dcpu "$df_cpu" \
  --argjson bbytes "$base_bytes" --argjson qbytes "$qus_bytes" --argjson dbytes "$df_bytes" \
  --argjson bblobs "$base_blobs" --argjson qblobs "$qus_blobs" --argjson dblobs "$df_blobs" \
  --argjson breq "[$base_puts, $base_posts, $base_mputs, $base_reqs]" \
  --argjson qreq "[$cold_puts, $cold_posts, $cold_mputs, $cold_reqs]" \
  --argjson dreq "[$df_puts, $df_posts, $df_mputs, $df_reqs]" \
  --argjson qupb "$cold_up_bytes" --argjson qlayers "${cold_layers:-null}" \
  --argjson bsteps "$base_steps" --argjson bcont "$base_containers" \
  --argjson dsteps "$df_steps" --argjson dcont "$df_containers" \
  --argjson bk "$base_kinds" --argjson qk "$qus_kinds" --argjson dk "$df_kinds" \
  --argjson rss "$q_rss_kb" --argjson drss "$df_rss_kb" \
  --argjson wrss "$w_rss_kb" --argjson wtot "$W_TOTAL" --argjson wputs "$warm_puts" \
  --argjson wposts "$warm_posts" --argjson wmputs "$warm_mputs" --argjson wreqs "$warm_reqs" --argjson wbuilt "$warm_built" \
  --argjson wpushed "$warm_pushed" --argjson wpresent "$warm_present" --argjson wlists "$warm_lists_written" \
  --argjson wub "$warm_up_blobs" \
  --argjson frss "$f_rss_kb" --argjson ftot "$F_TOTAL" --argjson fputs "$fresh_puts" --argjson fmputs "$fresh_mputs" \
  --argjson freqs "$fresh_reqs" --argjson fbuilt "$fresh_built" --argjson funch "$fresh_unchanged" \
  --argjson flists "$fresh_lists_written" --argjson fsame "$fresh_same" \
  --argjson rn "$run_noop_s" --argjson rr "$run_reg_s" --argjson rf "$run_full_s" \
  --argjson rnsd "$run_noop_sd" --argjson rrsd "$run_reg_sd" --argjson rfsd "$run_full_sd" \
  --arg tool "$run_tool" --argjson runs "$runs" --argjson dry "$dry_lines" --argjson fl "$full_layers" \
  --argjson pull "$pull_s" --argjson comp "$comp_json" \
  --arg gs "$g_speed" --arg gd "$g_df" --arg gb "$g_bytes" --arg gm "$g_rss" --arg gw "$g_warm" \
  --arg gf "$g_fresh" --arg gr "$g_run" \
  --arg rev "$qus_rev" --arg sum "$qus_sum" \
  '{mode: $mode, time: $stamp, qus_revision: $rev, qus_binary_sha256_12: $sum, cpus: $cpus, load: {before: $load_before, after: $load_after},
    matrix: {hosts: ($hosts | split(" ")), targets: ($targets | split(" ")), qemu_version: $qemu,
             busybox_version: $busybox, images: $images, lists: $lists,
             emulators_in_pkg_images: $emulators, raw_emulator_bytes: $raw},
    baseline: {phases: $bw, total_s: $btot, client_cpu_s: $bcpu, registry_bytes: $bbytes, registry_blobs: $bblobs,
               builder_steps: $bsteps, builder_containers: $bcont, blob_uploads: $breq[0], blob_upload_starts: $breq[1],
               manifest_puts: $breq[2], requests: $breq[3], new_bytes_by_kind: $bk},
    qus: {phases: $qw, total_s: $qtot, cpu_s: $qcpu, peak_rss_kb: $rss, registry_bytes: $qbytes, registry_blobs: $qblobs,
          blob_uploads: $qreq[0], blob_upload_starts: $qreq[1], manifest_puts: $qreq[2], requests: $qreq[3],
          uploaded_bytes: $qupb, distinct_layers: $qlayers, new_bytes_by_kind: $qk},
    dockerfile: {phases: $dw, total_s: $dtot, cpu_s: $dcpu, peak_rss_kb: $drss, registry_bytes: $dbytes, registry_blobs: $dblobs,
                 builder_steps: $dsteps, builder_containers: $dcont, blob_uploads: $dreq[0], blob_upload_starts: $dreq[1],
                 manifest_puts: $dreq[2], requests: $dreq[3], new_bytes_by_kind: $dk},
    warm: {total_s: $wtot, peak_rss_kb: $wrss, blob_put: $wputs, blob_post: $wposts, manifest_puts: $wmputs, requests: $wreqs,
           uploaded_blobs: $wub, built: $wbuilt, pushed: $wpushed, present: $wpresent, lists_written: $wlists},
    fresh_cache: {total_s: $ftot, peak_rss_kb: $frss, blob_put: $fputs, manifest_puts: $fmputs, requests: $freqs,
                  built: $fbuilt, unchanged: $funch, lists_written: $flists, same_digests: $fsame},
    docker_run: {tool: $tool, runs: $runs, statistic: "median", noop_s: $rn, noop_stddev: $rnsd,
                 full_s: $rf, full_stddev: $rfsd, full_layers: $fl, full_dry_run_lines: $dry,
                 register_s: $rr, register_stddev: $rrsd, pull_s: $pull},
    compression_probe: $comp,
    ratios: {total_baseline_over_qus: ($btot / $qtot), total_dockerfile_over_qus: ($dtot / $qtot),
             bytes_qus_over_baseline: ($qbytes / $bbytes), docker_run_full_over_noop: ($rf / $rn)},
    goals: {cold_8x_dbhi: $gs, cold_2x_dockerfile: $gd, bytes_0_4x: $gb, peak_rss_under_400mb: $gm,
            warm_1s_no_upload: $gw, fresh_cache_no_write_same_digests: $gf, run_1_1x: $gr}}' \
  >"$outdir/matrix-$mode-$stamp.json"
cp "$outdir/matrix-$mode-$stamp.json" "$outdir/matrix-$mode-latest.json"
cp "$txt" "$outdir/matrix-$mode-latest.txt"
say "wrote $outdir/matrix-$mode-$stamp.json and .txt"
