#!/bin/sh
# shellcheck shell=sh
# The qus_* variables and functions come from the generated data file,
# sourced below; some functions here are only called from there, or through
# each_entry, which shellcheck cannot follow.
# shellcheck disable=SC2154,SC2317
#
# qus registration entrypoint: run by the image's own busybox,
#   ENTRYPOINT ["/qus/busybox", "sh", "/qus/register"]
# in an image with no /bin/sh and nothing but /qus/{busybox,register,binfmt},
# /qus/bin -> ../usr/bin and the emulators in /usr/bin.
#
# It is the sh twin of qus-binfmt's `run` (crates/binfmt/src/run.rs): same
# dialects, same steps in the same order, same messages. The table, the byte
# rules every value passes, platform names and usage text come from
# /qus/binfmt, rendered by the Rust crate, so none of them is written here.
# crates/binfmt/tests/differential.rs runs both against a private
# binfmt_misc and compares what the kernel holds.
#
# Safety rules of this script: no `eval`, ever; every argument and every
# environment value is checked against a byte rule before use; values are
# always quoted, kept in newline-separated lists and read back with `read`,
# so none is split into words or globbed; the only patterns are the data's
# and `--uninstall` items (which passed the pattern rule).
#
# Overrides, for tests and odd setups: QUS_ROOT (image root, default /),
# QUS_BINFMT_MOUNT (default /proc/sys/fs/binfmt_misc), QUS_HOST_ARCH
# (default: the kernel's), QUS_KERNEL_RELEASE (default: the running kernel's).

# Host aliases (i[3-6]86) and lists of the data are expanded unquoted on
# purpose: never let them glob against the filesystem. Bytes, not characters.
set -f
LC_ALL=C
export LC_ALL

root=${QUS_ROOT:-}
while [ "${root%/}" != "$root" ]; do root=${root%/}; done
bb=$root/qus/busybox

# shellcheck source=/dev/null
. "$root/qus/binfmt" || exit 2

nl='
'
failed=0
warnings=''

say() { printf 'qus: %s\n' "$*" >&2; }
warn() {
	printf 'qus: warning: %s\n' "$1" >&2
	warnings="$warnings$1$nl"
}
fail() { failed=1; printf 'qus: error: %s\n' "$*" >&2; }
out() { printf '%s' "$1"; }
usage_error() {
	printf 'qus: error: %s\nqus: run with -h for usage\n' "$1" >&2
	exit 2
}
unknown_target() {
	usage_error "unknown target '$1' (valid: $qus_targets)"
}

# --- the byte rules (patterns from /qus/binfmt) --------------------------------

# rule NAME: REPLY = the pattern of refused values, REPLY2 = what it allows.
rule() {
	case $1 in
	printable) REPLY=$qus_rule_printable REPLY2=$qus_allowed_printable ;;
	item) REPLY=$qus_rule_item REPLY2=$qus_allowed_item ;;
	pattern) REPLY=$qus_rule_pattern REPLY2=$qus_allowed_pattern ;;
	affix) REPLY=$qus_rule_affix REPLY2=$qus_allowed_affix ;;
	path) REPLY=$qus_rule_path REPLY2=$qus_allowed_path ;;
	*) REPLY=$qus_rule_json REPLY2=$qus_allowed_json ;;
	esac
}

# check RULE WHAT VALUE: exit 2 unless every byte of VALUE is allowed.
check() {
	rule "$1"
	# shellcheck disable=SC2254 # the rule is a pattern on purpose
	case $3 in $REPLY) usage_error "bad value for $2: '$3' ($REPLY2)" ;; esac
}

# Called by the data's qus_env_printable / qus_env_rules.
env_printable() {
	[ -n "$2" ] || return 0
	# shellcheck disable=SC2254
	case $2 in $qus_rule_printable)
		usage_error "environment variable $1 is not printable ASCII (control characters and bytes above 0x7e are refused)"
		;;
	esac
}
env_rule() {
	[ -n "$3" ] || return 0
	check "$2" "$1" "$3"
}

# --- table look-ups (data from /qus/binfmt) ----------------------------------

# is_target NAME: whether NAME is a QEMU target of the table (exactly).
is_target() {
	for _t in $qus_targets; do
		[ "$_t" = "$1" ] && return 0
	done
	return 1
}

# row TARGET (a table target): t_family t_binary t_oci (comma separated)
# t_magic t_mask, from the data's qus_row.
row() {
	qus_row "$1"
}

# lookup NAME: REPLY = target for a QEMU name, qemu-NAME or platform name.
lookup() {
	_n=${1#linux/}
	_n=${_n#qemu-}
	REPLY=''
	if is_target "$_n"; then
		REPLY=$_n
		return 0
	fi
	for _p in $qus_platform_aliases; do
		if [ "${_p%%=*}" = "$_n" ]; then
			REPLY=${_p#*=}
			return 0
		fi
	done
	return 1
}

# target WHAT NAME: REPLY = the target NAME names, or exit 2.
target() {
	check item "$1" "$2"
	lookup "$2" || unknown_target "$2"
}

# host_target MACHINE: REPLY = the QEMU target a host machine name stands for.
host_target() {
	for _p in $qus_host_aliases; do
		# shellcheck disable=SC2254 # the alias is a pattern on purpose
		case $1 in ${_p%%=*})
			REPLY=${_p#*=}
			return
			;;
		esac
	done
	REPLY=$1
}

# host_family MACHINE: REPLY = its family.
host_family() {
	host_target "$1"
	if is_target "$REPLY"; then
		row "$REPLY"
		REPLY=$t_family
	fi
}

# is_owned NAME: whether qus owns the entry: qemu-T for a target T.
is_owned() {
	case $1 in qemu-*) is_target "${1#qemu-}" ;; *) return 1 ;; esac
}

# is_protected NAME: never removed, even named exactly.
is_protected() {
	case $1 in register | status | WSLInterop*) return 0 ;; esac
	return 1
}

# --- parsing -----------------------------------------------------------------

help=0 version=0 list=0 dry_run=0 ignore_family=0 status_json=0 allow_without_f=0
allow_private=0
dialect=''
removals=''            # lines: "allqemu" | "targets T…" | "pattern P"
register=''            # "" | all | named
named=''               # lines: a target, or ?NAME for an unknown one
fP=0 fO=0 fC=0 fF=0
dir1='' dir2=''        # interpreter directory candidates
prefix='' suffix=''
exports=''             # lines: "binfmt_d<TAB>DIR" | "update_binfmts<TAB>DIR"
global_exports=''
case ${QUS_IGNORE_FAMILY:-} in 1 | yes | true) ignore_family=1 ;; esac
case ${QUS_ALLOW_PRIVATE:-} in 1 | yes | true) allow_private=1 ;; esac

add_named() {
	case "$nl$named" in *"$nl$1$nl"*) ;; *) named="$named$1$nl" ;; esac
}

# ungroup_ok LETTERS ARG: whether ARG is a group of short options in LETTERS.
ungroup_ok() {
	case $2 in --* | -) return 1 ;; -??*) ;; *) return 1 ;; esac
	_r=${2#-}
	while [ -n "$_r" ]; do
		_c=${_r%"${_r#?}"}
		case $1 in *"$_c"*) ;; *) return 1 ;; esac
		_r=${_r#?}
	done
	return 0
}

yes_no() { # FLAG VALUE-PRESENT VALUE
	[ "$2" = 1 ] || usage_error "$1 takes yes or no"
	case $3 in
	yes) REPLY=1 ;;
	no) REPLY=0 ;;
	*) usage_error "$1 takes yes or no" ;;
	esac
}

default_export_dir() {
	case $1 in
	binfmt_d) REPLY=/etc/binfmt.d ;;
	*) REPLY=/usr/share/binfmts ;;
	esac
}

