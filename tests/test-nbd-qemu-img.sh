#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# qemu-img, nbdinfo and nbdcopy against a real nbdkit serving thinmap
# volumes, on real input: the ISO of Debian's grub-rescue-pc and an ext4
# image built from the files under /usr/share/doc.
#
# Each image goes into its own volume, created by the plugin
# (create=true) with the image's size rounded up to the 4K block:
#   - qemu-img convert -n writes it in; qemu-img compare finds the
#     export identical to the image padded to the block, and to the
#     original ISO, whose tail beyond its end must read as zeros;
#   - qemu-img map shows every hole of the sparse ext4 image as a hole
#     of the export, and the volume maps exactly the data the export
#     reports;
#   - nbdinfo gives the size and the flags the design promises; nbdcopy
#     copies the export back byte for byte;
#   - after nbdkit is stopped and started again on the same directory,
#     all of that still holds, and a read-only server (-r) serves the
#     same data, and qemu-io cannot open it for writing.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_plugin
requires qemu-img qemu-io nbdinfo nbdcopy mkfs.ext4 truncate cmp du dpkg \
	"$PYTHON"
thinmap_served && requires "$THINMAP"

iso=$(dpkg -L grub-rescue-pc 2>/dev/null | grep -E '\.iso$' | head -n 1) || :
if [ -z "$iso" ] || [ ! -r "$iso" ]; then
	echo "$0: test skipped because grub-rescue-pc's ISO is not installed"
	exit 77
fi
[ -d /usr/share/doc ] || {
	echo "$0: test skipped because there is no /usr/share/doc"
	exit 77
}

BS=4096
round_up() { echo $((($1 + BS - 1) / BS * BS)); }

# The ISO, and a copy of it padded with zeros to the block.
iso_size=$(stat -c %s "$iso")
iso_vsize=$(round_up "$iso_size")
cp "$iso" "$tmpdir/iso.img"
truncate -s "$iso_vsize" "$tmpdir/iso.img"
echo "ISO $iso: $iso_size bytes, volume $iso_vsize"

# An ext4 image of /usr/share/doc, a quarter larger than the files plus
# 32M, in whole 4M; mkfs.ext4 -d leaves it sparse.
kb=$(du -sk /usr/share/doc | cut -f1)
ext4_size=$(((kb * 5 / 4 / 1024 + 32 + 3) / 4 * 4 * 1024 * 1024))
truncate -s "$ext4_size" "$tmpdir/ext4.img"
mkfs.ext4 -q -F -d /usr/share/doc "$tmpdir/ext4.img" ||
	fail "mkfs.ext4 -d /usr/share/doc"
echo "ext4 image: $ext4_size bytes, $(du -k "$tmpdir/ext4.img" | cut -f1)K allocated"

# map_json NAME FILE: qemu-img map --output=json of the export NAME.
map_json()
{
	qemu-img map --output=json -f raw "$(nbd_uri "$1")" >"$2" ||
		fail "qemu-img map of $1"
}

# check_export NAME IMAGE SIZE: the export holds IMAGE, strictly.
check_export()
{
	local uri
	uri=$(nbd_uri "$1")
	expect_status 0 nbdinfo --size "$uri"
	expect_in "$tmpdir/out" "^$3\$"
	expect_status 0 qemu-img compare -f raw -F raw "$2" "$uri"
	expect_in "$tmpdir/out" 'Images are identical'
	rm -f "$tmpdir/copy.img"
	expect_status 0 nbdcopy "$uri" "$tmpdir/copy.img"
	cmp "$2" "$tmpdir/copy.img" || fail "nbdcopy of $1 differs from $2"
	rm -f "$tmpdir/copy.img"
}

# check_holes IMAGE_MAP EXPORT_MAP: every hole of the image is a zero
# range of the export, and the export has at least as much hole as the
# image (qemu-img convert punches zero blocks of the data too).
check_holes()
{
	"$PYTHON" - "$1" "$2" <<'EOF' || fail "the export's holes do not cover the image's"
import json, sys
img = json.load(open(sys.argv[1]))
exp = json.load(open(sys.argv[2]))
zero = [(e["start"], e["start"] + e["length"]) for e in exp if e["zero"]]
holes = [(e["start"], e["start"] + e["length"]) for e in exp if not e["data"]]
def covered(a, b, ranges):
    for s, e in ranges:
        if s <= a < e:
            a = e
        if a >= b:
            return True
    return a >= b
bad = [(e["start"], e["length"]) for e in img
       if not e["data"] and not covered(e["start"], e["start"] + e["length"], zero)]
img_holes = sum(e["length"] for e in img if not e["data"])
exp_holes = sum(e - s for s, e in holes)
print("  image holes %d bytes, export holes %d bytes in %d ranges"
      % (img_holes, exp_holes, len(holes)))
if bad:
    print("  image holes not zero in the export:", bad[:10])
    sys.exit(1)
if exp_holes < img_holes:
    print("  the export has less hole than the image")
    sys.exit(1)
EOF
}

