#!/bin/sh
# shellcheck shell=sh
# The qus_* variables come from the generated data file, sourced below.
# shellcheck disable=SC2154
#
# qus registration entrypoint: run by the image's own busybox,
#   ENTRYPOINT ["/qus/busybox", "sh", "/qus/register"]
# in an image with no /bin/sh and nothing but /qus/{busybox,register,binfmt},
# /qus/bin -> ../usr/bin and the emulators in /usr/bin.
#
# It is the sh twin of qus-binfmt's `run` (crates/binfmt/src/run.rs): same
# dialects, same steps in the same order, same messages. The table, platform
# names and usage text come from /qus/binfmt, rendered by the Rust crate, so
# no byte of the table is written here. crates/binfmt/tests/differential.rs
# runs both against a private binfmt_misc and compares what the kernel holds.
#
# Overrides, for tests and odd setups: QUS_ROOT (image root, default /),
# QUS_BINFMT_MOUNT (default /proc/sys/fs/binfmt_misc), QUS_HOST_ARCH
# (default `uname -m`).

# Patterns and lists are expanded unquoted on purpose (host aliases such as
# i[3-6]86, uninstall patterns): never let them glob against the filesystem.
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

say() { printf 'qus: %s\n' "$*" >&2; }
fail() { failed=1; printf 'qus: error: %s\n' "$*" >&2; }
out() { printf '%s' "$1"; }
usage_error() {
	printf 'qus: error: %s\nqus: run with -h for usage\n' "$1" >&2
	exit 2
}
unknown_target() {
	usage_error "unknown target '$1' (valid: $qus_targets)"
}

# --- table look-ups (data from /qus/binfmt) ----------------------------------

# is_target NAME: whether NAME is a QEMU target of the table.
is_target() {
	for _t in $qus_targets; do
		[ "$_t" = "$1" ] && return 0
	done
	return 1
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

# field KIND TARGET: REPLY = qus_KIND_TARGET from the data.
field() {
	eval "REPLY=\${qus_$1_$2}"
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
		field family "$REPLY"
	fi
}

# --- parsing -----------------------------------------------------------------

help=0 version=0 list=0 dry_run=0 ignore_family=0 status_json=0
dialect=''
removals=''            # lines: "allqemu" | "targets T…" | "pattern P"
register=''            # "" | all | named
named=''               # space separated targets; unknown ones as ?NAME
fP=0 fO=0 fC=0 fF=0
dir1='' dir2=''          # interpreter directory candidates
prefix='' suffix=''
exports=''             # lines: "binfmt_d<TAB>DIR" | "update_binfmts<TAB>DIR"
global_exports=''
mount=${QUS_BINFMT_MOUNT:-/proc/sys/fs/binfmt_misc}
case ${QUS_IGNORE_FAMILY:-} in 1 | yes | true) ignore_family=1 ;; esac

add_named() {
	case " $named " in *" $1 "*) ;; *) named="${named:+$named }$1" ;; esac
}

add_export() { # LIST-VAR FORMAT DIR
	eval "$1=\"\${$1}\$2	\$3\$nl\""
}