detect() {
	if [ $# -eq 0 ]; then
		dialect=default
		return
	fi
	for _a do
		case $_a in
		-install | --install | -install=* | --install=* | \
			-uninstall | --uninstall | -uninstall=* | --uninstall=* | \
			-mount | --mount | -mount=* | --mount=* | \
			-version | --version | -version=* | --version=*)
			dialect=binfmt
			return
			;;
		esac
	done
	for _a do
		if [ "$_a" = -- ]; then
			dialect=qus
			return
		fi
	done
	for _a do
		case ${_a%%=*} in
		--reset | -p | --persistent | -c | --credential | -g | --preserve-argv0 | \
			-Q | --qemu-path | -F | --qemu-suffix | -d | --debian | --systemd | --exportdir)
			dialect=multiarch
			return
			;;
		esac
	done
	dialect=qus
}

parse_qus() {
	if [ -n "${QEMU_BIN_DIR:-}" ]; then
		dir1=$QEMU_BIN_DIR
	else
		# dbhi's images set QEMU_BIN_DIR=/qus/bin; qus images link /qus/bin.
		dir1=$root/qus/bin dir2=$root/usr/bin
	fi
	# Expand grouped short options: -ls before '--', -pc after it.
	_phase=front
	for _a do
		shift
		if [ "$_phase" = front ] && [ "$_a" = -- ]; then
			_phase=back
			set -- "$@" "$_a"
			continue
		fi
		if [ "$_phase" = front ]; then _l=hlsret; else _l=pcrtsdh; fi
		if ungroup_ok "$_l" "$_a"; then
			_r=${_a#-}
			while [ -n "$_r" ]; do
				set -- "$@" "-${_r%"${_r#?}"}"
				_r=${_r#?}
			done
		else
			set -- "$@" "$_a"
		fi
	done

	_sep=0 _exit=0 _reset=0 _clear=0 _edir='' _efmts=''
	while [ $# -gt 0 ]; do
		_a=$1
		shift
		if [ "$_a" = -- ]; then
			_sep=1
			break
		fi
		case $_a in
		-h | --help | -help) help=1 ;;
		-l | --list | -list) list=1 ;;
		-s | --static | -static) suffix=-static ;;
		-r | --reset | -reset) _reset=1 ;;
		-e | --exit | -exit) _exit=1 ;;
		-t | --targets | -targets)
			[ $# -gt 0 ] || usage_error "option $_a needs a value"
			_rest=$1
			shift
			while :; do
				_item=${_rest%%,*}
				if [ -n "$_item" ]; then
					target "$_a" "$_item"
					add_named "$REPLY"
				fi
				case $_rest in *,*) _rest=${_rest#*,} ;; *) break ;; esac
			done
			;;
		-i | --interactive | -interactive)
			usage_error "-i (interactive) is not supported: there is no shell in this image besides busybox"
			;;
		-*) usage_error "unknown option '$_a'" ;;
		*) usage_error "unexpected argument '$_a': targets go after '--' (e.g. -s -- -p $_a)" ;;
		esac
	done
	[ "$help" = 1 ] && return

	while [ $# -gt 0 ]; do
		_a=$1
		shift
		_has=0 _next=''
		if [ $# -gt 0 ]; then _has=1 _next=$1; fi
		case $_a in
		-p | --persistent | -c | --credential | --preserve-argv0)
			_val=1
			case $_has$_next in
			1yes) shift ;;
			1no)
				_val=0
				shift
				;;
			esac
			case $_a in
			-p | --persistent) fF=$_val ;;
			-c | --credential) fC=$_val ;;
			*) fP=$_val ;;
			esac
			;;
		-r | --clear) _clear=1 ;;
		-t | --test) dry_run=1 ;;
		-s | --systemd) _efmts="$_efmts binfmt_d" ;;
		-d | --debian) _efmts="$_efmts update_binfmts" ;;
		-h | --help) help=1 ;;
		-Q | --path | -F | --suffix | -e | --exportdir)
			[ "$_has" = 1 ] || usage_error "option $_a needs a value"
			shift
			case $_a in
			-Q | --path)
				check path "$_a" "$_next"
				dir1=$_next dir2=''
				;;
			-F | --suffix)
				check affix "$_a" "$_next"
				suffix=$_next
				;;
			*)
				check path "$_a" "$_next"
				_edir=$_next
				;;
			esac
			;;
		--) ;;
		--path=*)
			check path --path "${_a#--path=}"
			dir1=${_a#--path=} dir2=''
			;;
		--suffix=*)
			check affix --suffix "${_a#--suffix=}"
			suffix=${_a#--suffix=}
			;;
		--exportdir=*)
			check path --exportdir "${_a#--exportdir=}"
			_edir=${_a#--exportdir=}
			;;
		-*) usage_error "unknown option '$_a' after '--'" ;;
		*)
			target target "$_a"
			add_named "$REPLY"
			;;
		esac
	done
	[ "$help" = 1 ] && return
	for _f in $_efmts; do
		if [ -n "$_edir" ]; then REPLY=$_edir; else default_export_dir "$_f"; fi
		exports="$exports$_f	$REPLY$nl"
	done

	[ "$_reset" = 1 ] && removals="${removals}allqemu$nl"
	if [ "$_exit" = 1 ] || { [ "$_sep" = 0 ] && [ "$list" = 1 ]; }; then
		return
	fi
	if [ "$_clear" = 1 ]; then
		if [ -n "$named" ]; then
			_ts=''
			while IFS= read -r _t; do
				[ -n "$_t" ] && _ts="$_ts $_t"
			done <<EOF
$named
EOF
			removals="${removals}targets${_ts}$nl"
		else
			removals="${removals}targets $qus_targets$nl"
		fi
		return
	fi
	if [ -n "$named" ]; then register=named; else register=all; fi
}

parse_multiarch() {
	dir1=${QEMU_BIN_DIR:-$root/usr/bin}
	suffix=-static
	_edir='' _efmts=''
	while [ $# -gt 0 ]; do
		_raw=$1
		shift
		case $_raw in
		--*=*)
			_a=${_raw%%=*}
			_inl=${_raw#*=}
			_has=1
			;;
		*)
			_a=$_raw
			_inl=''
			_has=0
			;;
		esac
		case $_a in
		-p | --persistent | -c | --credential | -g | --preserve-argv0 | \
			-Q | --qemu-path | -F | --qemu-suffix | -e | --exportdir | -s | --systemd)
			# take: the inline value, else the next argument.
			_present=$_has _v=$_inl
			if [ "$_has" = 0 ]; then
				_present=0
				if [ $# -gt 0 ]; then
					_v=$1
					shift
					_present=1
				fi
			fi
			;;
		esac
		case $_a in
		--reset) removals="${removals}allqemu$nl" ;;
		-p | --persistent)
			yes_no "$_a" "$_present" "$_v"
			fF=$REPLY
			;;
		-c | --credential)
			yes_no "$_a" "$_present" "$_v"
			fC=$REPLY
			;;
		-g | --preserve-argv0)
			yes_no "$_a" "$_present" "$_v"
			fP=$REPLY
			;;
		-Q | --qemu-path | -F | --qemu-suffix | -e | --exportdir)
			[ "$_present" = 1 ] || usage_error "option $_a needs a value"
			case $_a in
			-Q | --qemu-path)
				check path "$_a" "$_v"
				dir1=$_v
				;;
			-F | --qemu-suffix)
				check affix "$_a" "$_v"
				suffix=$_v
				;;
			*)
				check path "$_a" "$_v"
				_edir=$_v
				;;
			esac
			;;
		-d | --debian) _efmts="$_efmts update_binfmts" ;;
		-s | --systemd)
			[ "$_present" = 1 ] || usage_error "option $_a needs a value"
			_efmts="$_efmts binfmt_d"
			if [ "$_v" != ALL ]; then
				target "$_a" "$_v"
				add_named "$REPLY"
			fi
			;;
		-h | --help) help=1 ;;
		-*) usage_error "unknown option '$_a'" ;;
		*)
			target target "$_a"
			add_named "$REPLY"
			;;
		esac
	done
	[ "$help" = 1 ] && return
	for _f in $_efmts; do
		if [ -n "$_edir" ]; then REPLY=$_edir; else default_export_dir "$_f"; fi
		exports="$exports$_f	$REPLY$nl"
	done
	if [ -n "$named" ]; then register=named; else register=all; fi
}