# data_bytes MAP: the bytes that MAP reports as data.
data_bytes()
{
	"$PYTHON" -c '
import json, sys
print(sum(e["length"] for e in json.load(open(sys.argv[1])) if e["data"]))
' "$1"
}

# check_volume NAME DIR MAP: the volume is consistent, and maps exactly
# the bytes the export reports as data.
check_volume()
{
	thinmap_served || return 0
	expect_status 0 "$THINMAP" info "$2" --json
	cp "$tmpdir/out" "$tmpdir/info.json"
	expect_json "$tmpdir/info.json" 'j["mapped"] + j["unwritten"]' \
		"$(data_bytes "$3")"
}

echo "== write the images in"
start_thinmap iso "$tmpdir/vol-iso" create=true size="$iso_vsize"
start_thinmap ext4 "$tmpdir/vol-ext4" create=true size="$ext4_size"

expect_status 0 nbdinfo --json "$(nbd_uri iso)"
cp "$tmpdir/out" "$tmpdir/nbdinfo.json"
expect_json "$tmpdir/nbdinfo.json" 'j["exports"][0]["export-size"]' "$iso_vsize"
expect_json "$tmpdir/nbdinfo.json" 'j["exports"][0]["is_read_only"]' false
for flag in can_flush can_fua can_trim can_zero can_multi_conn; do
	expect_json "$tmpdir/nbdinfo.json" "j[\"exports\"][0][\"$flag\"]" true
done
# Zeroing is metadata only, so fast zero is always supported.
if thinmap_served; then
	expect_json "$tmpdir/nbdinfo.json" 'j["exports"][0]["can_fast_zero"]' true
fi

time qemu-img convert -n -f raw -O raw "$iso" "$(nbd_uri iso)" ||
	fail "qemu-img convert of the ISO"
time qemu-img convert -n -f raw -O raw "$tmpdir/ext4.img" "$(nbd_uri ext4)" ||
	fail "qemu-img convert of the ext4 image"

echo "== compare"
# The original ISO is shorter than the export: qemu-img compare checks
# that the rest of the export reads as zeros.
expect_status 0 qemu-img compare -f raw -F raw "$iso" "$(nbd_uri iso)"
expect_in "$tmpdir/out" 'Images are identical'
check_export iso "$tmpdir/iso.img" "$iso_vsize"
check_export ext4 "$tmpdir/ext4.img" "$ext4_size"

echo "== holes"
qemu-img map --output=json -f raw "$tmpdir/ext4.img" >"$tmpdir/image.map" ||
	fail "qemu-img map of the image"
map_json ext4 "$tmpdir/ext4.map"
check_holes "$tmpdir/image.map" "$tmpdir/ext4.map"
map_json iso "$tmpdir/iso.map"
check_volume iso "$tmpdir/vol-iso" "$tmpdir/iso.map"
check_volume ext4 "$tmpdir/vol-ext4" "$tmpdir/ext4.map"

echo "== restart"
stop_nbdkit iso
stop_nbdkit ext4
if thinmap_served; then
	expect_status 0 "$THINMAP" check "$tmpdir/vol-iso"
	expect_status 0 "$THINMAP" check "$tmpdir/vol-ext4"
fi
start_thinmap iso "$tmpdir/vol-iso"
start_thinmap ext4 "$tmpdir/vol-ext4"
expect_status 0 qemu-img compare -f raw -F raw "$iso" "$(nbd_uri iso)"
expect_in "$tmpdir/out" 'Images are identical'
check_export iso "$tmpdir/iso.img" "$iso_vsize"
check_export ext4 "$tmpdir/ext4.img" "$ext4_size"
map_json ext4 "$tmpdir/ext4.map2"
cmp "$tmpdir/ext4.map" "$tmpdir/ext4.map2" ||
	fail "the export's map changed across the restart"
map_json iso "$tmpdir/iso.map2"
cmp "$tmpdir/iso.map" "$tmpdir/iso.map2" ||
	fail "the ISO export's map changed across the restart"
stop_nbdkit iso
stop_nbdkit ext4

echo "== read-only"
start_thinmap -r ext4 "$tmpdir/vol-ext4"
expect_status 0 nbdinfo --json "$(nbd_uri ext4)"
expect_json "$tmpdir/out" 'j["exports"][0]["is_read_only"]' true
check_export ext4 "$tmpdir/ext4.img" "$ext4_size"
expect_status nonzero qemu-io -f raw -c 'write -P 0x55 0 4k' "$(nbd_uri ext4)"
stop_nbdkit ext4
if thinmap_served; then
	expect_status 0 "$THINMAP" check "$tmpdir/vol-ext4"
fi
echo "PASS"
