#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Crashes through NBD: nbdkit serving a thinmap volume is killed with
# SIGKILL while a client is connected, and started again on the same
# directory.  The contract (DESIGN.md, "Durability and crash
# consistency"): what was written before a completed flush survives;
# writes after it may be lost, but each block reads as data that was
# written to it, or zeros where it was never written or was trimmed.
#
# Five rounds, each in its own 4M region of the volume, with its own
# patterns and server settings (default; fast writeback, so that
# unflushed data is partly written back before the kill; a 1M cache).
# In each, one qemu-io writes, trims and flushes, then writes and trims
# more without a flush, and sleeps; once every request has been
# answered, nbdkit is killed.  Then:
#   - thinmap check finds the volume clean, before and while it is
#     served again;
#   - qemu-io read -P finds all the flushed data, and zeros where the
#     flushed trim was;
#   - in a copy of the whole export (nbdcopy), each block the unflushed
#     requests touched holds either what it held before or what they
#     wrote, and everything outside the round's region is as it was
#     after the previous round.
# A last round kills nbdkit while qemu-io has batches of asynchronous
# writes in flight, after a flushed base: each block then holds the
# base or one of the patterns written over it.  Finally a clean restart
# serves exactly what the last crash left.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_plugin
requires qemu-io nbdcopy stdbuf truncate cmp "$PYTHON"
thinmap_served && requires "$THINMAP"

K=1024
M=$((1024 * 1024))
BS=4096
SIZE=$((32 * M))
vol="$tmpdir/vol"
uri=$(nbd_uri crash)

# The background qemu-io, killed at exit if it is still there.
qio_pid=
kill_qemu_io()
{
	local i
	[ -n "$qio_pid" ] || return 0
	kill -TERM "$qio_pid" 2>/dev/null || :
	for ((i = 0; i < 100; i++)); do
		_nbdkit_gone "$qio_pid" && break
		sleep 0.1
	done
	kill -KILL "$qio_pid" 2>/dev/null || :
	wait "$qio_pid" 2>/dev/null || :
	qio_pid=
}
cleanup_fn kill_qemu_io

# qemu_io CMD..: one qemu-io in the foreground; fail on any error.
qemu_io()
{
	local args=() c
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f raw -d unmap "${args[@]}" "$uri" >"$tmpdir/qemu-io.out" 2>&1 ||
		{ cat "$tmpdir/qemu-io.out"; fail "qemu-io"; }
	if grep -E -i 'fail|error' "$tmpdir/qemu-io.out"; then
		fail "qemu-io reported errors"
	fi
}

# qemu_io_bg CMD..: the same in the background, with its output
# line-buffered into $tmpdir/bg.out.
qemu_io_bg()
{
	local args=() c
	for c in "$@"; do
		args+=(-c "$c")
	done
	# Emptied here, not by the child's redirection: wait_replies must
	# not count the previous round's replies.
	: >"$tmpdir/bg.out"
	stdbuf -oL qemu-io -f raw -d unmap "${args[@]}" "$uri" \
		>>"$tmpdir/bg.out" 2>&1 </dev/null &
	qio_pid=$!
}

# wait_replies N SECONDS: wait until the background qemu-io has had N
# writes and trims answered.
wait_replies()
{
	local i n=0
	for ((i = 0; i < $2 * 10; i++)); do
		n=$(grep -c -E '^(wrote|discard) ' "$tmpdir/bg.out" || :)
		[ "$n" -ge "$1" ] && return 0
		_nbdkit_gone "$qio_pid" && break
		sleep 0.1
	done
	cat "$tmpdir/bg.out"
	fail "qemu-io had $n of $1 requests answered"
}

