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