parse_binfmt() {
	prefix=${QEMU_BINARY_PREFIX:-}
	dir1=${QEMU_BINARY_PATH:-$root/usr/bin}
	suffix=-static
	fC=1 fF=1
	[ -n "${QEMU_PRESERVE_ARGV0:-}" ] && fP=1
	_install='' _uninstall=''
	# Go's flag package: one or two dashes, =value or the next argument,
	# and parsing stops at the first non-flag argument or '--'.
	while [ $# -gt 0 ]; do
		_a=$1
		case $_a in -- | - | [!-]* | '') break ;; esac
		shift
		_body=$_a
		while :; do case $_body in -*) _body=${_body#-} ;; *) break ;; esac; done
		case $_body in
		*=*)
			_name=${_body%%=*}
			_inl=${_body#*=}
			_has=1
			;;
		*)
			_name=$_body
			_inl=''
			_has=0
			;;
		esac
		case $_name in
		install | uninstall | mount)
			if [ "$_has" = 1 ]; then
				_v=$_inl
			else
				[ $# -gt 0 ] || usage_error "flag needs an argument: -$_name"
				_v=$1
				shift
			fi
			case $_name in
			install) _install=$_v ;;
			uninstall) _uninstall=$_v ;;
			*)
				check path --mount "$_v"
				mount=$_v
				;;
			esac
			;;
		version)
			if [ "$_has" = 0 ]; then
				version=1
			else
				case $_inl in
				true | 1) version=1 ;;
				false | 0) version=0 ;;
				*) usage_error "invalid boolean value \"$_inl\" for -version" ;;
				esac
			fi
			;;
		h | help) help=1 ;;
		*) usage_error "flag provided but not defined: -$_name" ;;
		esac
	done
	[ "$help" = 1 ] || [ "$version" = 1 ] && return

	_rest=$_uninstall
	while :; do
		_item=${_rest%%,*}
		if [ -n "$_item" ]; then
			check pattern "--uninstall item" "$_item"
			# Collating elements are the one piece of fnmatch(3) the Rust
			# matcher lacks: refused in both, rather than read differently.
			case $_item in *'[.'*)
				usage_error "bad value for --uninstall item: '$_item' (collating elements [. .] are not supported)"
				;;
			esac
			if lookup "$_item"; then _item=qemu-$REPLY; fi
			removals="${removals}pattern $_item$nl"
		fi
		case $_rest in *,*) _rest=${_rest#*,} ;; *) break ;; esac
	done
	if [ "$_install" = all ]; then
		register=all
	else
		_rest=$_install
		while :; do
			_item=${_rest%%,*}
			if [ -n "$_item" ]; then
				check item "--install item" "$_item"
				if lookup "$_item"; then add_named "$REPLY"; else add_named "?$_item"; fi
			fi
			case $_rest in *,*) _rest=${_rest#*,} ;; *) break ;; esac
		done
		[ -n "$named" ] && register=named
	fi
	status_json=1
}

# Every argument is printable ASCII, every variable passes its rule, before
# anything else looks at them.
_i=0
for _a do
	_i=$((_i + 1))
	# shellcheck disable=SC2254
	case $_a in $qus_rule_printable)
		usage_error "argument $_i is not printable ASCII (control characters and bytes above 0x7e are refused)"
		;;
	esac
done
qus_env_printable
qus_env_rules
mount=${QUS_BINFMT_MOUNT:-/proc/sys/fs/binfmt_misc}

# qus-wide options, wherever they are.
_pending=''
for _a do
	shift
	if [ -n "$_pending" ]; then
		[ -n "$_a" ] || usage_error "option $_pending needs a directory"
		check path "$_pending" "$_a"
		case $_pending in
		--export-binfmt-d) global_exports="${global_exports}binfmt_d	$_a$nl" ;;
		*) global_exports="${global_exports}update_binfmts	$_a$nl" ;;
		esac
		_pending=''
		continue
	fi
	case $_a in
	--ignore-family) ignore_family=1 ;;
	--dry-run) dry_run=1 ;;
	--allow-without-f) allow_without_f=1 ;;
	--allow-private) allow_private=1 ;;
	--export-binfmt-d | --export-update-binfmts) _pending=$_a ;;
	--export-binfmt-d=*)
		[ -n "${_a#*=}" ] || usage_error "option --export-binfmt-d needs a directory"
		check path --export-binfmt-d "${_a#*=}"
		global_exports="${global_exports}binfmt_d	${_a#*=}$nl"
		;;
	--export-update-binfmts=*)
		[ -n "${_a#*=}" ] || usage_error "option --export-update-binfmts needs a directory"
		check path --export-update-binfmts "${_a#*=}"
		global_exports="${global_exports}update_binfmts	${_a#*=}$nl"
		;;
	*) set -- "$@" "$_a" ;;
	esac
done
[ -n "$_pending" ] && usage_error "option $_pending needs a directory"

detect "$@"
case $dialect in
default)
	register=all
	fF=1
	dir1=${QEMU_BIN_DIR:-$root/usr/bin}
	suffix=-static
	# docker/setup-qemu-action runs the image once more without arguments
	# and parses stdout as binfmt's status.
	status_json=1
	;;
qus) parse_qus "$@" ;;
multiarch) parse_multiarch "$@" ;;
binfmt) parse_binfmt "$@" ;;
esac
exports=$exports$global_exports
if [ -n "$exports" ] && [ -z "$register" ] && [ "$help" = 0 ] && [ "$version" = 0 ]; then
	register=all
fi

# --- doing it ------------------------------------------------------------------

if [ "$help" = 1 ]; then
	out "$qus_usage"
	exit 0
fi
if [ "$version" = 1 ]; then
	printf 'qus-binfmt/%s qemu/%s\n' "$qus_version" "${QUS_QEMU_VERSION:-${qus_qemu_version:-unknown}}"
	exit 0
fi

finish() {
	exit "$failed"
}

# The kernel release as "major minor" (release_major, release_minor; empty
# when unknown): QUS_KERNEL_RELEASE simulates another kernel.
if [ -n "${QUS_KERNEL_RELEASE:-}" ]; then
	_r=$QUS_KERNEL_RELEASE
else
	_r=''
	{ read -r _r </proc/sys/kernel/osrelease; } 2>/dev/null
