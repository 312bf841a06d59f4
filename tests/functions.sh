# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the test scripts, in the style of nbdkit's tests/functions.sh.
# Source it first thing:
#
#   source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
#
# It gives the script:
#   $tmpdir          a fresh directory, removed when the script exits
#   requires CMD..   exit 77 (skip) unless every command is available
#   cleanup_fn CMD.. run "CMD .." when the script exits, last first
#   fail MSG         print "FAIL: MSG" and exit 1
#   expect_status N CMD..  run CMD, fail unless it exits with N; its
#                    stdout and stderr are left in $tmpdir/out, $tmpdir/err
#   expect_in FILE RE      fail unless FILE has a line matching RE (grep -E)
#   $THINMAP         the tool under test (from the environment, as make
#                    check sets it; else the build tree's src/thinmap)

: "${srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$srcdir}"
: "${THINMAP:=$top_builddir/src/thinmap}"
export srcdir top_builddir THINMAP

# Skip the test (exit 77, automake's SKIP) unless each command exists.
requires()
{
	local cmd
	for cmd in "$@"; do
		if ! command -v "$cmd" >/dev/null 2>&1; then
			echo "$0: test skipped because '$cmd' is missing"
			exit 77
		fi
	done
}

# Cleanups run on exit in reverse order of registration, each once, and
# the exit status of the script is kept.
_cleanup_fns=()

cleanup_fn()
{
	_cleanup_fns+=("$*")
}

_run_cleanup_fns()
{
	local status=$? i
	trap '' EXIT INT QUIT TERM
	for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_fns[i]}" || :
	done
	exit "$status"
}
trap _run_cleanup_fns EXIT
trap 'exit 130' INT
trap 'exit 131' QUIT
trap 'exit 143' TERM

fail()
{
	echo "FAIL: $*" >&2
	exit 1
}

# A fresh temporary directory per test, removed on exit.
tmpdir="$(mktemp -d "${TMPDIR:-/tmp}/thinmap-test.XXXXXXXX")"
cleanup_fn rm -rf "$tmpdir"

# expect_status N CMD..: run CMD with its output in $tmpdir/out and
# $tmpdir/err (and echoed, so the log shows it); fail unless it exits N.
# A crash (status >= 128: a signal, e.g. an ASan abort) always fails.
expect_status()
{
	local want=$1 status=0
	shift
	echo "+ $* (expect exit $want)"
	"$@" >"$tmpdir/out" 2>"$tmpdir/err" || status=$?
	sed 's/^/  out: /' "$tmpdir/out"
	sed 's/^/  err: /' "$tmpdir/err"
	if [ "$status" -ge 128 ] ||
		grep -Eq 'Sanitizer|runtime error:' "$tmpdir/err"; then
		fail "$* crashed (exit $status)"
	fi
	if [ "$want" = nonzero ]; then
		[ "$status" -ne 0 ] || fail "$*: exit 0, expected nonzero"
	elif [ "$status" -ne "$want" ]; then
		fail "$*: exit $status, expected $want"
	fi
}

# expect_in FILE RE: fail unless a line of FILE matches the extended
# regular expression RE.
expect_in()
{
	grep -Eq -- "$2" "$1" || fail "$(basename "$1") does not match '$2'"
}

# json_get FILE EXPR: evaluate the Python expression EXPR, where j is the
# JSON document in FILE, and print it (strings bare, the rest as JSON).
# Fails if FILE is not valid JSON.  Python's json module is the parser,
# so this checks the escaping of strings too.
: "${PYTHON:=/usr/bin/python3}"
json_get()
{
	"$PYTHON" -c '
import json, sys
j = json.load(open(sys.argv[1]))
v = eval("(" + sys.argv[2] + ")")
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2" || fail "$1: bad JSON or no $2"
}

# expect_json FILE EXPR VALUE: fail unless json_get FILE EXPR prints VALUE.
expect_json()
{
	local got
	got="$(json_get "$1" "$2")" || exit 1
	[ "$got" = "$3" ] || fail "$(basename "$1"): $2 is $got, expected $3"
	echo "  ok: $2 = $3"
}