# ungroup LETTERS ARG: whether ARG is a group of short options in LETTERS.
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
	_i=1
	while [ "$_i" -le $# ]; do
		eval "_a=\${$_i}"
		if [ "$_a" = -- ]; then
			_sep=1
			_i=$((_i + 1))
			break
		fi
		case $_a in
		-h | --help | -help) help=1 ;;
		-l | --list | -list) list=1 ;;
		-s | --static | -static) suffix=-static ;;
		-r | --reset | -reset) _reset=1 ;;
		-e | --exit | -exit) _exit=1 ;;
		-t | --targets | -targets)
			_i=$((_i + 1))
			[ "$_i" -le $# ] || usage_error "option $_a needs a value"
			eval "_v=\${$_i}"
			_rest=$_v
			while :; do
				_item=${_rest%%,*}
				if [ -n "$_item" ]; then
					lookup "$_item" || unknown_target "$_item"
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
		_i=$((_i + 1))
	done
	[ "$help" = 1 ] && return

	while [ "$_i" -le $# ]; do
		eval "_a=\${$_i}"
		_n=$((_i + 1))
		_next=''
		[ "$_n" -le $# ] && eval "_next=\${$_n}"
		case $_a in
		-p | --persistent | -c | --credential | --preserve-argv0)
			_val=1
			case $_next in
			yes) _i=$_n ;;
			no)
				_val=0
				_i=$_n
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
			[ "$_n" -le $# ] || usage_error "option $_a needs a value"
			_i=$_n
			case $_a in
			-Q | --path) dir1=$_next dir2="" ;;
			-F | --suffix) suffix=$_next ;;
			*) _edir=$_next ;;
			esac
			;;
		--) ;;
		--path=*) dir1=${_a#--path=} dir2="" ;;
		--suffix=*) suffix=${_a#--suffix=} ;;
		--exportdir=*) _edir=${_a#--exportdir=} ;;
		-*) usage_error "unknown option '$_a' after '--'" ;;
		*)
			lookup "$_a" || unknown_target "$_a"
			add_named "$REPLY"
			;;
		esac
		_i=$((_i + 1))
	done
	[ "$help" = 1 ] && return
	for _f in $_efmts; do
		if [ -n "$_edir" ]; then REPLY=$_edir; else default_export_dir "$_f"; fi
		add_export exports "$_f" "$REPLY"
	done

	[ "$_reset" = 1 ] && removals="${removals}allqemu$nl"
	if [ "$_exit" = 1 ] || { [ "$_sep" = 0 ] && [ "$list" = 1 ]; }; then
		return
	fi
	if [ "$_clear" = 1 ]; then
		removals="${removals}targets ${named:-$qus_targets}$nl"
		return
	fi
	if [ -n "$named" ]; then register=named; else register=all; fi
}

