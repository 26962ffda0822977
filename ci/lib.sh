# shellcheck shell=bash
# Sourced by the ci/ scripts, never run: the qus binary they use and the flags every step
# takes from the environment, so that a workflow step and a local run are one command.
#
# Environment (every variable is optional unless a script says otherwise):
#   QUS_BIN          a qus binary to use; unset: build one (cargo build --release --locked)
#   CARGO_TARGET_DIR where that build goes (default: ${QUS_CACHE:-~/.cache/qus}/target)
#   QUS_REPO         registry/path images are pushed to (release, publish)
#   QUS_HOSTS        hosts, comma-separated   → --hosts   (not for release-host: it takes one)
#   QUS_TARGETS      QEMU targets             → --targets
#   QUS_SOURCES      QEMU sources (d10.0,…)   → --sources
#   QUS_DEBS         folder of .deb files     → --debs (instead of a mirror)
#   QUS_MIRROR       Debian mirror base URL   → --mirror (qus also reads it by itself)
#   QUS_USERNAME + QUS_PASSWORD  registry login → --username … --password-stdin
#   QUS_INSECURE_REGISTRY        plain-HTTP registries besides loopback → --insecure-registry
#   QUS_CONFIG, QUS_CACHE        read by qus itself (matrix file, download cache)
# Empty values count as unset (a workflow passes an empty string for a missing variable).

ci_name=$(basename "$0")
ci_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ci_log() { printf '%s: %s\n' "$ci_name" "$*" >&2; }
ci_die() {
  ci_log "error: $*"
  exit 2
}

# Prints a command the way it runs (nothing secret is ever in the arguments).
ci_show() { printf '+ %s\n' "$*" >&2; }

# ci_require VAR…: each must be set and non-empty.
ci_require() {
  local v
  for v in "$@"; do
    [ -n "${!v:-}" ] || ci_die "$v is not set (see ci/README.md)"
  done
}

# Sets QUS_BIN to a qus binary: $QUS_BIN when given (the workflow's jobs download one built
# once), else one built here in release mode. On Linux with glibc the build is static
# (crt-static), because the same file is the release asset qus_<host>, which must run on
# any machine of its architecture; ci_qus_static=1 says so. cargo's output goes to stderr.
# shellcheck disable=SC2034 # read by the scripts that source this file
ci_qus_static=0
ci_qus() {
  if [ -n "${QUS_BIN:-}" ]; then
    [ -x "$QUS_BIN" ] || ci_die "QUS_BIN=$QUS_BIN is not an executable file"
    return 0
  fi
  command -v cargo >/dev/null || ci_die "cargo not found: install a Rust toolchain, or set QUS_BIN to a qus binary"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${QUS_CACHE:-$HOME/.cache/qus}/target}
  local host
  host=$(rustc -vV | sed -n 's/^host: //p')
  case $host in
    *-linux-gnu*)
      # crt-static needs an explicit --target: without one, rustc is asked to build the
      # proc-macros (compiled for the host) with it too, and refuses.
      local flags
      flags=CARGO_TARGET_$(printf '%s' "$host" | tr 'a-z.-' 'A-Z__')_RUSTFLAGS
      ci_show "$flags='-C target-feature=+crt-static' cargo build --release --locked -p qus --target $host   # CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
      (cd "$ci_root" && env "$flags=-C target-feature=+crt-static" cargo build --release --locked -p qus --target "$host") >&2
      QUS_BIN=$CARGO_TARGET_DIR/$host/release/qus
      # shellcheck disable=SC2034 # read by the scripts that source this file
      ci_qus_static=1
      ;;
    *)
      ci_show "cargo build --release --locked -p qus   # CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
      (cd "$ci_root" && cargo build --release --locked -p qus) >&2
      QUS_BIN=$CARGO_TARGET_DIR/release/qus
      ;;
  esac
}

