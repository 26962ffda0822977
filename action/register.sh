#!/usr/bin/env bash
# The qus action (action.yml): registers QEMU user-mode emulators with binfmt_misc on this
# machine from the published qus images, through the images' own entrypoint:
#
#   persistent, TARGETs given:  docker run --rm --privileged IMAGE:[SOURCE-]T -s -- -p T
#   persistent, no TARGET:      docker run --rm --privileged IMAGE:latest|SOURCE -s -- -p
#   not persistent:             the emulators are copied to /usr/local/bin first, then
#                               … -s -- -Q /usr/local/bin [T]   (no F)
#
# One small image per target (IMAGE:T holds the entrypoint and qemu-T-static only; the
# layers are shared with IMAGE:latest). Runnable by hand with the same environment:
#   QUS_ACTION_IMAGE=REGISTRY/PATH QUS_ACTION_TARGETS="aarch64 riscv64" action/register.sh
# QUS_PRIVILEGED (default --privileged) is what `docker run` gets, e.g. "--cap-add
# SYS_ADMIN" where runc refuses --privileged; QUS_ACTION_DIR replaces /usr/local/bin.
set -euo pipefail

die() {
  echo "qus action: error: $*" >&2
  exit 2
}
log() { echo "qus action: $*" >&2; }
run() {
  echo "+ $*" >&2
  "$@"
}

# The image repository.
image=${QUS_ACTION_IMAGE:-${QUS_IMAGE:-}}
if [ -z "$image" ]; then
  # `uses: OWNER/REPO/action@REF` runs from …/_actions/OWNER/REPO/REF/action.
  owner=
  case ${GITHUB_ACTION_PATH:-} in
    */_actions/*/*/*/action) rest=${GITHUB_ACTION_PATH#*/_actions/}; owner=${rest%%/*} ;;
  esac
  owner=${owner:-${GITHUB_REPOSITORY_OWNER:-}}
  [ -n "$owner" ] || die "no image: set the action's image input (REGISTRY/PATH) or QUS_IMAGE"
  image=$(tr '[:upper:]' '[:lower:]' <<<"$owner")/qus
fi
case ${image##*/} in
  *:* | *@*) die "image '$image': give the repository without a tag (the action picks the tags)" ;;
esac

source=${QUS_ACTION_SOURCE:-}
case ${QUS_ACTION_PERSISTENT:-true} in
  true | yes | 1) persistent=true ;;
  false | no | 0) persistent=false ;;
  *) die "persistent: '$QUS_ACTION_PERSISTENT' is neither true nor false" ;;
esac
read -r -a privileged <<<"${QUS_PRIVILEGED:---privileged}"
dir=${QUS_ACTION_DIR:-/usr/local/bin}

# Targets: QEMU names; the usual platform spellings are mapped to them.
targets=()
targets_input=${QUS_ACTION_TARGETS:-}
read -r -a words <<<"${targets_input//,/ }"
for w in "${words[@]}"; do
  w=${w#linux/}
  w=${w#qemu-}
  case $w in
    arm64 | arm64/v8 | arm64v8) w=aarch64 ;;
    amd64 | x86-64) w=x86_64 ;;
    386 | i686) w=i386 ;;
    arm/v5 | arm/v6 | arm/v7 | armhf | armel | arm32v6 | arm32v7) w=arm ;;
    ppc64el) w=ppc64le ;;
    mips64le) w=mips64el ;;
    loong64) w=loongarch64 ;;
  esac
  case $w in
    '' | *[!a-z0-9_]*) die "target '$w': expected a QEMU target name such as aarch64" ;;
  esac
  targets+=("$w")
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
log "image $image, targets: ${targets[*]:-all}, persistent: $persistent"

# Copies /usr/bin/qemu-*-static (all, or one target's) out of REF into $dir.
install_from() {
  local ref=$1 pattern=$2 tmp cid
  tmp=$(mktemp -d)
  cid=$(docker create --pull always "$ref")
  docker cp "$cid:/usr/bin/." "$tmp/" >/dev/null
  docker rm "$cid" >/dev/null
  shopt -s nullglob
  # shellcheck disable=SC2206 # the pattern is a glob on purpose
  local files=("$tmp"/$pattern)
  shopt -u nullglob
  [ ${#files[@]} -gt 0 ] || die "$ref has no /usr/bin/$pattern"
  run "${sudo[@]}" install -d "$dir"
  run "${sudo[@]}" install -m 755 "${files[@]}" "$dir/"
  rm -rf "$tmp"
}

if [ ${#targets[@]} -eq 0 ]; then
  ref=$image:${source:-latest}
  if $persistent; then
    run docker run --rm --pull always "${privileged[@]}" "$ref" -s -- -p
  else
    install_from "$ref" 'qemu-*-static'
    run docker run --rm "${privileged[@]}" "$ref" -s -- -Q "$dir"
  fi
else
  for t in "${targets[@]}"; do
    ref=$image:${source:+$source-}$t
    if $persistent; then
      run docker run --rm --pull always "${privileged[@]}" "$ref" -s -- -p "$t"
    else
      install_from "$ref" "qemu-$t-static"
      run docker run --rm "${privileged[@]}" "$ref" -s -- -Q "$dir" "$t"
    fi
  done
fi

# What the kernel has now (best effort: binfmt_misc may not be mounted in this namespace).
for f in /proc/sys/fs/binfmt_misc/qemu-*; do
  [ -r "$f" ] || continue
  log "$(basename "$f"): $(sed -n 's/^interpreter //p' "$f") $(sed -n 's/^flags: //p' "$f")"
done