# ---------------------------------------------------------------------
# A real nbdkit serving a thinmap volume, for the tests that drive
# clients (qemu-img, qemu-io, nbdfuse, ...) against it.
#
#   $THINMAP_PLUGIN   the plugin module (make check sets it; else the
#                     build tree's plugin/.libs/nbdkit-thinmap-plugin.so).
#                     THINMAP_PLUGIN=file runs the same script against
#                     nbdkit's file plugin on DIR/disk.img instead, a
#                     reference server that tells a test's own mistakes
#                     from the plugin's; checks of the volume itself are
#                     then skipped (see thinmap_served).
#   $THINMAP_LD_PRELOAD  preloaded into nbdkit (and only nbdkit), e.g.
#                     libasan when the plugin is built with sanitizers;
#                     leak detection is then off in nbdkit (it would
#                     report nbdkit's own allocations, and those of its
#                     libraries), and nbdkit runs with -v so that
#                     stop_nbdkit can see the plugin unloaded (see
#                     _stop_nbdkit).  If it is unset,
#                     $THINMAP_NBDKIT_PRELOAD is used (the name
#                     Makefile.am gives it for the libnbd tests).
#   requires_plugin   skip unless nbdkit and the plugin are there
#   start_thinmap [NBDKIT-OPTION..] NAME DIR [KEY=VALUE..]
#                     serve the volume DIR (dir=DIR KEY=VALUE..) on the
#                     Unix socket $tmpdir/NAME.sock, in the foreground
#                     (-f) as a child of the script, with -P
#                     $tmpdir/NAME.pid; returns once it is listening.
#                     Its stderr goes to $tmpdir/NAME.log.  The first
#                     start of NAME registers stop_nbdkit NAME to run
#                     at exit.
#   nbd_uri NAME      prints the NBD URI of server NAME
#   stop_nbdkit NAME  SIGTERM, wait (bounded) until it is gone; fail
#                     unless it exited 0 with no sanitizer report.
#                     Does nothing if NAME is not running.
#   crash_nbdkit NAME SIGKILL, and wait until it is gone.
#   thinmap_served    true unless THINMAP_PLUGIN=file
# ---------------------------------------------------------------------
: "${THINMAP_PLUGIN:=$top_builddir/plugin/.libs/nbdkit-thinmap-plugin.so}"
export THINMAP_PLUGIN

declare -A _nbdkit_pid=() _nbdkit_registered=() _nbdkit_unloads=()

thinmap_served()
{
	[ "$THINMAP_PLUGIN" != file ]
}

requires_plugin()
{
	requires nbdkit
	if thinmap_served && [ ! -f "$THINMAP_PLUGIN" ]; then
		echo "$0: test skipped because the plugin $THINMAP_PLUGIN is not built"
		exit 77
	fi
}

nbd_uri()
{
	echo "nbd+unix:///?socket=$tmpdir/$1.sock"
}

# _nbdkit_gone PID: true once PID has exited (a zombie counts as gone).
_nbdkit_gone()
{
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$state" ] || [ "$state" = Z ]
}

start_thinmap()
{
	local opts=() name dir i pid size='' kv
	while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
		opts+=("$1")
		shift
	done
	name=$1 dir=$2
	shift 2
	[ -z "${_nbdkit_pid[$name]:-}" ] || fail "nbdkit $name is already running"
	rm -f "$tmpdir/$name.pid" "$tmpdir/$name.sock"
	local cmd=(nbdkit -f --exit-with-parent -U "$tmpdir/$name.sock"
		-P "$tmpdir/$name.pid" "${opts[@]}")
	if thinmap_served; then
		cmd+=("$THINMAP_PLUGIN" dir="$dir" "$@")
	else
		# The reference server: a file of the size asked for.
		for kv in "$@"; do
			case $kv in size=*) size=${kv#size=} ;; esac
		done
		mkdir -p "$dir"
		[ -e "$dir/disk.img" ] || truncate -s "${size:-64M}" "$dir/disk.img"
		cmd+=(file "$dir/disk.img")
	fi
	if _nbdkit_preload >/dev/null; then
		# -v, for the plugin's "unload plugin": see _stop_nbdkit.
		cmd=(env LD_PRELOAD="$(_nbdkit_preload)${LD_PRELOAD:+:$LD_PRELOAD}"
			ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
			"${cmd[0]}" -v -D nbdkit.backend.datapath=0 "${cmd[@]:1}")
	fi
	_nbdkit_unloads[$name]=$(_nbdkit_unloaded "$name")
	echo "+ ${cmd[*]}"
	"${cmd[@]}" </dev/null >>"$tmpdir/$name.log" 2>&1 &
	pid=$!
	_nbdkit_pid[$name]=$pid
	if [ -z "${_nbdkit_registered[$name]:-}" ]; then
		_nbdkit_registered[$name]=1
		cleanup_fn _stop_nbdkit "$name"
	fi
	# nbdkit writes the pidfile once it is listening.
	for ((i = 0; i < 600; i++)); do
		[ -s "$tmpdir/$name.pid" ] && [ -S "$tmpdir/$name.sock" ] && break
		if _nbdkit_gone "$pid"; then
			wait "$pid" || :
			_nbdkit_pid[$name]=
			sed 's/^/  nbdkit: /' "$tmpdir/$name.log"
			fail "nbdkit $name exited at startup"
		fi
		sleep 0.1
	done
	[ -s "$tmpdir/$name.pid" ] || fail "nbdkit $name is not ready after 60s"
	[ "$(cat "$tmpdir/$name.pid")" = "$pid" ] ||
		fail "nbdkit $name: pidfile $(cat "$tmpdir/$name.pid") is not $pid"
}

