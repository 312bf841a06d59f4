#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# `thinmap check` finds damage written on purpose.
#
# Extent records are written straight into the volume's LMDB environment
# with mdb_load, in the format of include/thinmap/meta.h: database
# "extents", key the 8-byte big-endian logical block, value 16 bytes
# little-endian: u64 pblk (AG << 32 | block in AG), u32 len, u8 state
# (1 MAPPED, 2 UNWRITTEN), 3 zero bytes.  Each damaged volume must make
# check exit 1 naming the problem, and info and map refuse it cleanly.
# Then the LMDB file itself is damaged, and check must exit 2.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires "$THINMAP" "$PYTHON" mdb_load mdb_dump dd truncate

# Every volume: 64M virtual = 16384 blocks of 4K; 2 AGs of 4096 blocks.
MAPPED=1
UNWRITTEN=2

# le VALUE BYTES: VALUE as BYTES little-endian bytes, in hex.
le()
{
	local hex out='' i
	hex=$(printf '%0*x' $(($2 * 2)) "$1")
	for ((i = ${#hex} - 2; i >= 0; i -= 2)); do
		out+=${hex:i:2}
	done
	echo "$out"
}

# rec LBLK AG AGBNO LEN STATE: one record, as mdb_load input.
rec()
{
	printf ' %016x\n %s%s%s%s000000\n' "$1" \
		"$(le "$3" 4)" "$(le "$2" 4)" "$(le "$4" 4)" "$(le "$5" 1)"
}

# raw LBLK HEXVALUE: a record with any value, as mdb_load input.
raw()
{
	printf ' %016x\n %s\n' "$1" "$2"
}

# new_volume NAME RECORDS: create a volume $tmpdir/NAME and load the
# mdb_load records RECORDS (rec/raw output) into its "extents" database.
# The header comes from mdb_dump of the new, empty database, so the
# database flags and map size are the library's own.
new_volume()
{
	vol="$tmpdir/$1"
	"$THINMAP" create "$vol" --size 64M --capacity 32M >/dev/null
	{
		mdb_dump -s extents "$vol/meta" |
			sed '/^DATA=END$/d; /^db_pagesize=/d'
		printf '%s\n' "$2"
		echo "DATA=END"
	} >"$tmpdir/load"
	mdb_load -s extents -f "$tmpdir/load" "$vol/meta" ||
		fail "mdb_load into $vol/meta"
}

# expect_refused: info and map refuse $vol with a message, no crash.
expect_refused()
{
	local cmd
	for cmd in info map; do
		expect_status 1 "$THINMAP" $cmd "$vol"
		expect_in "$tmpdir/err" "^thinmap $cmd: ${vol}[/:].+"
	done
}

# expect_damage NAME LBLK RE RECORDS: a volume with RECORDS has a problem
# at LBLK whose message matches RE (case-insensitive), in text and JSON.
expect_damage()
{
	local name=$1 lblk=$2 re=$3
	echo "== $name"
	new_volume "$name" "$4"
	expect_status 1 "$THINMAP" check "$vol"
	grep -Eiq "^lblk $lblk: .*($re)" "$tmpdir/out" ||
		fail "$name: no problem at lblk $lblk matching '$re'"
	expect_in "$tmpdir/out" '^[0-9]+ records, [1-9][0-9]* problems$'
	expect_status 1 "$THINMAP" check --json "$vol"
	expect_json "$tmpdir/out" 'j["clean"]' false
	expect_json "$tmpdir/out" \
		"any(p['lblk'] == $lblk for p in j['problems'])" true
	expect_refused
}

echo "== a clean set of records"
new_volume clean "$(
	rec 0 0 0 16 $MAPPED
	rec 100 0 16 8 $UNWRITTEN
	rec 1000 1 0 32 $MAPPED
)"
expect_status 0 "$THINMAP" check "$vol"
expect_in "$tmpdir/out" '^3 records, 0 problems$'
expect_status 0 "$THINMAP" check --json "$vol"
expect_json "$tmpdir/out" 'j' '{"records": 3, "problems": [], "clean": true}'
expect_status 0 "$THINMAP" map "$vol"
expect_in "$tmpdir/out" '^0 +65536 +mapped +0 +0$'
expect_in "$tmpdir/out" '^409600 +32768 +unwritten +0 +65536$'
expect_in "$tmpdir/out" '^4096000 +131072 +mapped +1 +0$'
expect_status 0 "$THINMAP" map --json "$vol"
expect_json "$tmpdir/out" 'len(j)' 3
expect_json "$tmpdir/out" 'list(j[0])' \
	'["start", "length", "state", "ag", "ag_offset"]'
expect_json "$tmpdir/out" 'list(j[0].values())' '[0, 65536, "mapped", 0, 0]'
expect_json "$tmpdir/out" 'list(j[1].values())' \
	'[409600, 32768, "unwritten", 0, 65536]'
expect_json "$tmpdir/out" 'list(j[2].values())' \
	'[4096000, 131072, "mapped", 1, 0]'
expect_status 0 "$THINMAP" info --json "$vol"
expect_json "$tmpdir/out" \
	'[j[k] for k in ("mapped", "unwritten", "allocated", "extents",
	 "mean_extent_length", "free")]' \
	"[$((48 * 4096)), $((8 * 4096)), $((56 * 4096)), 3, \
$((56 * 4096 / 3)), $(((8192 - 56) * 4096))]"