fi
release_major=${_r%%[!0-9]*}
_r=${_r#"$release_major"}
_r=${_r#?}
release_minor=${_r%%[!0-9]*}
if [ -z "$release_major" ] || [ -z "$release_minor" ]; then
	release_major='' release_minor=''
fi

# at_least "MAJOR MINOR": whether the kernel has at least that release; an
# unknown release counts as recent (the kernel still has the last word).
at_least() {
	[ -n "$release_major" ] || return 0
	# shellcheck disable=SC2086 # "MAJOR MINOR" from the data
	set -- $1
	[ "$release_major" -gt "$1" ] || { [ "$release_major" -eq "$1" ] && [ "$release_minor" -ge "$2" ]; }
}

# in_user_namespace: /proc/self/ns/user is not the initial namespace's, or,
# where that link cannot be read, uid_map is not the identity. When neither
# can be read, no: a warning must not come from a guess.
in_user_namespace() {
	_l=$("$bb" readlink /proc/self/ns/user 2>/dev/null)
	if [ -n "$_l" ]; then
		[ "$_l" != "$qus_initial_user_ns" ]
		return
	fi
	[ -r /proc/self/uid_map ] || return 1
	_w=''
	while read -r _a _b _c; do _w="$_w $_a $_b $_c"; done </proc/self/uid_map
	[ "$_w" != " 0 0 4294967295" ]
}

userns=initial
if in_user_namespace; then
	if at_least "$qus_private_binfmt_misc_since"; then userns=private; else userns=shared; fi
fi

# elf_target BYTE…: REPLY = the first target whose magic and mask match these
# bytes (two hex digits each) of an ELF header, as the kernel's binfmt_misc
# would pick it. e_machine (bytes 18 and 19) is compared first: most targets
# differ there, and this may run in an emulated busybox.
elf_target() {
	[ $# -ge 20 ] || return 1
	_m18=$((0x${19})) _m19=$((0x${20}))
	for _t in $qus_targets; do
		row "$_t"
		# 18 bytes of "\xHH" are 72 characters.
		_g=${t_magic#????????????????????????????????????????????????????????????????????????}
		_k=${t_mask#????????????????????????????????????????????????????????????????????????}
		_g=${_g#??} _k=${_k#??}
		[ $((_m18 & 0x${_k%"${_k#??}"})) -eq $((0x${_g%"${_g#??}"} & 0x${_k%"${_k#??}"})) ] || continue
		_g=${_g#????} _k=${_k#????}
		[ $((_m19 & 0x${_k%"${_k#??}"})) -eq $((0x${_g%"${_g#??}"} & 0x${_k%"${_k#??}"})) ] || continue
		_g=$t_magic _k=$t_mask _h="$* " _ok=1
		while [ -n "$_g" ]; do
			_g=${_g#??}
			_gb=${_g%"${_g#??}"}
			_g=${_g#??}
			_k=${_k#??}
			_kb=${_k%"${_k#??}"}
			_k=${_k#??}
			if [ -z "$_h" ]; then
				_ok=0
				break
			fi
			_hb=${_h%% *}
			_h=${_h#* }
			if [ $((0x$_hb & 0x$_kb)) -ne $((0x$_gb & 0x$_kb)) ]; then
				_ok=0
				break
			fi
		done
		if [ "$_ok" = 1 ]; then
			REPLY=$_t
			return 0
		fi
	done
	return 1
}

# The host's architecture, from what QEMU's user mode does not rewrite
# (see crates/binfmt/src/host.rs): QUS_HOST_ARCH, /proc/sys/kernel/arch
# (Linux 6.1+), else `uname -m` checked against the executable the kernel
# really runs for this shell, read by a child process through /proc/$$/exe
# (qemu-user fakes only its own /proc/self/exe and /proc/<own pid>/exe):
# under emulation that is the emulator, an ELF of the host. No guess when
# none can be read.
detect_host() {
	claimed=$("$bb" uname -m)
	if [ -n "${QUS_HOST_ARCH:-}" ]; then
		machine=$QUS_HOST_ARCH claimed=$QUS_HOST_ARCH
		return 0
	fi
	_k=''
	{ read -r _k </proc/sys/kernel/arch; } 2>/dev/null
	if [ -n "$_k" ]; then
		machine=$_k
		return 0
	fi
	_hex=$("$bb" od -An -tx1 -v -N64 "/proc/$$/exe" 2>/dev/null) || return 1
	# od's output is hex words and blanks.
	# shellcheck disable=SC2086
	elf_target $_hex || return 1
	_running=$REPLY
	row "$_running"
	_rf=$t_family
	host_family "$claimed"
	if [ "$_rf" = "$REPLY" ]; then machine=$claimed; else machine=$_running; fi
}

machine=''
if [ -n "$register" ] || [ "$status_json" = 1 ]; then
	if ! detect_host; then
		fail "cannot tell the host's architecture: /proc/sys/kernel/arch is missing (Linux 6.1+ has it) and the running executable cannot be read through /proc; set QUS_HOST_ARCH to the host's uname -m"
		finish
	fi
	host_family "$claimed"
	_cf=$REPLY
	host_family "$machine"
	if [ "$_cf" != "$REPLY" ]; then
		say "note: running under emulation (uname -m says $claimed, the kernel is $machine): the host is $machine"
	fi
fi
host_target "$machine"
host_tgt=$REPLY
host_family "$machine"
family=$REPLY

if [ -n "$dir2" ] && [ ! -d "$dir1" ]; then dir=$dir2; else dir=$dir1; fi

letters() { # P O C F -> REPLY
	REPLY=''
	[ "$1" = 1 ] && REPLY=${REPLY}P
	{ [ "$2" = 1 ] || [ "$3" = 1 ]; } && REPLY=${REPLY}O
	[ "$3" = 1 ] && REPLY=${REPLY}C
	[ "$4" = 1 ] && REPLY=${REPLY}F
	return 0
}

interp_path() { # TARGET -> REPLY
	row "$1"
	REPLY=$dir/${prefix}qemu-$t_binary$suffix
}

# plan FOR_EXPORT: sets plan_steps ("R T" | "S T" | "N T" | "U NAME" lines),
# plan_F (F after dropping it for a register-only image), plan_note.
plan() {
	plan_steps='' plan_F=$fF plan_note=''
	_cands=''
	if [ "$register" = all ]; then
		for _t in $qus_targets; do
			interp_path "$_t"
			[ -e "$REPLY" ] && _cands="$_cands$_t$nl"
		done
		if [ -z "$_cands" ]; then
			plan_note=$dir
			[ "$1" = 1 ] || plan_F=0
			for _t in $qus_targets; do _cands="$_cands$_t$nl"; done
		fi
	else
		_cands=$named
	fi
	while IFS= read -r _t; do
		[ -n "$_t" ] || continue
		case $_t in
		\?*) plan_steps="${plan_steps}U ${_t#\?}$nl" ;;
		"$host_tgt")
			# The host's own architecture, whatever the options: registering
			# it would hand every native binary to QEMU.
			plan_steps="${plan_steps}N $_t$nl"
			;;
		*)
			row "$_t"
			if [ "$t_family" = "$family" ] && [ "$ignore_family" = 0 ]; then
				plan_steps="${plan_steps}S $_t$nl"
			else
				plan_steps="${plan_steps}R $_t$nl"
			fi
			;;
		esac
	done <<EOF
$_cands
EOF
}

report_plan_notes() { # REGISTERING
	if [ -n "$plan_note" ]; then
		if [ "$1" = 1 ]; then
			say "note: no emulator in $plan_note: registering every target without F, so the interpreters must exist at that path wherever foreign binaries run"
		else
			say "note: no emulator in $plan_note: exporting every target"
		fi
	fi
	while read -r _k _t; do
		case $_k in
		S) say "skipping qemu-$_t: the host ($machine) is in family $family and runs it natively; --ignore-family registers it anyway" ;;
		N) say "skipping qemu-$_t: it is the host's own architecture ($machine); registering it would hand every native binary to QEMU" ;;
		U) fail "unknown target '$_t' (valid: $qus_targets)" ;;
		esac
	done <<EOF
$plan_steps
EOF
}

# valid_interp PATH: the interpreter is absolute, without ':', '.' or '..'
# components (other bytes passed the path rule already); else REPLY = why.
valid_interp() {
	case $1 in /*) ;; *)
		REPLY="bad interpreter path '$1': it must be an absolute path"
		return 1
		;;
	esac
	case $1 in *:*)
		REPLY="bad interpreter path '$1': it must not contain ':'"
		return 1
		;;
	esac
	case $1 in *[[:cntrl:]]*)
		REPLY="bad interpreter path '$1': it must not contain control characters"
		return 1
		;;
	esac
	case /$1/ in */./* | */../*)
		REPLY="bad interpreter path '$1': it must not contain '.' or '..' components"
		return 1
		;;
	esac
	return 0
}

# check_line TARGET INTERP FLAGS: REPLY = the register line, or fails with
# REPLY = why.
check_line() {
	valid_interp "$2" || return 1
	row "$1"
	REPLY=":qemu-$1:M::$t_magic:$t_mask:$2:$3"
	if [ "${#REPLY}" -gt 1920 ]; then
		REPLY="register line is ${#REPLY} bytes, the kernel accepts at most 1920"
		return 1
	fi
	return 0
}

# errno_of MESSAGE: REPLY = errno name from busybox's strerror text.
errno_of() {
	case $1 in
	# busybox mount's words for mount(2) failing with EPERM (no CAP_SYS_ADMIN)
	*"are you root"* | *"Operation not permitted"*) REPLY=EPERM ;;
	*"Permission denied"* | *"permission denied"*) REPLY=EACCES ;;
	*"No such file or directory"* | *"nonexistent directory"*) REPLY=ENOENT ;;
	*"File exists"*) REPLY=EEXIST ;;
	*"Invalid argument"*) REPLY=EINVAL ;;
	*"Read-only file system"*) REPLY=EROFS ;;
	*"No such device"*) REPLY=ENODEV ;;
	*"busy"*) REPLY=EBUSY ;;
	*) REPLY="errno ? (${1##*: })" ;;
	esac
}

# hint ERRNO OP: REPLY = what to do (mirrors Errno::hint_in).
hint() {
	case $userns in
	private) _priv="not allowed in this user namespace: a rootless engine needs --privileged (or --cap-add SYS_ADMIN) for a binfmt_misc of its own, which the host does not see; to register for the host, run qus register as root on it, or a rootful engine with --privileged" ;;
	shared) _priv="not allowed: this process runs in a user namespace (rootless engine or userns-remap), where Linux before 6.7 cannot register; register from the host instead: qus register as root, or a rootful engine with --privileged" ;;
	*) _priv="not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root" ;;
	esac
	case $1:$2 in
	EPERM:* | EROFS:* | EACCES:mount | EACCES:open | EACCES:remove) REPLY=$_priv ;;
	EACCES:register) REPLY="the kernel could not open the interpreter (not executable, or on a noexec mount)" ;;
	ENOENT:open) REPLY="binfmt_misc is not mounted there" ;;
	ENOENT:register) REPLY="the kernel could not find the interpreter" ;;
	ENOENT:*) REPLY="no such file or directory" ;;
	EEXIST:*) REPLY="already registered (another process registered it at the same time)" ;;
	EINVAL:register) REPLY="the kernel rejected the line (name, magic/mask, flags or longer than 1920 bytes)" ;;
	EINVAL:*) REPLY="invalid argument" ;;
	ENODEV:*) REPLY="the kernel has no binfmt_misc filesystem" ;;
	EBUSY:*) REPLY="busy" ;;
	*) REPLY="unexpected error" ;;
	esac
}

# write_once PATH DATA OP: one write(2) of DATA; on failure REPLY = message
# and werrno = the errno's name.
# busybox's printf builtin does not report why a write failed, echo does.
write_once() {
	werrno=''
	# shellcheck disable=SC3037 # busybox ash: echo -n reports write errors
	_err=$({ echo -n "$2" >"$1"; } 2>&1) && return 0
	_op=$3
	case $_err in *"can't create"* | *"can't open"*) _op=open ;; esac
	errno_of "$_err"
	_en=$REPLY
	werrno=$_en
	hint "$_en" "$_op"
	REPLY="cannot write $1: $_en: $REPLY"
	return 1
}

# What binfmt_misc holds as this run sees it (mirrors view.rs): view=0 when a
# dry run finds it unmounted (the run would mount it, and see no entry);
# gone and added list the names a dry run would remove and register so far,
# so that its later steps decide as the run would.
view=1 gone='' added=''

# is_listed LIST NAME: whether NAME is a line of LIST.
is_listed() {
	case $nl$1 in *"$nl$2$nl"*) return 0 ;; esac
	return 1
}

# in_view NAME: whether the run would find entry NAME now.
in_view() {
	[ "$view" = 1 ] && [ -e "$mount/$1" ] && ! is_listed "$gone" "$1"
}

# each_entry FUNCTION: calls FUNCTION NAME for every entry in view, sorted,
# without register, status and names starting with '.'. Names are never
# joined into a string, so any byte of a name (space, newline) is harmless.
each_entry() { # FUNCTION
	[ "$view" = 1 ] || return 0
	set +f
	set -- "$1" "$mount"/*
	set -f
	_fn=$1
	shift
	for _f do
		_e=${_f##*/}
		case $_e in register | status) continue ;; esac
		[ -e "$_f" ] || continue
		is_listed "$gone" "$_e" && continue
		"$_fn" "$_e"
	done
}

# read_entry NAME: e_state, e_interp, e_flags, e_offset, e_magic, e_mask
# from the entry file; fails when it cannot be read.
read_entry() {
	e_state='' e_interp='' e_flags='' e_offset='' e_magic='' e_mask=''
	_first=1
	while IFS= read -r _l; do
		if [ "$_first" = 1 ]; then
			e_state=$_l
			_first=0
			continue
		fi
		case $_l in
		"interpreter "*) e_interp=${_l#interpreter } ;;
		"flags: "*) e_flags=${_l#flags: } ;;
		"offset "*) e_offset=${_l#offset } ;;
		"magic "*) e_magic=${_l#magic } ;;
		"mask "*) e_mask=${_l#mask } ;;
		esac
	done <"$mount/$1"
}

# json_string VALUE: REPLY = VALUE as a JSON string (mirrors json_string in
# apply.rs): printable ASCII as is, '"' and '\' escaped, every other byte as
# \u00XX, so the status is valid JSON for any entry name.
json_string() {
	# shellcheck disable=SC2254 # the rule is a pattern on purpose
	case $1 in
	$qus_rule_json) ;;
	*)
		REPLY="\"$1\""
		return
		;;
	esac
	_hex=$(printf '%s' "$1" | "$bb" od -An -tx1 -v)
	REPLY='"'
	# shellcheck disable=SC2086 # od's hex words
	set -- $_hex
	for _b do
		case $_b in
		22) REPLY="$REPLY\\\"" ;;
		5c) REPLY="$REPLY\\\\" ;;
		*)
			if [ $((0x$_b)) -ge 32 ] && [ $((0x$_b)) -le 126 ]; then
				REPLY="$REPLY$(printf '%b' "\\0$(printf '%03o' "0x$_b")")"
			else
				REPLY="$REPLY\\u00$_b"
			fi
			;;
		esac
	done
	REPLY="$REPLY\""
}