parse_multiarch() {
	dir1=${QEMU_BIN_DIR:-$root/usr/bin}
	suffix=-static
	_edir='' _efmts='' _raw=''
	_i=1
	while [ "$_i" -le $# ]; do
		eval "_raw=\${$_i}"
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
				_i=$((_i + 1))
				_present=0
				if [ "$_i" -le $# ]; then
					eval "_v=\${$_i}"
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
			-Q | --qemu-path) dir1=$_v ;;
			-F | --qemu-suffix) suffix=$_v ;;
			*) _edir=$_v ;;
			esac
			;;
		-d | --debian) _efmts="$_efmts update_binfmts" ;;
		-s | --systemd)
			[ "$_present" = 1 ] || usage_error "option $_a needs a value"
			_efmts="$_efmts binfmt_d"
			if [ "$_v" != ALL ]; then
				lookup "$_v" || unknown_target "$_v"
				add_named "$REPLY"
			fi
			;;
		-h | --help) help=1 ;;
		-*) usage_error "unknown option '$_a'" ;;
		*)
			lookup "$_a" || unknown_target "$_a"
			add_named "$REPLY"
			;;
		esac
		_i=$((_i + 1))
	done
	[ "$help" = 1 ] && return
	for _f in $_efmts; do
		if [ -n "$_edir" ]; then REPLY=$_edir; else default_export_dir "$_f"; fi
		add_export exports "$_f" "$REPLY"
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
	_i=1
	# Go's flag package: one or two dashes, =value or the next argument,
	# and parsing stops at the first non-flag argument or '--'.
	while [ "$_i" -le $# ]; do
		eval "_a=\${$_i}"
		case $_a in -- | - | [!-]* | '') break ;; esac
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
				_i=$((_i + 1))
				[ "$_i" -le $# ] || usage_error "flag needs an argument: -$_name"
				eval "_v=\${$_i}"
			fi
			case $_name in
			install) _install=$_v ;;
			uninstall) _uninstall=$_v ;;
			*) mount=$_v ;;
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
		_i=$((_i + 1))
	done
	[ "$help" = 1 ] || [ "$version" = 1 ] && return

	_rest=$_uninstall
	while :; do
		_item=${_rest%%,*}
		if [ -n "$_item" ]; then
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
				if lookup "$_item"; then add_named "$REPLY"; else add_named "?$_item"; fi
			fi
			case $_rest in *,*) _rest=${_rest#*,} ;; *) break ;; esac
		done
		[ -n "$named" ] && register=named
	fi
	if [ -n "$register" ]; then
		case $prefix in */*)
			usage_error "binary prefix must not contain path separator (Hint: set \$QEMU_BINARY_PATH to specify the directory)"
			;;
		esac
	fi
	status_json=1
}

# qus-wide options, wherever they are.
_pending=''
for _a do
	shift
	if [ -n "$_pending" ]; then
		[ -n "$_a" ] || usage_error "option $_pending needs a directory"
		case $_pending in
		--export-binfmt-d) add_export global_exports binfmt_d "$_a" ;;
		*) add_export global_exports update_binfmts "$_a" ;;
		esac
		_pending=''
		continue
	fi
	case $_a in
	--ignore-family) ignore_family=1 ;;
	--dry-run) dry_run=1 ;;
	--export-binfmt-d | --export-update-binfmts) _pending=$_a ;;
	--export-binfmt-d=*)
		[ -n "${_a#*=}" ] || usage_error "option --export-binfmt-d needs a directory"
		add_export global_exports binfmt_d "${_a#*=}"
		;;
	--export-update-binfmts=*)
		[ -n "${_a#*=}" ] || usage_error "option --export-update-binfmts needs a directory"
		add_export global_exports update_binfmts "${_a#*=}"
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

# The kernel's own architecture when it tells (/proc/sys/kernel/arch): under
# QEMU user mode uname -m reports the emulated one, and trusting it would
# register the real host's own architecture.
if [ -n "${QUS_HOST_ARCH:-}" ]; then
	machine=$QUS_HOST_ARCH
else
	_claimed=$("$bb" uname -m)
	machine=$_claimed
	_karch=''
	{ read -r _karch </proc/sys/kernel/arch; } 2>/dev/null
	[ -n "$_karch" ] && machine=$_karch
	if [ "$machine" != "$_claimed" ]; then
		say "note: running under emulation (uname -m says $_claimed, the kernel is $machine): the host is $machine"
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
	field binary "$1"
	REPLY=$dir/${prefix}qemu-$REPLY$suffix
}

# plan FOR_EXPORT: sets plan_steps ("R T" | "S T" | "N T" | "U NAME" lines),
# plan_F (F after dropping it for a register-only image), plan_note.
plan() {
	plan_steps='' plan_F=$fF plan_note=''
	_cands=''
	if [ "$register" = all ]; then
		for _t in $qus_targets; do
			interp_path "$_t"
			[ -e "$REPLY" ] && _cands="$_cands $_t"
		done
		if [ -z "$_cands" ]; then
			plan_note=$dir
			[ "$1" = 1 ] || plan_F=0
			_cands=$qus_targets
		fi
	else
		_cands=$named
	fi
	for _t in $_cands; do
		case $_t in
		\?*) plan_steps="${plan_steps}U ${_t#\?}$nl" ;;
		"$host_tgt")
			# The host's own architecture, whatever the options: registering
			# it would hand every native binary to QEMU.
			plan_steps="${plan_steps}N $_t$nl"
			;;
		*)
			field family "$_t"
			if [ "$REPLY" = "$family" ] && [ "$ignore_family" = 0 ]; then
				plan_steps="${plan_steps}S $_t$nl"
			else
				plan_steps="${plan_steps}R $_t$nl"
			fi
			;;
		esac
	done
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

# check_line TARGET INTERP FLAGS: REPLY = the register line, or fails.
check_line() {
	case $2 in /*) ;; *)
		fail "qemu-$1: bad interpreter path '$2': it must be an absolute path"
		return 1
		;;
	esac
	case $2 in *:*)
		fail "qemu-$1: bad interpreter path '$2': it must not contain ':'"
		return 1
		;;
	esac
	case $2 in *[[:cntrl:]]*)
		fail "qemu-$1: bad interpreter path '$2': it must not contain control characters"
		return 1
		;;
	esac
	field magic "$1"
	_magic=$REPLY
	field mask "$1"
	REPLY=":qemu-$1:M::$_magic:$REPLY:$2:$3"
	if [ "${#REPLY}" -gt 1920 ]; then
		fail "qemu-$1: register line is ${#REPLY} bytes, the kernel accepts at most 1920"
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

# hint ERRNO OP: REPLY = what to do (mirrors Errno::hint).
hint() {
	_priv="not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root"
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

# write_once PATH DATA OP: one write(2) of DATA; on failure REPLY = message.
# busybox's printf builtin does not report why a write failed, echo does.
write_once() {
	# shellcheck disable=SC3037 # busybox ash: echo -n reports write errors
	_err=$({ echo -n "$2" >"$1"; } 2>&1) && return 0
	_op=$3
	case $_err in *"can't create"* | *"can't open"*) _op=open ;; esac
	errno_of "$_err"
	_en=$REPLY
	hint "$_en" "$_op"
	REPLY="cannot write $1: $_en: $REPLY"
	return 1
}

# entries: REPLY = entry names, one per line, sorted, without register/status.
entries() {
	REPLY=''
	set +f
	for _f in "$mount"/*; do
		_e=${_f##*/}
		case $_e in register | status) ;; *) [ -e "$_f" ] && REPLY="$REPLY$_e$nl" ;; esac
	done
	set -f
}