# The static qus binaries to ship as release assets (qus_<host>), into the array ci_self as
# --qus-binary flags: the files QUS_ASSET_BINARIES names (space-separated; the release
# workflow passes the ones its native runners built), else the one ci_qus built when it is
# static, else none (saying why). Call after ci_qus.
ci_asset_binaries() {
  ci_self=()
  local f
  if [ -n "${QUS_ASSET_BINARIES:-}" ]; then
    for f in $QUS_ASSET_BINARIES; do ci_self+=(--qus-binary "$f"); done
  elif [ "$ci_qus_static" = 1 ]; then
    ci_self=(--qus-binary "$QUS_BIN")
  else
    ci_log "QUS_BIN=$QUS_BIN was given: not shipped as an asset (set QUS_ASSET_BINARIES to static qus binaries to ship)"
  fi
  return 0
}

# ci_matrix_flags hosts|nohosts: the matrix flags into the array ci_matrix: --targets and
# --sources, and --hosts from QUS_HOSTS with `hosts` (a script that takes HOST says nohosts).
ci_matrix_flags() {
  ci_matrix=()
  if [ "$1" = hosts ] && [ -n "${QUS_HOSTS:-}" ]; then ci_matrix+=(--hosts "$QUS_HOSTS"); fi
  if [ -n "${QUS_TARGETS:-}" ]; then ci_matrix+=(--targets "$QUS_TARGETS"); fi
  if [ -n "${QUS_SOURCES:-}" ]; then ci_matrix+=(--sources "$QUS_SOURCES"); fi
  return 0
}

# Where packages come from, into the array ci_source: --debs DIR, else --mirror URL, else
# nothing (qus then uses this machine's apt sources).
ci_source_flags() {
  ci_source=()
  if [ -n "${QUS_DEBS:-}" ]; then
    [ -d "$QUS_DEBS" ] || ci_die "QUS_DEBS=$QUS_DEBS is not a folder"
    ci_source+=(--debs "$QUS_DEBS")
  elif [ -n "${QUS_MIRROR:-}" ]; then
    ci_source+=(--mirror "$QUS_MIRROR")
  fi
  return 0
}

# Registry flags into the array ci_registry (the password never: see ci_with_login).
ci_registry_flags() {
  ci_registry=()
  if [ -n "${QUS_INSECURE_REGISTRY:-}" ]; then ci_registry+=(--insecure-registry "$QUS_INSECURE_REGISTRY"); fi
  if [ -n "${QUS_USERNAME:-}" ] && [ -z "${QUS_PASSWORD:-}" ]; then
    ci_die "QUS_USERNAME is set but QUS_PASSWORD is not"
  fi
  if [ -z "${QUS_USERNAME:-}" ] && [ -n "${QUS_PASSWORD:-}" ]; then
    ci_die "QUS_PASSWORD is set but QUS_USERNAME is not"
  fi
  return 0
}

# ci_with_login CMD…: runs a qus command that talks to the registry, with
# `--username U --password-stdin` and the password on its stdin when QUS_USERNAME is set,
# else with the Docker config's credentials (and nothing on stdin).
ci_with_login() {
  if [ -n "${QUS_USERNAME:-}" ]; then
    ci_show "$* --username $QUS_USERNAME --password-stdin"
    printf '%s\n' "$QUS_PASSWORD" | "$@" --username "$QUS_USERNAME" --password-stdin
  else
    ci_show "$*"
    "$@" </dev/null
  fi
}

# ci_run CMD…: shows and runs.
ci_run() {
  ci_show "$*"
  "$@"
}

# ci_start_registry DIR: starts Debian's docker-registry on a free 127.0.0.1 port with its
# storage and log in DIR, waits until it answers, and sets CI_REGISTRY (host:port). The
# registries started are stopped by ci_stop_registries (call it from an EXIT trap).
ci_registry_pids=()
ci_start_registry() {
  local dir=$1 port pid
  command -v docker-registry >/dev/null || ci_die "docker-registry not found (apt-get install docker-registry)"
  mkdir -p "$dir/storage"
  for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOC
    docker-registry serve "$dir/config.yml" >>"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
        ci_registry_pids+=("$pid")
        # shellcheck disable=SC2034 # read by the scripts that source this file
        CI_REGISTRY=127.0.0.1:$port
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ci_die "docker-registry did not start; its log: $dir/log"
}

ci_stop_registries() {
  local pid
  for pid in "${ci_registry_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ci_registry_pids=()
}
