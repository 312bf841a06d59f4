#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# thinmap(8): create, info, check and map of fresh volumes; the default
# geometry; and every kind of bad argument, which must exit 2 with a
# message naming the option, without leaving anything behind.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires "$THINMAP" "$PYTHON" du stat

M=$((1024 * 1024))
G=$((1024 * M))

# info_json DIR: `thinmap info DIR --json` into $tmpdir/info.json.
info_json()
{
	expect_status 0 "$THINMAP" info "$1" --json
	cp "$tmpdir/out" "$tmpdir/info.json"
}

# expect_geometry SIZE CAPACITY AG_COUNT AG_SIZE [CREATE OPTIONS..]: a
# volume created with the options has exactly that geometry.
n=0
expect_geometry()
{
	local size=$1 capacity=$2 ag_count=$3 ag_size=$4 dir
	shift 4
	dir="$tmpdir/geo$((n++))"
	expect_status 0 "$THINMAP" create "$dir" "$@"
	info_json "$dir"
	expect_json "$tmpdir/info.json" 'j["size"]' "$size"
	expect_json "$tmpdir/info.json" 'j["capacity"]' "$capacity"
	expect_json "$tmpdir/info.json" 'j["ag_count"]' "$ag_count"
	expect_json "$tmpdir/info.json" 'j["ag_size"]' "$ag_size"
	rm -rf "$dir"
}

# expect_usage_error RE ARGS..: thinmap ARGS exits 2 with a message on
# stderr that matches RE.
expect_usage_error()
{
	local re=$1
	shift
	expect_status 2 "$THINMAP" "$@"
	expect_in "$tmpdir/err" "$re"
}

vol="$tmpdir/vol"

echo "== create a volume"
expect_status 0 "$THINMAP" create "$vol" --size 64M --capacity 32M
test -f "$vol/meta/data.mdb" || fail "no meta/data.mdb"
for ag in 0 1; do
	f="$vol/ag-$ag.data"
	test -f "$f" || fail "no $f"
	[ "$(stat -c %s "$f")" -eq $((16 * M)) ] ||
		fail "$f: apparent size $(stat -c %s "$f"), expected 16M"
	[ "$(du -k "$f" | cut -f1)" -le 64 ] || fail "$f is not sparse"
done
test ! -e "$vol/ag-2.data" || fail "ag-2.data: too many AGs"

echo "== info"
expect_status 0 "$THINMAP" info "$vol"
expect_in "$tmpdir/out" '^uuid: [0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$'
expect_in "$tmpdir/out" '^format version: 1$'
expect_in "$tmpdir/out" "^virtual size: $((64 * M)) \(64(\.0)?M\)$"
expect_in "$tmpdir/out" '^block size: 4096 '
expect_in "$tmpdir/out" '^AG count: 2$'
expect_in "$tmpdir/out" "^AG size: $((16 * M)) "
expect_in "$tmpdir/out" "^capacity: $((32 * M)) "
expect_in "$tmpdir/out" '^allocated: 0 '
expect_in "$tmpdir/out" "^free: $((32 * M)) "
expect_in "$tmpdir/out" '^extents: 0$'
uuid="$(sed -n 's/^uuid: //p' "$tmpdir/out")"

echo "== info --json"
info_json "$vol"
expect_json "$tmpdir/info.json" 'j["uuid"]' "$uuid"
expect_json "$tmpdir/info.json" 'j["format_version"]' 1
expect_json "$tmpdir/info.json" 'j["size"]' $((64 * M))
expect_json "$tmpdir/info.json" 'j["block_size"]' 4096
expect_json "$tmpdir/info.json" 'j["ag_count"]' 2
expect_json "$tmpdir/info.json" 'j["ag_size"]' $((16 * M))
expect_json "$tmpdir/info.json" 'j["capacity"]' $((32 * M))
expect_json "$tmpdir/info.json" 'j["free"]' $((32 * M))
expect_json "$tmpdir/info.json" \
	'[j[k] for k in ("allocated", "mapped", "unwritten", "extents",
	 "mean_extent_length")]' '[0, 0, 0, 0, 0]'
expect_json "$tmpdir/info.json" 'len(j)' 13

echo "== map of a fresh volume is empty"
expect_status 0 "$THINMAP" map "$vol"
[ "$(wc -l <"$tmpdir/out")" -eq 1 ] || fail "map: expected only a header"
expect_in "$tmpdir/out" '^start +length +state +ag +ag offset$'
expect_status 0 "$THINMAP" map --json "$vol"
expect_json "$tmpdir/out" 'j' '[]'

echo "== check of a fresh volume is clean"
expect_status 0 "$THINMAP" check "$vol"
expect_in "$tmpdir/out" '^0 records, 0 problems$'
expect_status 0 "$THINMAP" check "$vol" --json
expect_json "$tmpdir/out" 'j' '{"records": 0, "problems": [], "clean": true}'

echo "== creating over an existing volume fails and keeps it"
expect_status 1 "$THINMAP" create "$vol" --size 1G
expect_in "$tmpdir/err" "^thinmap create: $vol: "
info_json "$vol"
expect_json "$tmpdir/info.json" 'j["uuid"]' "$uuid"
expect_json "$tmpdir/info.json" 'j["size"]' $((64 * M))
mkdir "$tmpdir/nonempty"
touch "$tmpdir/nonempty/file"
expect_status 1 "$THINMAP" create "$tmpdir/nonempty" --size 64M
test ! -e "$tmpdir/nonempty/meta" || fail "create wrote into a non-empty dir"

echo "== an empty directory may be used"
mkdir "$tmpdir/empty"
expect_status 0 "$THINMAP" create "$tmpdir/empty" --size 64M

