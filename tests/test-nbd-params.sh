#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The plugin's parameters in a real nbdkit: --help and --dump-plugin, bad
# parameters stop nbdkit with an error naming them, good ones serve what
# they say (create=true, readonly=true, nbdkit -r, the tunables), and a
# second server on a volume that is served refuses, naming the first.
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires nbdkit nbdinfo

: "${THINMAP_PLUGIN:=$top_builddir/plugin/.libs/nbdkit-thinmap-plugin.so}"
[ -r "$THINMAP_PLUGIN" ] || {
	echo "$0: test skipped because the plugin is not built"
	exit 77
}
plugin=$THINMAP_PLUGIN
vol=$tmpdir/vol

# nbdkit, with what a sanitized plugin needs preloaded (see
# tests/nbd-server.h); the commands it runs (--run) go without.
nbdkit_()
{
	if [ -n "${THINMAP_NBDKIT_PRELOAD:-}" ]; then
		LD_PRELOAD="$THINMAP_NBDKIT_PRELOAD" \
			ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			nbdkit "$@"
	else
		nbdkit "$@"
	fi
}
unpreload='env -u LD_PRELOAD -u ASAN_OPTIONS'

# serve PARAMS.. : a throwaway server that runs nbdinfo --json on itself.
serve()
{
	expect_status 0 nbdkit_ -U - "$plugin" "$@" \
		--run "$unpreload nbdinfo --json \"\$uri\""
}

# refuse WHAT PARAMS.. : nbdkit exits nonzero, with an error naming WHAT.
refuse()
{
	local what=$1
	shift
	expect_status nonzero nbdkit_ -U - "$plugin" "$@" --run true
	expect_in "$tmpdir/err" "thinmap: $what"
}

# --help lists every parameter; --dump-plugin gives the versions.
expect_status 0 nbdkit_ "$plugin" --help
for p in dir create size capacity ag-count ag-size block-size readonly \
	cache-size page-size dirty-bytes dirty-ratio dirty-background-bytes \
	dirty-background-ratio dirty-expire writeback-interval backing-io \
	discard; do
	expect_in "$tmpdir/out" "^$p="
done
expect_status 0 nbdkit_ --dump-plugin "$plugin"
expect_in "$tmpdir/out" '^thinmap_version=[0-9]'
expect_in "$tmpdir/out" '^lmdb_version=[0-9]+\.[0-9]+'
expect_in "$tmpdir/out" '^liburing_version=[0-9]+\.[0-9]+'
expect_in "$tmpdir/out" '^libev_version=[0-9]+\.[0-9]+'
expect_in "$tmpdir/out" '^thread_model=parallel'

# Bad parameters, before any volume exists.
refuse "dir: required" create=true size=64M
refuse "cache-size: cannot parse '12Q'" "$vol" cache-size=12Q
refuse "foo: unknown parameter" "$vol" foo=1
refuse "create: cannot parse 'maybe'" "$vol" create=maybe
refuse "readonly: cannot parse" "$vol" readonly=2
refuse "size: cannot parse" "$vol" create=true size=-1
refuse "size: must not be zero" "$vol" create=true size=0
refuse "page-size: .* too large" "$vol" page-size=8G
refuse "ag-count: cannot parse" "$vol" create=true size=64M ag-count=4x
refuse "dirty-ratio: cannot be used with dirty-bytes" "$vol" \
	dirty-ratio=20 dirty-bytes=1M
refuse "dirty-background-ratio: cannot be used" "$vol" \
	dirty-background-ratio=5 dirty-background-bytes=1M
refuse "dirty-ratio: .* too large" "$vol" dirty-ratio=101
refuse "dirty-bytes: .* more than cache-size" "$vol" cache-size=16M \
	dirty-bytes=32M
refuse "dirty-background-bytes: .* more than dirty-bytes" "$vol" \
	dirty-bytes=8M dirty-background-bytes=9M
refuse "dirty-expire: cannot parse '1.2345'" "$vol" dirty-expire=1.2345
refuse "dirty-expire: cannot parse 'soon'" "$vol" dirty-expire=soon
refuse "writeback-interval: cannot parse '.'" "$vol" writeback-interval=.
refuse "writeback-interval: must not be zero" "$vol" writeback-interval=0
refuse "backing-io: cannot parse 'fast'" "$vol" backing-io=fast
refuse "discard: cannot parse 'no'" "$vol" discard=no
refuse "capacity: only used with create=true" "$vol" capacity=1G
refuse "readonly: cannot be used with create=true" "$vol" create=true \
	size=64M readonly=true
refuse "size: required to create a volume" "$vol" create=true
refuse "$vol: .*No such file" "$vol"
refuse "block-size" "$vol" create=true size=64M block-size=3000
[ ! -e "$vol" ] || fail "a refused create left $vol behind"
mkdir "$tmpdir/full" && touch "$tmpdir/full/x"
refuse "$tmpdir/full/meta.*no thinmap metadata.*$tmpdir/full is not empty" \
	"$tmpdir/full" create=true size=64M

# Create and serve in one command; then the volume is served as it is.
serve "$vol" create=true size=64M capacity=32M cache-size=16M \
	page-size=16K dirty-ratio=20 dirty-background-ratio=10 \
	dirty-expire=0.5 writeback-interval=0.25 backing-io=buffered \
	discard=ignore
expect_json "$tmpdir/out" 'j["exports"][0]["export-size"]' 67108864
expect_json "$tmpdir/out" 'j["exports"][0]["is_read_only"]' false
expect_json "$tmpdir/out" 'j["exports"][0]["can_multi_conn"]' true
expect_json "$tmpdir/out" 'j["exports"][0]["block_size_preferred"]' 4096
serve "dir=$vol" create=true size=64M
serve "$vol" size=64M dirty-bytes=64M dirty-background-bytes=1M \
	backing-io=auto discard=punch
refuse "size: the volume in $vol has size 67108864, not 33554432" \
	"$vol" create=true size=32M
refuse "block-size: the volume in $vol has block size 4096" \
	"$vol" create=true size=64M block-size=64K

# Read-only, both ways.
serve "$vol" readonly=true
expect_json "$tmpdir/out" 'j["exports"][0]["is_read_only"]' true
expect_status 0 nbdkit_ -r -U - "$plugin" "$vol" \
	--run "$unpreload nbdinfo --json \"\$uri\""
expect_json "$tmpdir/out" 'j["exports"][0]["is_read_only"]' true

# -D thinmap.verbose=1 logs each request.
expect_status 0 nbdkit_ -v -D thinmap.verbose=1 -U - "$plugin" "$vol" \
	--run "$unpreload nbdinfo --map \"\$uri\""
expect_in "$tmpdir/err" 'thinmap.*extents count=.* offset=0'

# A second server on a served volume refuses and names the first, also
# when the first has become a daemon (its lock was taken before the fork).
pidfile=$tmpdir/first.pid
nbdkit_ -U "$tmpdir/first.sock" -P "$pidfile" "$plugin" "$vol"
cleanup_fn 'kill "$(cat "'"$pidfile"'")" 2>/dev/null'
for ((i = 0; i < 600; i++)); do
	[ -s "$pidfile" ] && break
	sleep 0.1
done
[ -s "$pidfile" ] || fail "the first server did not start"
first=$(cat "$pidfile")
refuse "$vol: the volume is in use by another process \\(pid $first, nbdkit\\)" \
	"$vol"
serve "$vol" readonly=true	# needs no lock
kill "$first"
for ((i = 0; i < 600; i++)); do
	kill -0 "$first" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$first" 2>/dev/null && fail "the first server did not stop"
serve "$vol"
echo PASS