# json_list LINES INDENT: REPLY = a JSON array of LINES (already JSON).
json_list() {
	_body=''
	while IFS= read -r _w; do
		[ -n "$_w" ] || continue
		_body="$_body${_body:+,$nl}$2  $_w"
	done <<EOF
$1
EOF
	if [ -n "$_body" ]; then REPLY="[$nl$_body$nl$2]"; else REPLY="[]"; fi
}

# shown FLAGS: REPLY = the flags as messages show them.
shown() {
	if [ -z "$1" ]; then REPLY="no flags"; else REPLY="flags $1"; fi
}

# has_flags HAVE WANT: whether HAVE holds every letter of WANT.
has_flags() {
	_w=$2
	while [ -n "$_w" ]; do
		_c=${_w%"${_w#?}"}
		case $1 in *"$_c"*) ;; *) return 1 ;; esac
		_w=${_w#?}
	done
	return 0
}

# unescape HEX: REPLY = \xHH… without the \x (the kernel's spelling).
unescape() {
	_s=$1 REPLY=''
	while [ -n "$_s" ]; do
		_s=${_s#\\x}
		REPLY=$REPLY${_s%"${_s#??}"}
		_s=${_s#??}
	done
}

# What an entry read by read_entry is to a registration (mirrors judge.rs).
# matches_target TARGET: enabled, offset 0, the table's magic and mask.
matches_target() {
	[ "$e_state" = enabled ] && [ "$e_offset" = 0 ] || return 1
	row "$1"
	unescape "$t_magic"
	[ "$e_magic" = "$REPLY" ] || return 1
	unescape "$t_mask"
	[ "$e_mask" = "$REPLY" ]
}

# satisfies TARGET FLAGS: does what was asked, whoever wrote it.
satisfies() {
	matches_target "$1" && has_flags "$e_flags" "$2"
}

# same_file A B: the same path, or two existing paths that resolve to one.
same_file() {
	[ "$1" = "$2" ] && return 0
	[ -e "$1" ] && [ -e "$2" ] || return 1
	_a=$("$bb" readlink -f "$1" 2>/dev/null) || return 1
	_b=$("$bb" readlink -f "$2" 2>/dev/null) || return 1
	[ -n "$_a" ] && [ "$_a" = "$_b" ]
}

# equivalent TARGET INTERP FLAGS SUPERSET: the entry registering would
# leave: same match, the same flags (at least them with SUPERSET=1), an
# interpreter that is the same file here.
equivalent() {
	matches_target "$1" && has_flags "$e_flags" "$3" || return 1
	[ "$4" = 1 ] || has_flags "$3" "$e_flags" || return 1
	[ -n "$e_interp" ] && same_file "$e_interp" "$2"
}

# remove_quiet NAME: writes -1 to it; an entry gone meanwhile counts as removed.
remove_quiet() {
	write_once "$mount/$1" -1 remove && return 0
	[ "$werrno" = ENOENT ]
}

# stand_in NAME LINE: registers LINE as NAME.qus-N, the first N free;
# REPLY = that name, or the error (the kernel refusing the line itself).
stand_in() {
	_sd=${2%"${2#?}"}
	_sr=${2#"$_sd$1$_sd"}
	_sn=1
	while [ "$_sn" -le "$qus_stand_in_names" ]; do
		if write_once "$mount/register" "$_sd$1.qus-$_sn$_sd$_sr" register; then
			REPLY=$1.qus-$_sn
			return 0
		fi
		[ "$werrno" = EEXIST ] || return 1
		_sn=$((_sn + 1))
	done
	return 1
}

# put_entry TARGET FLAGS NAME LINE INTERP SUPERSET: registers LINE as entry
# NAME (mirrors Binfmt::register_line): an entry there is replaced through a
# stand-in, so foreign binaries always find one, unless it is the same entry
# by now; a name taken meanwhile (EEXIST) is read again and judged, never
# "restored". put_result = new | replaced (o_* =
# the entry replaced) | raced (e_* = the entry another run wrote); on
# failure REPLY = why.
put_entry() {
	_pstand='' _phad=0 _pres=contended _perr='' _ptry=0
	while [ "$_ptry" -lt "$qus_tries" ]; do
		if read_entry "$3" 2>/dev/null && [ -n "$e_state" ]; then
			if [ "$_ptry" = 0 ]; then
				if equivalent "$1" "$5" "$2" "$6"; then
					_pres=raced
					break
				fi
			elif satisfies "$1" "$2"; then
				_pres=raced
				break
			fi
			if [ -z "$_pstand" ]; then
				if ! stand_in "$3" "$4"; then
					REPLY="$REPLY; the previous entry was left in place"
					return 1
				fi
				_pstand=$REPLY
			fi
			if ! remove_quiet "$3"; then
				# Removed or replaced by another registration meanwhile (the
				# kernel then says ENOENT, or EACCES, as seen in containers):
				# read it again and judge.
				_perr=$REPLY
				_ptry=$((_ptry + 1))
				continue
			fi
			if [ "$_phad" = 0 ]; then
				_phad=1 o_state=$e_state o_interp=$e_interp o_flags=$e_flags
			fi
		fi
		if write_once "$mount/register" "$4" register; then
			if [ "$_phad" = 1 ]; then _pres=replaced; else _pres=new; fi
			break
		fi
		if [ "$werrno" != EEXIST ]; then
			_pres=error _perr=$REPLY
			break
		fi
		_ptry=$((_ptry + 1))
	done
	if [ "$_pres" = contended ]; then
		if read_entry "$3" 2>/dev/null && [ -n "$e_state" ] && satisfies "$1" "$2"; then
			_pres=raced
		else
			_pres=error
			[ -n "$_perr" ] || _perr="other registrations kept replacing it at the same time ($qus_tries tries); run again once they are done"
		fi
	fi
	if [ -n "$_pstand" ]; then
		if [ "$_pres" = error ] && [ ! -e "$mount/$3" ]; then
			REPLY="$_perr; the stand-in entry $_pstand stays registered so that foreign binaries keep running"
			return 1
		fi
		remove_quiet "$_pstand"
	fi
	if [ "$_pres" = error ]; then
		REPLY=$_perr
		return 1
	fi
	put_result=$_pres
}

records=''
# record TARGET RESULT INTERP FLAGS VERSION REASON: a line of the status's
# registrations (mirrors Record::to_json).
record() {
	json_string "$1"
	_rt=$REPLY
	json_string "$3"
	_ri=$REPLY
	json_string "$4"
	_rf=$REPLY
	_rv=null
	if [ -n "$5" ]; then
		json_string "$5"
		_rv=$REPLY
	fi
	json_string "$6"
	records="$records{\"target\": $_rt, \"interpreter\": $_ri, \"flags\": $_rf, \"qemu_version\": $_rv, \"result\": \"$2\", \"reason\": $REPLY}$nl"
}

qemu_version=${QUS_QEMU_VERSION:-}

register_one() { # TARGET
	interp_path "$1"
	_ip=$REPLY
	letters "$fP" "$fO" "$fC" "$plan_F"
	_fl=$REPLY
	_nm=qemu-$1
	_why=''
	if ! valid_interp "$_ip"; then
		_why=$REPLY
	elif [ "$plan_F" = 1 ] && [ ! -e "$_ip" ]; then
		_why="interpreter $_ip does not exist (F opens it now, so it must exist here)"
	elif [ "$plan_F" = 1 ] && [ ! -x "$_ip" ]; then
		_why="interpreter $_ip is not executable"
	elif ! check_line "$1" "$_ip" "$_fl"; then
		_why=$REPLY
	fi
	if [ -n "$_why" ]; then
		fail "$_nm: $_why"
		record "$1" failed "$_ip" "$_fl" '' "$_why"
		return
	fi
	_line=$REPLY
	_super=0
	[ "$dialect" = default ] && _super=1
	_old=0
	if in_view "$_nm" && read_entry "$_nm" 2>/dev/null && [ -n "$e_state" ]; then
		_old=1
		if equivalent "$1" "$_ip" "$_fl" "$_super"; then
			shown "$e_flags"
			say "$_nm is already registered -> $e_interp ($REPLY): kept"
			record "$1" kept "$e_interp" "$e_flags" '' "already registered the same way"
			return
		fi
	fi
	if [ "$dry_run" = 1 ]; then
		printf '%s\n' "$_line"
		added="$added$_nm$nl"
		put_result=new
		if [ "$_old" = 1 ]; then
			put_result=replaced o_state=$e_state o_interp=$e_interp o_flags=$e_flags
		fi
	elif ! put_entry "$1" "$_fl" "$_nm" "$_line" "$_ip" "$_super"; then
		fail "$_nm: $REPLY"
		record "$1" failed "$_ip" "$_fl" '' "$REPLY"
		return
	fi
	shown "$_fl"
	_shown=$REPLY
	case $put_result in
	new)
		say "registered $_nm -> $_ip ($_shown)"
		record "$1" registered "$_ip" "$_fl" "$qemu_version" "no entry before"
		;;
	replaced)
		_dis=''
		[ "$o_state" = enabled ] || _dis='disabled '
		shown "$o_flags"
		_why="it was $_dis-> $o_interp ($REPLY)"
		say "registered $_nm -> $_ip ($_shown), replacing the previous entry: $_why"
		record "$1" replaced "$_ip" "$_fl" "$qemu_version" "$_why"
		;;
	raced)
		shown "$e_flags"
		say "$_nm was registered at the same time by another registration -> $e_interp ($REPLY): kept"
		record "$1" kept "$e_interp" "$e_flags" '' "another registration wrote it at the same time"
		;;
	esac
}

