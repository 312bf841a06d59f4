#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A real filesystem on a thinmap volume: nbdkit serves the volume,
# nbdfuse (4 connections, as the plugin advertises multi-conn) shows it
# as a file, a loop device makes that a block device, and XFS goes on
# it.  The volume is thin: 1G virtual, 256M of real space.
#   - mkfs.xfs (which trims the whole device), mount, copy a part of
#     /usr/share/doc (about 64M, in whole directories), fstrim;
#   - delete half of the tree, fstrim: thinmap info, read while the
#     volume is served, shows the allocated space went down by at least
#     three quarters of what was deleted;
#   - write new files (random data, large and small), unmount,
#     xfs_repair -n finds the filesystem clean;
#   - take it all down, thinmap check the volume, bring it up again:
#     every file's SHA-256 is that of its source, and the deleted
#     files are gone; xfs_repair -n is still clean.
# Needs root, /dev/fuse, a free loop device and XFS in the kernel; skips
# otherwise.

set -e
source "${srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_plugin
requires nbdfuse losetup mkfs.xfs xfs_repair mount umount fstrim \
	sha256sum mountpoint "$PYTHON"
thinmap_served && requires "$THINMAP"

skip()
{
	echo "$0: test skipped because $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "it needs root (mount, losetup)"
[ -c /dev/fuse ] || skip "there is no /dev/fuse"
losetup -f >/dev/null 2>&1 || skip "no loop device is free (losetup -f)"
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || :
grep -qw xfs /proc/filesystems || skip "the kernel has no XFS"
[ -d /usr/share/doc ] || skip "there is no /usr/share/doc"

vol="$tmpdir/vol"
fusedir="$tmpdir/fuse"
mnt="$tmpdir/mnt"
mkdir "$fusedir" "$mnt"

# What is up; teardown takes down whatever is, in order.
fuse_pid= loopdev= mounted=

fs_mount()
{
	mount -t xfs "$loopdev" "$mnt" || fail "mount $loopdev"
	mounted=1
}

fs_umount()
{
	local i
	[ -n "$mounted" ] || return 0
	for ((i = 0; i < 20; i++)); do
		umount "$mnt" && { mounted=; return 0; }
		sleep 0.5
	done
	echo "umount $mnt failed; detaching it lazily" >&2
	umount -l "$mnt" || :
	mounted=
	return 1
}

loop_attach()
{
	loopdev=$(losetup --find --show --direct-io=off "$fusedir/nbd") ||
		fail "losetup of $fusedir/nbd"
	echo "  $loopdev on $fusedir/nbd"
}

loop_detach()
{
	local i
	[ -n "$loopdev" ] || return 0
	losetup -d "$loopdev" || :
	# Detaching finishes asynchronously; the file stays busy till then.
	for ((i = 0; i < 100; i++)); do
		losetup -n -O BACK-FILE "$loopdev" 2>/dev/null |
			grep -q "$fusedir" || break
		sleep 0.1
	done
	loopdev=
}

fuse_start()
{
	local i
	rm -f "$tmpdir/nbdfuse.pid"
	nbdfuse -P "$tmpdir/nbdfuse.pid" "$fusedir/nbd" \
		--unix "$tmpdir/vol.sock" </dev/null >>"$tmpdir/nbdfuse.log" 2>&1 &
	fuse_pid=$!
	for ((i = 0; i < 300; i++)); do
		[ -s "$tmpdir/nbdfuse.pid" ] && [ -f "$fusedir/nbd" ] && return 0
		if _nbdkit_gone "$fuse_pid"; then
			wait "$fuse_pid" || :
			fuse_pid=
			cat "$tmpdir/nbdfuse.log"
			fail "nbdfuse exited at startup"
		fi
		sleep 0.1
	done
	fail "nbdfuse is not ready after 30s"
}

fuse_stop()
{
	local i
	[ -n "$fuse_pid" ] || return 0
	# Unmounting makes nbdfuse exit.
	if command -v fusermount3 >/dev/null; then
		fusermount3 -u "$fusedir" || umount "$fusedir" || :
	else
		umount "$fusedir" || :
	fi
	for ((i = 0; i < 100; i++)); do
		_nbdkit_gone "$fuse_pid" && break
		sleep 0.1
	done
	if ! _nbdkit_gone "$fuse_pid"; then
		echo "nbdfuse did not exit; killing it" >&2
		kill -KILL "$fuse_pid" || :
		umount -l "$fusedir" 2>/dev/null || :
	fi
	wait "$fuse_pid" 2>/dev/null || :
	fuse_pid=
	! mountpoint -q "$fusedir" || umount -l "$fusedir" || :
}

up()
{
	start_thinmap vol "$vol" "$@"
	fuse_start
	loop_attach
}

down()
{
	fs_umount || fail "umount $mnt"
	loop_detach
	fuse_stop
	stop_nbdkit vol
}

teardown()
{
	fs_umount || :
	loop_detach
	fuse_stop
}

# allocated: the volume's allocated bytes, by thinmap info --json.
allocated()
{
	"$THINMAP" info "$vol" --json >"$tmpdir/info.json" ||
		fail "thinmap info while the volume is served"
	json_get "$tmpdir/info.json" 'j["allocated"]'
}

# flush: sync the filesystem, wait for the loop device to finish what it
# has in flight, then fsync the nbdfuse file, which sends NBD_CMD_FLUSH.
# fstrim's trims are followed by no flush of their own (and thinmap info
# reads what the last flush committed); and fstrim may return before
# they are done: XFS submits them without waiting (Linux 6.x), and the
# loop device works through them after.
flush()
{
	local i r=1 w=1
	sync
	for ((i = 0; i < 300; i++)); do
		read -r r w <"/sys/block/${loopdev#/dev/}/inflight" || break
		[ "$r" -eq 0 ] && [ "$w" -eq 0 ] && break
		sleep 0.1
	done
	[ "$r" -eq 0 ] && [ "$w" -eq 0 ] ||
		fail "$loopdev has I/O in flight ($r $w) after 30s"
	sync "$fusedir/nbd" || fail "fsync of $fusedir/nbd"
}

# trim: fstrim -v the mount and flush; print the bytes it trimmed.
trim()
{
	fstrim -v "$mnt" >"$tmpdir/fstrim.out" || fail "fstrim $mnt"
	sed 's/^/  /' "$tmpdir/fstrim.out" >&2
	flush
	sed -n 's/.*(\([0-9]*\) bytes) trimmed.*/\1/p' "$tmpdir/fstrim.out"
}

# The tree: whole directories of /usr/share/doc, in name order, until
# they hold 64M; the even ones are kept, the odd ones deleted later.
kept=() deleted=() total=0 del_kb=0 n=0
while IFS= read -r -d '' d; do
	kb=$(du -sk "$d" | cut -f1)
	if ((n % 2)); then
		deleted+=("${d##*/}")
		del_kb=$((del_kb + kb))
	else
		kept+=("${d##*/}")
	fi
	n=$((n + 1)) total=$((total + kb))
	((total < 64 * 1024)) || break
done < <(find /usr/share/doc -mindepth 1 -maxdepth 1 -type d -print0 | sort -z)
echo "tree: $n directories, ${total}K; ${#deleted[@]} of ${del_kb}K to delete"

# sums DIR NAME..: SHA-256 of the files under DIR/NAME.., named doc/NAME/..
sums()
{
	local dir=$1
	shift
	[ $# -gt 0 ] || return 0
	(cd "$dir" && find "$@" -type f -print0 | sort -z | xargs -0r sha256sum) |
		sed 's|^\([0-9a-f]*\)  |\1  doc/|'
}

# New files: random data, made here first so that their sums are known.
mkdir "$tmpdir/new"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$tmpdir/new/big"
for ((i = 0; i < 100; i++)); do
	head -c $(((i * 7919) % 65536 + 1)) /dev/urandom >"$tmpdir/new/small-$i"
done

t0=$SECONDS
echo "== mkfs.xfs, copy"
up create=true size=1G capacity=256M
cleanup_fn teardown
mkfs.xfs -q -f "$loopdev" || fail "mkfs.xfs"
fs_mount
mkdir "$mnt/doc"
(cd /usr/share/doc && cp -a "${kept[@]}" "${deleted[@]}" "$mnt/doc/") ||
	fail "copying the tree"
sums /usr/share/doc "${kept[@]}" "${deleted[@]}" >"$tmpdir/all.sums"
(cd "$mnt" && sha256sum -c --quiet "$tmpdir/all.sums") ||
	fail "the copy differs from the source"
flush
trimmed=$(trim)
[ "${trimmed:-0}" -gt 0 ] || fail "fstrim trimmed nothing"
echo "  copied in $((SECONDS - t0))s"

echo "== delete half, fstrim"
if thinmap_served; then
	before=$(allocated)
fi
(cd "$mnt/doc" && rm -rf "${deleted[@]}")
flush
trimmed=$(trim)
[ "${trimmed:-0}" -gt 0 ] || fail "fstrim after the delete trimmed nothing"
if thinmap_served; then
	after=$(allocated)
	echo "  allocated: $before before the delete, $after after (deleted ${del_kb}K)"
	[ $((before - after)) -ge $((del_kb * 1024 * 3 / 4)) ] ||
		fail "allocated went down by $((before - after)), less than 3/4 of ${del_kb}K"
fi

# Unmount, xfs_repair -n (failing with @1 if it finds damage), take
# everything down, and check the volume.
repair_and_down()
{
	fs_umount || fail "umount"
	xfs_repair -n "$loopdev" >"$tmpdir/repair.out" 2>&1 ||
		{ cat "$tmpdir/repair.out"; fail "xfs_repair -n: $1"; }
	down
	if thinmap_served; then
		expect_status 0 "$THINMAP" check "$vol"
	fi
}

echo "== new files, xfs_repair"
cp -a "$tmpdir/new" "$mnt/new"
{
	sums /usr/share/doc "${kept[@]}"
	(cd "$tmpdir" && sha256sum new/*)
} >"$tmpdir/final.sums"
flush
repair_and_down "the filesystem is damaged"

echo "== again, after a restart"
up
fs_mount
(cd "$mnt" && sha256sum -c --quiet "$tmpdir/final.sums") ||
	fail "files differ after the restart"
echo "  $(wc -l <"$tmpdir/final.sums") files match their SHA-256"
for d in "${deleted[@]}"; do
	[ ! -e "$mnt/doc/$d" ] || fail "deleted $d is back"
done
[ "$(find "$mnt/doc" "$mnt/new" -type f | wc -l)" -eq \
	"$(wc -l <"$tmpdir/final.sums")" ] || fail "the file count differs"
repair_and_down "after the restart"
echo "== $((SECONDS - t0))s"
echo "PASS"
