#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# qemu-io against a real nbdkit serving a thinmap volume: writes with
# patterns, write zeroes with and without unmap (NBD_CMD_FLAG_NO_HOLE),
# fast zero, trim, FUA writes, batches of asynchronous writes and
# flushes, at block-aligned and unaligned offsets, down to 3-byte writes
# across a page boundary.
#
# The same commands are applied to a local file, the model (qemu's own
# raw file driver).  The one place the two may differ is an unaligned
# trim, which NBD leaves undefined: thinmap leaves the partial blocks at
# its edges as they were and zeroes the blocks it covers fully, so that
# is what the model does there.  Then:
#   - every byte of every region touched reads, with qemu-io read -P,
#     the pattern the model has there (zeros where zeroed or trimmed);
#   - qemu-img compare finds the whole export identical to the model;
#   - qemu-img map shows zeroed ranges as zero, trimmed and unmapped
#     ranges as holes, write zeroes without unmap as allocated zeros
#     (UNWRITTEN), and the untouched tail as a hole;
#   - after nbdkit is stopped and started again, all of that again, and
#     thinmap check finds the volume clean.
# Run twice: with the default cache, and with a 1M cache whose dirty
# limit is a fraction of what is written, so that writeback and eviction
# happen in the middle of the commands.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_plugin
requires qemu-io qemu-img truncate "$PYTHON"
thinmap_served && requires "$THINMAP"

K=1024
M=$((1024 * 1024))
BS=4096
SIZE=$((64 * M))

# The commands, in order.  An entry "EXPORT-CMD|MODEL-CMD" sends
# EXPORT-CMD to the server and MODEL-CMD to the model.
ops=(
	# Aligned and unaligned writes; a 3-byte write across the 128K
	# page boundary; a FUA write over 3 pages; an overwrite inside it.
	"write -P 0xab 0 $((64 * K))"
	"write -P 0xcd 70000 5000"
	"write -P 0xef $((128 * K - 1)) 3"
	"write -f -P 0x5a 200000 300000"
	"write -P 0x5b 250000 1000"
	"flush"

	# Write zeroes without unmap: allocated zeros.  Aligned, unaligned,
	# fast zero (NBD_CMD_FLAG_FAST_ZERO: thinmap zeroes by metadata only,
	# so it always takes it), and on a hole.
	"write -P 0x11 $((1 * M)) $((512 * K))"
	"write -z $((1 * M + 64 * K)) $((64 * K))"
	"write -z $((1 * M + 200000)) 10000"
	"$(thinmap_served && echo "write -z -n" || echo "write -z") $((1 * M + 256 * K)) $((8 * K))|write -z $((1 * M + 256 * K)) $((8 * K))"
	"write -z $((1 * M + 768 * K)) $((64 * K))"

	# Write zeroes with unmap: holes.  Aligned and unaligned.
	"write -P 0x22 $((2 * M)) $((512 * K))"
	"write -z -u $((2 * M + 64 * K)) $((64 * K))"
	"write -z -u $((2 * M + 300000)) 20000"

	# Trim: aligned, unaligned, on a hole; then a write into the
	# trimmed range.
	"write -P 0x33 $((3 * M)) $((512 * K))"
	"discard $((3 * M + 64 * K)) $((64 * K))"
	"discard $((3 * M + 200000)) 30000|UNALIGNED_TRIM $((3 * M + 200000)) 30000"
	"discard $((3 * M + 600 * K)) $((64 * K))"
	"write -P 0x34 $((3 * M + 68 * K)) $((4 * K))"
	"flush"

	# Batches of asynchronous writes, each batch free of overlaps (their
	# order is not defined), some adjacent and unaligned in one block;
	# the second batch overwrites parts of the first.
	"aio_write -P 0x41 $((4 * M)) $((64 * K))"
	"aio_write -P 0x42 $((4 * M + 64 * K)) $((64 * K))"
	"aio_write -P 0x43 $((5 * M)) 5000"
	"aio_write -P 0x44 $((5 * M + 5000)) 7000"
	"aio_write -P 0x45 $((5 * M + 12000)) 100"
	"aio_write -P 0x46 $((5 * M + 12100)) $((64 * K - 12100))"
	"aio_write -P 0x47 $((6 * M + 1)) $((256 * K))"
	"aio_write -z $((7 * M)) $((64 * K))"
	"aio_flush"
	"aio_write -P 0x48 $((4 * M + 32 * K)) $((64 * K))"
	"aio_write -P 0x49 $((5 * M + 4000)) 3000"
	"aio_write -z -u $((6 * M + 64 * K)) $((64 * K))"
	"aio_write -f -P 0x4a $((7 * M + 4 * K)) $((8 * K))"
	"aio_flush"
	"flush"

	# A write of 16M, much more than the small cache; then holes in it.
	"write -P 0x66 $((8 * M)) $((16 * M))"
	"discard $((12 * M)) $((4 * M))"
	"write -z -u $((18 * M)) $((2 * M))"
	"write -z $((20 * M)) $((1 * M))"
	"write -P 0x67 $((23 * M + 100)) $((2 * M))"
	"flush"
)

# The ranges to read back with read -P (every byte of them), and the
# ranges qemu-img map must show as [data, zero].
regions=(
	"0 $((1 * M))"
	"$((1 * M)) $((1 * M))"
	"$((2 * M)) $((1 * M))"
	"$((3 * M)) $((1 * M))"
	"$((4 * M)) $((4 * M))"
	"$((8 * M)) $((18 * M))"
)
maps=(
	"$((1 * M + 64 * K)) $((64 * K)) true true"	# zeroed, allocated
	"$((2 * M + 64 * K)) $((64 * K)) false true"	# zeroed with unmap
	"$((3 * M + 64 * K)) $((4 * K)) false true"	# trimmed
	"$((3 * M + 72 * K)) $((56 * K)) false true"
	"$((6 * M + 64 * K)) $((64 * K)) false true"	# aio zero with unmap
	"$((12 * M)) $((4 * M)) false true"
	"$((18 * M)) $((2 * M)) false true"
	"$((20 * M)) $((1 * M)) true true"
	"$((4 * M)) $((128 * K)) true false"		# data
	"$((26 * M)) $((SIZE - 26 * M)) false true"	# never written
)