echo "== default geometry"
expect_geometry $((64 * M)) $((64 * M)) 4 $((16 * M)) --size 64M
expect_geometry $((64 * M)) $((32 * M)) 2 $((16 * M)) \
	--size 64M --capacity 32M
expect_geometry $((1 * G)) $((1 * G)) 4 $((256 * M)) --size 1G
expect_geometry $((1024 * G)) $((64 * G)) 4 $((16 * G)) \
	--size 1T --capacity 64G
dir="$tmpdir/big"
expect_status 0 "$THINMAP" create "$dir" --size 100G
info_json "$dir"
expect_json "$tmpdir/info.json" 'j["ag_count"]' 7
expect_json "$tmpdir/info.json" \
	"j['ag_size'] <= 16 * 2**30 and j['ag_size'] % 4096 == 0 and
	 j['capacity'] == 7 * j['ag_size'] >= 100 * 2**30" true
rm -rf "$dir"

echo "== --ag-count and --ag-size"
expect_geometry $((1 * G)) $((48 * M)) 3 $((16 * M)) \
	--size 1G --ag-count 3 --ag-size 16M
expect_geometry $((1 * G)) $((64 * M)) 2 $((32 * M)) \
	--size 1G --capacity 64M --ag-count 2
expect_geometry $((1 * G)) $((64 * M)) 4 $((16 * M)) \
	--size 1G --capacity 64M --ag-size 16M
expect_geometry $((1 * G)) $((64 * M)) 2 $((32 * M)) \
	--size 1G --capacity 64M --ag-count 2 --ag-size 32M

echo "== block sizes"
for arg_bytes in 512:512 65536:65536 64K:65536; do
	bs=${arg_bytes%:*}
	dir="$tmpdir/bs$bs"
	expect_status 0 "$THINMAP" create "$dir" --size 64M --block-size "$bs"
	info_json "$dir"
	expect_json "$tmpdir/info.json" 'j["block_size"]' ${arg_bytes#*:}
	expect_status 0 "$THINMAP" check "$dir"
	rm -rf "$dir"
done
for bs in 1000 131072 256 0 4097; do
	expect_usage_error '--block-size: ' \
		create "$tmpdir/bs$bs" --size 64M --block-size $bs
	test ! -e "$tmpdir/bs$bs" || fail "a refused create left bs$bs"
done

echo "== bad arguments exit 2 and name the option"
bad="$tmpdir/bad"
expect_usage_error "'--frobnicate'" create "$bad" --size 64M --frobnicate
expect_usage_error "'--frobnicate'" info "$vol" --frobnicate
expect_usage_error "'--frobnicate'" check "$vol" --frobnicate
expect_usage_error "'--frobnicate'" map "$vol" --frobnicate
expect_usage_error "'--size'" info "$vol" --size 1G
expect_usage_error "--size is required" create "$bad"
expect_usage_error "--size: invalid size 'abc'" create "$bad" --size abc
expect_usage_error "--size: invalid size '-1'" create "$bad" --size -1
expect_usage_error "--size: invalid size '1Q'" create "$bad" --size 1Q
expect_usage_error "--size: invalid size ''" create "$bad" --size ''
expect_usage_error "--size" create "$bad" --size 0
expect_usage_error "--size" create "$bad" --size 99999999E
expect_usage_error "'--size' requires an argument" create "$bad" --size
expect_usage_error "--capacity: invalid size 'x'" \
	create "$bad" --size 64M --capacity x
expect_usage_error "--ag-size: invalid size '1.5G'" \
	create "$bad" --size 64M --ag-size 1.5G
expect_usage_error "--ag-count: invalid number 'two'" \
	create "$bad" --size 64M --ag-count two
expect_usage_error "--ag-count: invalid number '-2'" \
	create "$bad" --size 64M --ag-count -2
expect_usage_error '--(capacity|ag-count|ag-size): ' \
	create "$bad" --size 64M --capacity 32M --ag-count 3 --ag-size 16M
for cmd in create info check map; do
	expect_usage_error 'missing DIR' $cmd
	expect_usage_error "unexpected argument 'extra'" $cmd "$vol" extra
done
expect_usage_error "missing COMMAND"
expect_usage_error "unknown command 'frob'" frob "$vol"
expect_usage_error "unknown option '--frob'" --frob
test ! -e "$bad" || fail "a refused create left $bad behind"

echo "== a directory that holds no volume"
mkdir "$tmpdir/novol"
for dir in "$tmpdir/novol" "$tmpdir/missing"; do
	for cmd in info map; do
		expect_status 1 "$THINMAP" $cmd "$dir"
		expect_in "$tmpdir/err" "^thinmap $cmd: ${dir}[/:].+"
	done
	expect_status 2 "$THINMAP" check "$dir"
	expect_in "$tmpdir/err" "^thinmap check: ${dir}[/:].+"
	expect_status 2 "$THINMAP" check --json "$dir"
	[ ! -s "$tmpdir/out" ] || fail "check --json printed JSON on error"
done

echo "== --help and --version"
expect_status 0 "$THINMAP" --help
for cmd in create info check map; do
	expect_in "$tmpdir/out" "^  $cmd +DIR"
done
expect_status 0 "$THINMAP" --version
expect_in "$tmpdir/out" '^thinmap [0-9]'
expect_status 0 "$THINMAP" create --help
for opt in size capacity ag-count ag-size block-size help; do
	expect_in "$tmpdir/out" "--$opt"
done
for cmd in info check map; do
	expect_status 0 "$THINMAP" $cmd --help
	expect_in "$tmpdir/out" "^Usage: thinmap $cmd DIR"
	expect_in "$tmpdir/out" '--json'
	expect_in "$tmpdir/out" '--help'
done

echo "PASS"