# _nbdkit_preload: print what is preloaded into nbdkit; false if nothing.
_nbdkit_preload()
{
	local p=${THINMAP_LD_PRELOAD:-${THINMAP_NBDKIT_PRELOAD:-}}
	[ -n "$p" ] && echo "$p"
}

# _nbdkit_unloaded NAME: how many times NAME's log says the plugin was
# unloaded (only with -v).
_nbdkit_unloaded()
{
	local n
	n=$(grep -c 'debug: [a-z]*: unload plugin' "$tmpdir/$1.log" 2>/dev/null) || :
	echo "${n:-0}"
}

# _wait_nbdkit NAME SECONDS: wait for NAME to exit and reap it; its exit
# status is left in _nbdkit_status.  Returns 1 if it is still running.
_wait_nbdkit()
{
	local pid=${_nbdkit_pid[$1]} i
	for ((i = 0; i < $2 * 10; i++)); do
		_nbdkit_gone "$pid" && break
		sleep 0.1
	done
	_nbdkit_gone "$pid" || return 1
	_nbdkit_status=0
	wait "$pid" 2>/dev/null || _nbdkit_status=$?
	_nbdkit_pid[$1]=
}

# _stop_nbdkit NAME: stop_nbdkit, but say what went wrong and return 1
# instead of failing (the exit-time cleanup must not exit).
_stop_nbdkit()
{
	local name=$1 pid=${_nbdkit_pid[$1]:-}
	[ -n "$pid" ] || return 0
	echo "+ stop nbdkit $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || :
	# With libasan preloaded into nbdkit (which is not built with it),
	# nbdkit can hang in exit() after the plugin is unloaded: libasan
	# initializes inside newlocale() in p11-kit's constructor, which
	# leaves glibc's locale lock unbalanced, and p11-kit's destructor
	# then waits for it forever once anything has called strerror().
	# So there, the plugin's "unload plugin" (nbdkit -v) followed by 5s
	# without an exit counts as a clean exit.
	local i hung=
	for ((i = 0; i < 600; i++)); do
		_nbdkit_gone "$pid" && break
		if _nbdkit_preload >/dev/null && [ -z "$hung" ] &&
			[ "$(_nbdkit_unloaded "$name")" -gt "${_nbdkit_unloads[$name]}" ]; then
			hung=$((i + 50))
		fi
		[ -z "$hung" ] || [ "$i" -lt "$hung" ] || break
		sleep 0.1
	done
	if _nbdkit_gone "$pid"; then
		_wait_nbdkit "$name" 0
	elif [ -n "$hung" ]; then
		echo "  nbdkit $name unloaded the plugin but hangs in exit" \
			"(libasan preloaded): killed"
		kill -KILL "$pid" 2>/dev/null || :
		_wait_nbdkit "$name" 10 2>/dev/null || :
		_nbdkit_status=0
	else
		kill -KILL "$pid" 2>/dev/null || :
		_wait_nbdkit "$name" 10 2>/dev/null || :
		echo "nbdkit $name did not exit within 60s of SIGTERM" >&2
		return 1
	fi
	if grep -Eq 'Sanitizer|runtime error:' "$tmpdir/$name.log"; then
		sed 's/^/  nbdkit: /' "$tmpdir/$name.log" >&2
		echo "nbdkit $name: sanitizer report" >&2
		return 1
	fi
	if [ "$_nbdkit_status" -ne 0 ]; then
		sed 's/^/  nbdkit: /' "$tmpdir/$name.log" >&2
		echo "nbdkit $name exited with status $_nbdkit_status" >&2
		return 1
	fi
}

stop_nbdkit()
{
	_stop_nbdkit "$1" || fail "stopping nbdkit $1"
}

crash_nbdkit()
{
	local name=$1 pid=${_nbdkit_pid[$1]:-}
	[ -n "$pid" ] || fail "nbdkit $name is not running"
	echo "+ kill -9 nbdkit $name (pid $pid)"
	kill -KILL "$pid"
	# (bash would report the job as "Killed")
	_wait_nbdkit "$name" 30 2>/dev/null ||
		fail "nbdkit $name survived SIGKILL for 30s"
}