# qemu_io URI CMD..: run the commands in one qemu-io; fail on any error
# or pattern mismatch.
qemu_io()
{
	local uri=$1 args=() c
	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f raw -d unmap "${args[@]}" "$uri" >"$tmpdir/qemu-io.out" 2>&1 || {
		grep -v -E '^(read|wrote|discard|[0-9.]+ [KMG]?i?B,)' \
			"$tmpdir/qemu-io.out" | head -n 40
		fail "qemu-io on $uri"
	}
	if grep -E -i 'fail|error|mismatch' "$tmpdir/qemu-io.out"; then
		fail "qemu-io on $uri reported errors"
	fi
}

# The partial blocks at the edges of a trim keep their data (thinmap);
# nbdkit's file plugin punches the exact range.
unaligned_trim()
{
	local off=$1 len=$2 a b
	if ! thinmap_served; then
		echo "write -z $off $len"
		return
	fi
	a=$(((off + BS - 1) / BS * BS))
	b=$(((off + len) / BS * BS))
	[ "$b" -le "$a" ] || echo "write -z $a $((b - a))"
}

export_cmds=() model_cmds=()
for op in "${ops[@]}"; do
	e=${op%%|*} m=${op#*|}
	case $m in
	UNALIGNED_TRIM*) m=$(unaligned_trim ${m#UNALIGNED_TRIM }) ;;
	esac
	export_cmds+=("$e")
	[ -z "$m" ] || model_cmds+=("$m")
done

# read_cmds MODEL: read -P commands checking every byte of the regions
# against MODEL, one command per run of equal bytes.
read_cmds()
{
	local r
	for r in "${regions[@]}"; do
		echo "$r"
	done | "$PYTHON" -c '
import re, sys
data = open(sys.argv[1], "rb").read()
for line in sys.stdin:
    off, n = map(int, line.split())
    for m in re.finditer(rb"(.)\1*", data[off:off + n], re.S):
        print("read -P 0x%02x %d %d" % (m.group()[0], off + m.start(), len(m.group())))
' "$1"
}

# check_map URI: the ranges of $maps have the states given.
check_map()
{
	local m
	qemu-img map --output=json -f raw "$1" >"$tmpdir/map.json" ||
		fail "qemu-img map $1"
	for m in "${maps[@]}"; do
		echo "$m"
	done | "$PYTHON" -c '
import json, sys
ext = json.load(open(sys.argv[1]))
bad = 0
for line in sys.stdin:
    off, n, data, zero = line.split()
    off, n = int(off), int(n)
    want = (data == "true", zero == "true")
    for e in ext:
        s, l = e["start"], e["length"]
        if s < off + n and off < s + l and (e["data"], e["zero"]) != want:
            print("  map: %d+%d is data=%s zero=%s, expected %d+%d data=%s zero=%s"
                  % (s, l, e["data"], e["zero"], off, n, data, zero))
            bad = 1
sys.exit(bad)
' "$tmpdir/map.json" || fail "qemu-img map of the export"
	echo "  ok: qemu-img map: ${#maps[@]} ranges as expected"
}

# check_export NAME MODEL: the export reads as MODEL.
check_export()
{
	local uri cmds
	uri=$(nbd_uri "$1")
	mapfile -t cmds < <(read_cmds "$2")
	echo "+ qemu-io: ${#cmds[@]} read -P commands over ${#regions[@]} regions"
	qemu_io "$uri" "${cmds[@]}"
	[ "$(grep -c '^read ' "$tmpdir/qemu-io.out")" -eq "${#cmds[@]}" ] ||
		fail "qemu-io did not run every read"
	expect_status 0 qemu-img compare -f raw -F raw "$2" "$uri"
	expect_in "$tmpdir/out" 'Images are identical'
	thinmap_served && check_map "$uri"
	:
}

# run NAME PARAM..: the whole sequence on a new volume served with
# PARAM..
run()
{
	local name=$1 vol="$tmpdir/vol-$1" model="$tmpdir/model-$1.img" t0
	shift
	echo "== $name: $*"
	t0=$SECONDS
	truncate -s "$SIZE" "$model"
	qemu_io "$model" "${model_cmds[@]}"
	start_thinmap "$name" "$vol" create=true size="$SIZE" "$@"
	qemu_io "$(nbd_uri "$name")" "${export_cmds[@]}"
	[ "$(grep -c -E '^(wrote|discard) ' "$tmpdir/qemu-io.out")" -eq \
		"$(printf '%s\n' "${export_cmds[@]}" | grep -c -E '^(aio_)?(write|discard) ')" ] ||
		fail "qemu-io did not complete every write"
	check_export "$name" "$model"

	echo "== $name: restart"
	stop_nbdkit "$name"
	if thinmap_served; then
		expect_status 0 "$THINMAP" check "$vol"
	fi
	start_thinmap "$name" "$vol"
	check_export "$name" "$model"
	stop_nbdkit "$name"
	if thinmap_served; then
		expect_status 0 "$THINMAP" check "$vol"
	fi
	echo "== $name: $((SECONDS - t0))s"
}

run default
if thinmap_served; then
	run smallcache cache-size=1M dirty-bytes=256K
fi
echo "PASS"