remove_entry() { # NAME
	# Entries the run registers afterwards are left to that step (see
	# `registers` in run.rs).
	is_listed "$registers" "$1" && return
	if [ "$dry_run" = 1 ]; then
		say "would remove $1"
		gone="$gone$1$nl"
		return
	fi
	[ -e "$mount/$1" ] || return
	if write_once "$mount/$1" -1 remove; then
		say "removed $1"
	elif [ "$werrno" != ENOENT ]; then
		fail "$1: $REPLY"
	fi
}

# Callbacks of each_entry for the removals.
remove_if_owned() {
	is_owned "$1" && remove_entry "$1"
	return 0
}
select_for_pattern() {
	is_protected "$1" && return 0
	if [ "$1" = "$_pattern" ]; then
		_matched=1
		remove_entry "$1"
		return 0
	fi
	is_owned "$1" || return 0
	# shellcheck disable=SC2254 # the item is a pattern on purpose
	case $1 in $_pattern)
		_matched=1
		remove_entry "$1"
		;;
	esac
	return 0
}

do_removal() { # LINE
	_kind=${1%% *}
	_arg=${1#* }
	case $_kind in
	allqemu) each_entry remove_if_owned ;;
	targets)
		for _t in $_arg; do
			in_view "qemu-$_t" && remove_entry "qemu-$_t"
		done
		;;
	pattern)
		if is_protected "$_arg"; then
			say "leaving $_arg alone: qus never removes register, status or WSL's interop entries"
			return
		fi
		_pattern=$_arg _matched=0
		each_entry select_for_pattern
		[ "$_matched" = 1 ] || say "no binfmt_misc entry matches '$_arg'"
		;;
	esac
}