# check_blocks SNAP PREV SPEC..: SNAP (a copy of the export) against
# PREV (the copy after the previous round).  Each SPEC is
# "OFF LEN V1,V2,..": every block of that range must be filled with one
# of the byte values V (hex; "prev" stands for the block's contents in
# PREV, "any" for anything).  Blocks outside every SPEC must equal PREV.
check_blocks()
{
	local snap=$1 prev=$2
	shift 2
	"$PYTHON" - "$snap" "$prev" "$BS" "$@" <<'EOF' || fail "blocks of $snap"
import sys
snap = open(sys.argv[1], "rb").read()
prev = open(sys.argv[2], "rb").read()
bs = int(sys.argv[3])
assert len(snap) == len(prev), "size changed"
spec = {}
for s in sys.argv[4:]:
    off, n, vals = s.split()
    off, n = int(off), int(n)
    assert off % bs == 0 and n % bs == 0
    for b in range(off // bs, (off + n) // bs):
        spec.setdefault(b, set()).update(vals.split(","))
bad = 0
counts = {}
for b in range(len(snap) // bs):
    blk = snap[b * bs:(b + 1) * bs]
    old = prev[b * bs:(b + 1) * bs]
    if b not in spec:
        ok = blk == old
        what = "unchanged"
    else:
        ok = False
        for v in spec[b]:
            if v == "any":
                ok = True
                break
            if v == "prev":
                if blk == old:
                    ok = True
                    counts["prev"] = counts.get("prev", 0) + 1
                    break
            elif blk == bytes([int(v, 16)]) * bs:
                ok = True
                counts[v] = counts.get(v, 0) + 1
                break
        what = "one of " + ",".join(sorted(spec[b]))
    if not ok:
        bad += 1
        if bad <= 10:
            print("  block %d (offset %d): %s..., expected %s"
                  % (b, b * bs, blk[:8].hex(), what))
print("  blocks of the ranges given, by contents:",
      " ".join("%s:%d" % kv for kv in sorted(counts.items())))
if bad:
    print("  %d bad blocks" % bad)
    sys.exit(1)
EOF
}

# snapshot FILE: copy the whole export to FILE.
snapshot()
{
	rm -f "$1"
	nbdcopy "$uri" "$1" || fail "nbdcopy of the export"
}

# check_volume: thinmap check exits 0.
check_volume()
{
	if thinmap_served; then
		expect_status 0 "$THINMAP" check "$vol"
	fi
}

# recover PARAM..: after a kill, check the volume and serve it again.
recover()
{
	kill_qemu_io
	check_volume
	start_thinmap crash "$vol" create=true size="$SIZE" "$@"
	check_volume
}

truncate -s "$SIZE" "$tmpdir/prev.img"
params=(
	""
	"dirty-expire=0.1 writeback-interval=0.1"
	"cache-size=1M dirty-bytes=256K"
	"dirty-expire=0.1 writeback-interval=0.1"
	""
)
start_thinmap crash "$vol" create=true size="$SIZE"
stop_nbdkit crash

for r in 1 2 3 4 5; do
	R=$(((r - 1) * 4 * M))
	P=$(printf '%02x' $((0x10 + r)))
	Q=$(printf '%02x' $((0x20 + r)))
	read -r -a p <<<"${params[r - 1]}"
	echo "== round $r: base 0x$P, unflushed 0x$Q, at $R; ${p[*]:-defaults}"
	start_thinmap crash "$vol" create=true size="$SIZE" "${p[@]}"
	t0=$SECONDS
	cmds=(
		# Flushed.
		"write -P 0x$P $R $M"
		"write -P 0x$P $((R + M + 100)) 50000"
		"discard $((R + 512 * K)) $((64 * K))"
		"flush"
		# Not flushed: over flushed data, into a hole, a trim.
		"write -P 0x$Q $((R + 768 * K)) $((256 * K))"
		"write -P 0x$Q $((R + M + 512 * K)) $((512 * K))"
		"discard $((R + 256 * K)) $((64 * K))"
		"sleep 60000"
	)
	qemu_io_bg "${cmds[@]}"
	wait_replies 6 60
	# With fast writeback, give it time to write some of it back.
	case ${p[*]} in *dirty-expire*) sleep 0.5 ;; esac
	crash_nbdkit crash
	recover "${p[@]}"

	# The flushed data, as a user would check it.
	qemu_io "read -P 0x$P $R $((256 * K))" \
		"read -P 0x$P $((R + 320 * K)) $((192 * K))" \
		"read -P 0 $((R + 512 * K)) $((64 * K))" \
		"read -P 0x$P $((R + 576 * K)) $((192 * K))" \
		"read -P 0x$P $((R + M + 100)) 50000"
	# Every block.
	snapshot "$tmpdir/snap.img"
	check_blocks "$tmpdir/snap.img" "$tmpdir/prev.img" \
		"$R $((256 * K)) $P" \
		"$((R + 256 * K)) $((64 * K)) $P,00" \
		"$((R + 320 * K)) $((192 * K)) $P" \
		"$((R + 512 * K)) $((64 * K)) 00" \
		"$((R + 576 * K)) $((192 * K)) $P" \
		"$((R + 768 * K)) $((256 * K)) $P,$Q" \
		"$((R + M)) $((52 * K)) any" \
		"$((R + M + 52 * K)) $((460 * K)) prev" \
		"$((R + M + 512 * K)) $((512 * K)) 00,$Q"
	# The blocks of the unaligned flushed write, byte for byte.
	cmp -i "$((R + M)):0" -n $((52 * K)) "$tmpdir/snap.img" <(
		head -c 100 /dev/zero
		head -c 50000 /dev/zero | tr '\0' "\\$(printf '%03o' $((0x$P)))"
		head -c $((52 * K - 50100)) /dev/zero) ||
		fail "round $r: the flushed unaligned write"
	mv "$tmpdir/snap.img" "$tmpdir/prev.img"
	stop_nbdkit crash
	echo "== round $r: $((SECONDS - t0))s"
done

echo "== round 6: kill -9 under a write load"
R=$((20 * M))
LOAD=$((2 * M))
start_thinmap crash "$vol" create=true size="$SIZE" \
	cache-size=2M dirty-bytes=1M dirty-expire=0.1 writeback-interval=0.1
t0=$SECONDS
qemu_io "write -P 0x60 $R $LOAD" "flush"
snapshot "$tmpdir/prev.img"
# 64 batches of 16 asynchronous 64K writes, each batch over the whole
# load region in its own order and with its own pattern; a flush every
# 8 batches.  Every block may end up with the base or any pattern.
cmds=() vals=60 n=0
for ((b = 0; b < 64; b++)); do
	pat=$(printf '%02x' $((0x61 + b % 16)))
	case ,$vals, in *,$pat,*) ;; *) vals+=",$pat" ;; esac
	for ((i = 0; i < 16; i++)); do
		off=$((R + ((i * 7 + b) % 16) * 128 * K))
		cmds+=("aio_write -P 0x$pat $off $((64 * K))")
		n=$((n + 1))
	done
	cmds+=("aio_flush")
	((b % 8 != 7)) || cmds+=("flush")
done
cmds+=("sleep 60000")
qemu_io_bg "${cmds[@]}"
# Kill it a third of the way through.
wait_replies $((n / 3)) 60
crash_nbdkit crash
grep -c -E '^wrote ' "$tmpdir/bg.out" |
	sed 's/^/  writes answered before the kill: /'
recover cache-size=2M
snapshot "$tmpdir/snap.img"
check_blocks "$tmpdir/snap.img" "$tmpdir/prev.img" \
	"$R $LOAD prev,$vals"
qemu_io "read -P 0x$(printf '%02x' $((0x10 + 1))) 0 $((256 * K))" \
	"read -P 0x$(printf '%02x' $((0x10 + 5))) $((16 * M)) $((256 * K))"
stop_nbdkit crash
echo "== round 6: $((SECONDS - t0))s"

echo "== a clean restart serves what the last crash left"
check_volume
start_thinmap crash "$vol"
rm -f "$tmpdir/final.img"
nbdcopy "$uri" "$tmpdir/final.img" || fail "nbdcopy"
cmp "$tmpdir/snap.img" "$tmpdir/final.img" ||
	fail "the export changed across a clean restart"
stop_nbdkit crash
check_volume
echo "PASS"