echo "== check runs while other readers hold the volume"
pids=()
for i in 1 2 3 4; do
	"$THINMAP" check "$vol" >"$tmpdir/par$i" 2>&1 &
	pids+=($!)
done
"$THINMAP" info "$vol" >/dev/null
mdb_stat -a "$vol/meta" >/dev/null
for i in 1 2 3 4; do
	wait "${pids[i - 1]}" || fail "concurrent check $i: exit $?"
	expect_in "$tmpdir/par$i" '^3 records, 0 problems$'
done

expect_damage overlap 8 'also mapped by the record at logical block 0' "$(
	rec 0 0 0 16 $MAPPED
	rec 8 0 100 16 $MAPPED
)"
expect_damage shared 1000 'block 8 is mapped twice' "$(
	rec 0 0 0 16 $MAPPED
	rec 1000 0 8 16 $UNWRITTEN
)"
expect_damage past-size 16380 'past the virtual size' "$(
	rec 0 0 0 16 $MAPPED
	rec 16380 0 16 16 $MAPPED
)"
expect_damage outside-ag 0 'past the end of its AG' "$(
	rec 0 0 4090 16 $MAPPED
)"
expect_damage no-such-ag 32 'AG does not exist' "$(
	rec 32 5 0 16 $MAPPED
)"
expect_damage bad-state 0 'state is neither mapped nor unwritten' "$(
	rec 0 0 0 16 7
)"
expect_damage zero-length 0 'length is not' "$(
	rec 0 0 0 0 $MAPPED
)"
expect_damage short-value 0 'value is not 16 bytes' "$(
	raw 0 "$(le 0 8)$(le 16 4)"
)"

echo "== a missing AG file"
new_volume noag "$(rec 0 0 0 16 $MAPPED)"
rm "$vol/ag-1.data"
expect_status 1 "$THINMAP" check "$vol"
expect_in "$tmpdir/out" 'ag-1'

echo "== damaged LMDB meta pages"
new_volume garbage "$(rec 0 0 0 16 $MAPPED)"
yes 'thinmap garbage' | head -c 8192 |
	dd of="$vol/meta/data.mdb" conv=notrunc status=none
expect_refused
expect_status 2 "$THINMAP" check "$vol"
expect_in "$tmpdir/err" "^thinmap check: ${vol}[/:].+"

for len in 0 8192; do
	echo "== data.mdb truncated to $len bytes"
	new_volume "trunc$len" "$(
		for ((i = 0; i < 400; i++)); do
			rec $((i * 20)) $((i % 2)) $(((i / 2) * 16)) 16 $MAPPED
		done
	)"
	truncate -s $len "$vol/meta/data.mdb"
	expect_refused
	expect_status 2 "$THINMAP" check "$vol"
	expect_in "$tmpdir/err" "^thinmap check: ${vol}[/:].+"
done

echo "PASS"