# export_write DIR FILE CONTENT: DIR/FILE holds CONTENT, written atomically:
# into a fresh private directory made by `mktemp -d` (mkdir(2) is exclusive,
# and no one else can enter it), synced, then renamed over the destination,
# which replaces a symlink instead of writing through it. A directory anyone
# may write to without the sticky bit is refused.
export_write() {
	_d=$1
	while [ "${_d%/}" != "$_d" ]; do _d=${_d%/}; done
	[ -n "$_d" ] || _d=/
	_p=${_d%/}/$2
	if ! _err=$("$bb" mkdir -p "$1" 2>&1); then
		errno_of "$_err"
		fail "cannot create directory $_d: $REPLY"
		return 1
	fi
	if ! _m=$("$bb" stat -L -c %a "$1" 2>&1); then
		errno_of "$_m"
		fail "cannot create directory $_d: $REPLY"
		return 1
	fi
	_m=$((0$_m))
	if [ $((_m & 2)) -ne 0 ] && [ $((_m & 512)) -eq 0 ]; then
		fail "$_d is writable by others without the sticky bit: refusing to write exports there"
		return 1
	fi
	if [ -d "$_p" ]; then
		fail "cannot replace $_p: it is a directory"
		return 1
	fi
	if ! _t=$("$bb" mktemp -d "${_d%/}/.$2.XXXXXX" 2>&1); then
		errno_of "$_t"
		fail "cannot write $_p: $REPLY"
		return 1
	fi
	if ! _err=$({ printf '%s' "$3" >"$_t/$2"; } 2>&1) ||
		! _err=$("$bb" chmod 644 "$_t/$2" 2>&1) ||
		! _err=$("$bb" sync "$_t/$2" 2>&1) ||
		! _err=$("$bb" mv -f -T "$_t/$2" "$_p" 2>&1); then
		"$bb" rm -rf "$_t"
		errno_of "$_err"
		fail "cannot write $_p: $REPLY"
		return 1
	fi
	"$bb" rmdir "$_t"
	say "wrote $_p"
}

export_one() { # FORMAT DIR TARGET
	interp_path "$3"
	_ip=$REPLY
	letters "$fP" "$fO" "$fC" "$plan_F"
	if ! check_line "$3" "$_ip" "$REPLY"; then
		fail "qemu-$3: $REPLY"
		return
	fi
	_line=$REPLY
	_d=$2
	while [ "${_d%/}" != "$_d" ]; do _d=${_d%/}; done
	if [ "$1" = binfmt_d ]; then
		_file=qemu-$3.conf
		_content="$_line$nl"
	else
		_file=qemu-$3
		row "$3"
		_yn() { if [ "$1" = 1 ]; then REPLY=yes; else REPLY=no; fi; }
		_yn "$fC"
		_c=$REPLY
		_yn "$plan_F"
		_F=$REPLY
		_yn "$fP"
		_content="package qemu-$3${nl}interpreter $_ip${nl}magic $t_magic${nl}offset 0${nl}mask $t_mask${nl}credentials $_c${nl}fix_binary $_F${nl}preserve $REPLY$nl"
	fi
	if [ "$dry_run" = 1 ]; then
		out "# $_d/$_file$nl$_content"
		return
	fi
	export_write "$2" "$_file" "$_content"
}

# check_mount_point: fails as ensure_mounted does when there is nothing to
# mount binfmt_misc on.
check_mount_point() {
	{ [ -e "$mount/register" ] || [ -d "$mount" ]; } && return 0
	fail "$mount does not exist: the kernel has no binfmt_misc (CONFIG_BINFMT_MISC) or /proc is not mounted; on the host try: modprobe binfmt_misc"
	return 1
}

mounted_here=0
ensure_mounted() {
	[ -e "$mount/register" ] && return 0
	check_mount_point || return 1
	if _err=$("$bb" mount -t binfmt_misc binfmt_misc "$mount" 2>&1); then
		mounted_here=1
		return 0
	fi
	_fs=0
	while read -r _a _b; do
		[ "${_b:-$_a}" = binfmt_misc ] && _fs=1
	done </proc/filesystems
	errno_of "$_err"
	if [ "$REPLY" = ENODEV ] || [ "$_fs" = 0 ]; then
		fail "cannot mount binfmt_misc at $mount: the kernel has no binfmt_misc filesystem; on the host try: modprobe binfmt_misc"
		return 1
	fi
	_en=$REPLY
	hint "$_en" mount
	fail "cannot mount binfmt_misc at $mount: $_en: $REPLY"
	return 1
}

if [ -n "$exports" ]; then
	if [ -n "$register" ]; then
		plan 1
		report_plan_notes 0
		while IFS='	' read -r _fmt _edir; do
			[ -n "$_fmt" ] || continue
			while read -r _k _t; do
				[ "$_k" = R ] && export_one "$_fmt" "$_edir" "$_t"
			done <<EOF
$plan_steps
EOF
		done <<EOF
$exports
EOF
	fi
	finish
fi