# read_entry NAME: e_state, e_interp, e_flags from the entry file.
read_entry() {
	e_state='' e_interp='' e_flags=''
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
		esac
	done <"$mount/$1"
}

valid_name() {
	case $1 in
	'' | . | .. | register | status | */* | *:* | *[[:space:]]* | *[[:cntrl:]]*) return 1 ;;
	esac
	return 0
}

register_one() { # TARGET
	interp_path "$1"
	_ip=$REPLY
	letters "$fP" "$fO" "$fC" "$plan_F"
	_fl=$REPLY
	_nm=qemu-$1
	case $_ip in /*) _abs=1 ;; *) _abs=0 ;; esac
	if [ "$plan_F" = 1 ] && [ "$_abs" = 1 ]; then
		case $_ip in *:* | *[[:cntrl:]]*) ;; *)
			if [ ! -e "$_ip" ]; then
				fail "$_nm: interpreter $_ip does not exist (F opens it now, so it must exist here)"
				return
			fi
			if [ ! -x "$_ip" ]; then
				fail "$_nm: interpreter $_ip is not executable"
				return
			fi
			;;
		esac
	fi
	check_line "$1" "$_ip" "$_fl" || return
	_line=$REPLY
	if [ "$dry_run" = 1 ]; then
		printf '%s\n' "$_line"
		return
	fi
	if [ -z "$_fl" ]; then _shown="no flags"; else _shown="flags $_fl"; fi
	_replaced=''
	if [ -e "$mount/$_nm" ]; then
		if ! write_once "$mount/$_nm" -1 remove; then
			fail "$_nm: $REPLY"
			return
		fi
		_replaced=", replacing the previous entry"
	fi
	if ! write_once "$mount/register" "$_line" register; then
		fail "$_nm: $REPLY"
		return
	fi
	say "registered $_nm -> $_ip ($_shown)$_replaced"
}

remove_entry() { # NAME
	if [ "$dry_run" = 1 ]; then
		say "would remove $1"
		return
	fi
	if ! valid_name "$1" || [ "$1" = WSLInterop ]; then
		fail "$1: bad entry name '$1': no '/', ':' or whitespace, not '.', '..', 'register' or 'status'"
		return
	fi
	[ -e "$mount/$1" ] || return
	if write_once "$mount/$1" -1 remove; then
		say "removed $1"
	else
		fail "$1: $REPLY"
	fi
}

do_removal() { # LINE
	_kind=${1%% *}
	_arg=${1#* }
	_names=''
	case $_kind in
	allqemu)
		entries
		for _e in $REPLY; do
			case $_e in qemu-*) _names="$_names$_e$nl" ;; esac
		done
		;;
	targets)
		for _t in $_arg; do
			[ -e "$mount/qemu-$_t" ] && _names="${_names}qemu-$_t$nl"
		done
		;;
	pattern)
		entries
		_all=$REPLY _sel=''
		for _e in $_all; do
			[ "$_e" = WSLInterop ] && continue
			# shellcheck disable=SC2254 # the argument is a pattern on purpose
			case $_e in $_arg) _sel="$_sel$_e$nl" ;; esac
		done
		if [ -z "$_sel" ]; then
			for _e in $_all; do
				[ "$_e" = WSLInterop ] && continue
				case $_e in "$_arg" | *-"$_arg")
					_sel="$_e$nl"
					break
					;;
				esac
			done
		fi
		if [ -z "$_sel" ]; then
			say "no binfmt_misc entry matches '$_arg'"
		fi
		_names=$_sel
		;;
	esac
	for _e in $_names; do
		remove_entry "$_e"
	done
}

export_one() { # FORMAT DIR TARGET
	interp_path "$3"
	_ip=$REPLY
	letters "$fP" "$fO" "$fC" "$plan_F"
	check_line "$3" "$_ip" "$REPLY" || return
	_line=$REPLY
	_d=$2
	while [ "${_d%/}" != "$_d" ]; do _d=${_d%/}; done
	if [ "$1" = binfmt_d ]; then
		_file=qemu-$3.conf
		_content="$_line$nl"
	else
		_file=qemu-$3
		field magic "$3"
		_mg=$REPLY
		field mask "$3"
		_mk=$REPLY
		_yn() { if [ "$1" = 1 ]; then REPLY=yes; else REPLY=no; fi; }
		_yn "$fC"
		_c=$REPLY
		_yn "$plan_F"
		_F=$REPLY
		_yn "$fP"
		_content="package qemu-$3${nl}interpreter $_ip${nl}magic $_mg${nl}offset 0${nl}mask $_mk${nl}credentials $_c${nl}fix_binary $_F${nl}preserve $REPLY$nl"
	fi
	if [ "$dry_run" = 1 ]; then
		out "# $_d/$_file$nl$_content"
		return
	fi
	if ! _err=$("$bb" mkdir -p "$2" 2>&1); then
		fail "$2: $_err"
		return
	fi
	if ! _err=$({ printf '%s' "$_content" >"$_d/$_file"; } 2>&1); then
		fail "$_d/$_file: $_err"
		return
	fi
	say "wrote $_d/$_file"
}

in_user_namespace() {
	_w=''
	while read -r _l; do _w="$_w $_l"; done </proc/self/uid_map
	# shellcheck disable=SC2086 # split the map into words
	set -- $_w
	if [ $# -ne 3 ] || [ "$1" != 0 ] || [ "$2" != 0 ] || [ "$3" != 4294967295 ]; then
		return 0
	fi
	_a=$("$bb" readlink /proc/self/ns/user 2>/dev/null) || return 1
	_b=$("$bb" readlink /proc/1/ns/user 2>/dev/null) || return 1
	[ "$_a" != "$_b" ]
}

# Linux 6.7+ drops every binfmt_misc entry when the last mount of it goes away.
kernel_drops_entries_on_unmount() {
	read -r _r </proc/sys/kernel/osrelease 2>/dev/null || return 1
	_maj=${_r%%[!0-9]*}
	_r=${_r#"$_maj"}
	_r=${_r#?}
	_min=${_r%%[!0-9]*}
	[ "${_maj:-0}" -gt 6 ] || { [ "${_maj:-0}" -eq 6 ] && [ "${_min:-0}" -ge 7 ]; }
}

mounted_here=0
ensure_mounted() {
	[ -e "$mount/register" ] && return 0
	if [ ! -d "$mount" ]; then
		fail "$mount does not exist: the kernel has no binfmt_misc (CONFIG_BINFMT_MISC) or /proc is not mounted; on the host try: modprobe binfmt_misc"
		return 1
	fi
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

finish() {
	exit "$failed"
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

need_mount=0
if [ "$list" = 1 ] || [ "$status_json" = 1 ]; then
	need_mount=1
elif [ "$dry_run" = 0 ] && { [ -n "$removals" ] || [ -n "$register" ]; }; then
	need_mount=1
fi
if [ "$need_mount" = 1 ]; then
	ensure_mounted || finish
	if in_user_namespace; then
		say "warning: this process runs in a user namespace, so $mount is that namespace's own binfmt_misc (Linux 6.7+): the host will not see these registrations (rootless engine or userns-remap?)"
	elif [ "$mounted_here" = 1 ] && [ -n "$register" ] && [ "$dry_run" = 0 ] && kernel_drops_entries_on_unmount; then
		say "note: qus mounted binfmt_misc at $mount; since Linux 6.7 the kernel drops its entries when the last mount goes away, so in a container they end with the container unless the host keeps binfmt_misc mounted (systemd does; else on the host: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
	fi
fi

if [ "$list" = 1 ]; then
	entries
	for _e in $REPLY; do
		read_entry "$_e" 2>/dev/null || continue
		[ "$e_state" = enabled ] || e_state=disabled
		printf '%s %s %s %s\n' "$_e" "$e_state" "${e_flags:--}" "${e_interp:--}"
	done
fi

while IFS= read -r _rm; do
	[ -n "$_rm" ] && do_removal "$_rm"
done <<EOF
$removals
EOF

if [ -n "$register" ]; then
	plan 0
	report_plan_notes 1
	while read -r _k _t; do
		[ "$_k" = R ] && register_one "$_t"
	done <<EOF
$plan_steps
EOF
fi

if [ "$status_json" = 1 ]; then
	host_target "$machine"
	_ht=$REPLY
	_sup=''
	if is_target "$_ht"; then
		field oci "$_ht"
		_sup=$REPLY
	fi
	for _p in $qus_native_extra; do
		if [ "${_p%%=*}" = "$_ht" ]; then
			case " $_sup " in *" ${_p#*=} "*) ;; *) _sup="$_sup ${_p#*=}" ;; esac
		fi
	done
	entries
	_all=$REPLY _emu=''
	for _e in $_all; do
		read_entry "$_e" 2>/dev/null || continue
		[ "$e_state" = enabled ] && _emu="$_emu $_e"
	done
	for _t in $qus_targets; do
		case " $_emu " in *" qemu-$_t "*)
			field oci "$_t"
			for _p in $REPLY; do
				case " $_sup " in *" $_p "*) ;; *) _sup="$_sup $_p" ;; esac
			done
			;;
		esac
	done
	json_list() { # WORDS -> REPLY: a JSON array body, binfmt's indentation
		REPLY=''
		for _w in $1; do
			REPLY="$REPLY${REPLY:+,$nl}    \"$_w\""
		done
		if [ -n "$REPLY" ]; then REPLY="[$nl$REPLY$nl  ]"; else REPLY="[]"; fi
	}
	json_list "$_sup"
	_js=$REPLY
	json_list "$_emu"
	printf '{\n  "supported": %s,\n  "emulators": %s\n}\n' "$_js" "$REPLY"
fi

finish