# host_page_size: REPLY = the host's page size in bytes, or empty when
# unknown: QUS_PAGE_SIZE (tests), else the kernel's, from the smaps of this
# shell read by a child (QEMU's user mode fakes only its own process's).
host_page_size() {
	REPLY=''
	if [ -n "${QUS_PAGE_SIZE:-}" ]; then
		_v=$QUS_PAGE_SIZE
	else
		_v=$("$bb" grep -m1 '^KernelPageSize:' "/proc/$$/smaps" 2>/dev/null) || return 0
		# "KernelPageSize:        4 kB"
		_v=${_v#KernelPageSize:}
		while [ "${_v# }" != "$_v" ]; do _v=${_v# }; done
		_v=${_v% kB}
		case $_v in '' | *[!0123456789]*) return 0 ;; esac
		_v=$((_v * 1024))
	fi
	case $_v in '' | *[!0123456789]*) return 0 ;; esac
	while [ "${_v#0}" != "$_v" ] && [ -n "${_v#0}" ]; do _v=${_v#0}; done
	REPLY=$_v
}

# shown_size BYTES: REPLY = 16K, 64K, or bytes.
shown_size() {
	if [ $(($1 % 1024)) -eq 0 ]; then REPLY="$(($1 / 1024))K"; else REPLY=$1; fi
}

# page_warnings: one per target to register whose programs may fail on this
# host's page size (mirrors pages.rs, where the sources are cited).
page_warnings() {
	host_page_size
	_hp=$REPLY
	[ -n "$_hp" ] || return 0
	while read -r _k _t; do
		[ "$_k" = R ] || continue
		qus_guest_page "$_t"
		_gp=$REPLY
		if [ "$_gp" -eq 0 ] || [ "$_hp" -le "$_gp" ]; then continue; fi
		shown_size "$_hp"
		_hs=$REPLY
		shown_size "$_gp"
		warn "qemu-$_t: this host's pages are $_hs, larger than the $REPLY pages QEMU's user mode gives $_t programs, so mappings that need $REPLY alignment are copied and shared writable file mappings fail: some $_t programs will not run here; use a kernel with 4K pages (Asahi Linux and Raspberry Pi OS ship one) or a VM"
	done <<EOF
$plan_steps
EOF
}

registers=''
# Everything that can be refused is decided before the first write.
if [ -n "$register" ]; then
	plan 0
	report_plan_notes 1
	case $nl$plan_steps in *"${nl}R "*) _wants_registering=1 ;; *) _wants_registering=0 ;; esac
	if [ "$plan_F" = 1 ] && [ "$_wants_registering" = 1 ] && ! at_least "$qus_fix_binary_since"; then
		if [ "$allow_without_f" = 0 ]; then
			# Before any removal: `--reset` on such a host must not delete
			# working entries it cannot replace.
			fail "Linux $release_major.$release_minor does not support the F flag (Linux 4.8+), so nothing was changed; --allow-without-f registers without it (the interpreters must then exist wherever foreign binaries run)"
			finish
		fi
		say "note: Linux $release_major.$release_minor does not support the F flag (Linux 4.8+): registering without it, so the interpreters must exist wherever foreign binaries run"
		plan_F=0
	fi
	if [ "$_wants_registering" = 1 ]; then
		if [ "$userns" = private ] && [ "$allow_private" = 0 ]; then
			# binfmt#288: a registration the host cannot see is no success.
			fail "this process runs in a user namespace, so $mount is that namespace's own binfmt_misc (Linux 6.7+): the host would not see these registrations, so nothing was registered; to register for the host, run qus register as root on it, or a rootful engine with --privileged; --allow-private registers in this namespace anyway"
			finish
		fi
		page_warnings
	fi
	while read -r _k _t; do
		[ "$_k" = R ] && registers="${registers}qemu-$_t$nl"
	done <<EOF
$plan_steps
EOF
fi

if [ "$list" = 0 ] && [ "$status_json" = 0 ] && [ -z "$removals" ] && [ -z "$register" ]; then
	finish
fi
# A dry run mounts nothing: it says it would, and sees no entry there.
if [ "$dry_run" = 1 ]; then
	if [ ! -e "$mount/register" ]; then
		check_mount_point || finish
		say "would mount binfmt_misc at $mount"
		view=0
	fi
else
	ensure_mounted || finish
fi
if [ "$userns" = private ]; then
	warn "this process runs in a user namespace, so $mount is that namespace's own binfmt_misc (Linux 6.7+): the host will not see these registrations; to register for the host, run qus register as root on it, or a rootful engine with --privileged"
elif [ "$mounted_here" = 1 ] && [ -n "$register" ] && at_least "$qus_private_binfmt_misc_since"; then
	say "note: qus mounted binfmt_misc at $mount; since Linux 6.7 the kernel drops its entries when the last mount goes away, so in a container they end with the container unless the host keeps binfmt_misc mounted (systemd does; else on the host: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
fi

list_entry() {
	read_entry "$1" 2>/dev/null || return 0
	[ "$e_state" = enabled ] || e_state=disabled
	printf '%s %s %s %s\n' "$1" "$e_state" "${e_flags:--}" "${e_interp:--}"
}
if [ "$list" = 1 ]; then
	each_entry list_entry
fi

while IFS= read -r _rm; do
	[ -n "$_rm" ] && do_removal "$_rm"
done <<EOF
$removals
EOF

if [ -n "$register" ]; then
	while read -r _k _t; do
		[ "$_k" = R ] && register_one "$_t"
	done <<EOF
$plan_steps
EOF
fi

status_emulator() {
	json_string "$1"
	_emu="$_emu$REPLY$nl"
	if ! is_listed "$added" "$1"; then
		read_entry "$1" 2>/dev/null || return 0
		[ "$e_state" = enabled ] || return 0
	fi
	is_owned "$1" || return 0
	_on="$_on ${1#qemu-}"
}

if [ "$status_json" = 1 ]; then
	host_target "$machine"
	_ht=$REPLY
	_sup=''
	if is_target "$_ht"; then
		row "$_ht"
		_sup=$t_oci
	fi
	_sup=",$_sup,"
	[ "$_sup" = ",," ] && _sup=,
	for _p in $qus_native_extra; do
		if [ "${_p%%=*}" = "$_ht" ]; then
			case $_sup in *",${_p#*=},"*) ;; *) _sup="$_sup${_p#*=}," ;; esac
		fi
	done
	_emu='' _on=''
	if [ -n "$added" ]; then
		# A dry run's: what is in view and what it would register, sorted.
		_names=''
		_collect() { is_listed "$added" "$1" || _names="$_names$1$nl"; }
		each_entry _collect
		_names=$(printf '%s' "$_names$added" | "$bb" sort)
		while IFS= read -r _n; do
			[ -n "$_n" ] && status_emulator "$_n"
		done <<EOF
$_names
EOF
	else
		each_entry status_emulator
	fi
	for _t in $qus_targets; do
		case " $_on " in *" $_t "*)
			row "$_t"
			_o=$t_oci
			while [ -n "$_o" ]; do
				_p=${_o%%,*}
				case $_sup in *",$_p,"*) ;; *) _sup="$_sup$_p," ;; esac
				case $_o in *,*) _o=${_o#*,} ;; *) _o='' ;; esac
			done
			;;
		esac
	done
	_lines=''
	_s=${_sup#,}
	while [ -n "$_s" ]; do
		_lines="$_lines\"${_s%%,*}\"$nl"
		_s=${_s#*,}
	done
	json_list "$_lines" "  "
	_js=$REPLY
	if [ -n "$_emu" ]; then
		json_list "$_emu" "  "
		_je=$REPLY
	else
		_je=null
	fi
	_wl=''
	while IFS= read -r _w; do
		[ -n "$_w" ] || continue
		json_string "$_w"
		_wl="$_wl$REPLY$nl"
	done <<EOF
$warnings
EOF
	json_list "$_wl" "    "
	_jw=$REPLY
	_ns=false _sees=true _dry=false
	[ "$userns" = initial ] || _ns=true
	[ "$userns" = private ] && _sees=false
	[ "$dry_run" = 1 ] && _dry=true
	json_string "$qus_version"
	_jv=$REPLY
	json_string "$machine"
	# installs: what qus register installs on a host; an image installs nothing.
	_jh=$REPLY
	json_list "$records" "    "
	printf '{\n  "supported": %s,\n  "emulators": %s,\n  "qus": {\n    "version": %s,\n    "host": %s,\n    "user_namespace": %s,\n    "host_sees_entries": %s,\n    "dry_run": %s,\n    "installs": [],\n    "registrations": %s,\n    "warnings": %s\n  }\n}\n' \
		"$_js" "$_je" "$_jv" "$_jh" "$_ns" "$_sees" "$_dry" "$REPLY" "$_jw"
fi

finish
