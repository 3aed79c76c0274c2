#!/usr/bin/env bash
# Build (or find in the cache) a Debian guest image for the `guest` test stage: systemd as PID 1,
# cgroup v2 only, runc and crun, made from Debian packages only.
#
# Usage: scripts/guest/build-image.sh RELEASE       (bookworm = Debian 12, trixie = Debian 13; as root)
# Prints the image directory on stdout: disk.img (raw ext4 root), vmlinuz, initrd.img, id_ed25519 (the
# key root logs in with). The directory is $GUEST_CACHE/<release>-<hash>, the hash being that of this
# script and the release: an unchanged recipe is never rebuilt, a changed one gets a new directory and
# the old images of that release are deleted. A build goes to a temporary directory renamed at the end,
# so an interrupted build leaves nothing that looks finished; a lock keeps two builds of one release
# from racing.
#
# The guest has no network (scripts/guest/run.sh boots it with qemu's restrict=on): everything the
# tests need inside is installed here.
set -euo pipefail

RELEASE=${1:?usage: build-image.sh bookworm|trixie}
case $RELEASE in bookworm|trixie) ;; *) echo "build-image: unknown release '$RELEASE'" >&2; exit 2 ;; esac
GUEST_CACHE=${GUEST_CACHE:-/var/cache/oci-runtime/guests}
MIRROR=${GUEST_MIRROR:-http://deb.debian.org/debian}
SEC_MIRROR=${GUEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# What the tests use inside: everything the runtime role installs (runc, crun, CRIU, iptables, skopeo, the
# CNI plugins: the role then finds them present), busybox for the bundles, python3 (+ python3-apt for
# ansible.builtin.apt), sshd for Ansible.
PACKAGES=(linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus openssh-server
          python3 python3-apt runc crun criu iptables skopeo containernetworking-plugins
          busybox-static iproute2 procps kmod)
# Debian 13's crun loads libcriu.so.2 for checkpoints without depending on it (Debian 12's crun is built
# without CRIU, and Debian 12 has no libcriu2).
if [ "$RELEASE" = trixie ]; then PACKAGES+=(libcriu2); fi

# Only the image directory goes to stdout (fd 3); everything else the build prints goes to stderr.
exec 3>&1 1>&2
log() { printf 'build-image %s: %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'build-image: ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"

HASH=$( { cat "${BASH_SOURCE[0]}"; echo "$RELEASE"; } | sha256sum | cut -c1-12)
IMAGE=$GUEST_CACHE/$RELEASE-$HASH
mkdir -p "$GUEST_CACHE"
exec 9>"$GUEST_CACHE/.$RELEASE.lock"
flock 9
if [ -f "$IMAGE/disk.img" ]; then
    log "cached: $IMAGE"
    echo "$IMAGE" >&3
    exit 0
fi

T0=$SECONDS
WORK=$(mktemp -d "$GUEST_CACHE/.$RELEASE-build.XXXXXX")
ROOT=$WORK/rootfs
cleanup() {
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m"; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

log "debootstrap $RELEASE (minbase) from $MIRROR"
debootstrap --variant=minbase "$RELEASE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $RELEASE main
deb $MIRROR $RELEASE-updates main
deb $SEC_MIRROR $RELEASE-security main
EOF
# No service may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
# A small initramfs: only what mounts the virtio disk's ext4 root.
mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
echo MODULES=list >"$ROOT/etc/initramfs-tools/conf.d/guest.conf"
printf '%s\n' virtio_pci virtio_blk crc32c_generic ext4 >"$ROOT/etc/initramfs-tools/modules"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
                LANG=C.UTF-8 HOME=/root "$@"; }
log "apt-get install ${PACKAGES[*]}"
{ in_root apt-get update -q && in_root apt-get -y -q dist-upgrade \
    && in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" && in_root apt-get clean; } \
    >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; die "apt-get in the guest tree failed"; }
rm -f "$ROOT/usr/sbin/policy-rc.d"
for m in dev/pts dev sys proc; do umount "$ROOT/$m"; done

log "configure: ssh key, network, short stop timeouts"
echo guest >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tguest\n' >"$ROOT/etc/hosts"
echo 'LABEL=guest-root / ext4 defaults,errors=remount-ro 0 1' >"$ROOT/etc/fstab"
# Root logs in with a key made for this image only (kept beside the image, never in the repository).
ssh-keygen -q -t ed25519 -N '' -C "oci-runtime-guest-$RELEASE" -f "$WORK/id_ed25519"
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$WORK/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    >"$ROOT/etc/ssh/sshd_config.d/guest.conf"
# No name server: a download attempted in the offline guest fails at once instead of waiting for DNS
# timeouts (debootstrap copied the host's resolv.conf).
: >"$ROOT/etc/resolv.conf"
# qemu's user-mode network always gives the guest 10.0.2.15: a static address saves the DHCP wait.
printf '[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n' \
    >"$ROOT/etc/systemd/network/10-guest.network"
ln -sf /lib/systemd/system/systemd-networkd.service \
    "$ROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# A test guest must power off fast, also with containers still running (a container's PID 1 may ignore
# SIGTERM; a paused one cannot act on it).
mkdir -p "$ROOT/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStopSec=5s\n' >"$ROOT/etc/systemd/system.conf.d/guest.conf"
# Timers and waits that only slow a boot under emulation.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
            man-db.timer systemd-networkd-wait-online.service getty@tty1.service; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$unit"
done

KVER=$(find "$ROOT/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
[ -n "$KVER" ] || die "no kernel installed in the guest tree"
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/initrd.img"
log "mke2fs -d (kernel $KVER)"
# mke2fs -d fills the file system from the tree: no loop device needed. The image is sparse.
mkfs.ext4 -q -F -L guest-root -E root_owner=0:0 -d "$ROOT" "$WORK/disk.img" 3G
rm -rf "$ROOT" "$WORK"/*.log
mv "$WORK" "$IMAGE"
trap - EXIT
# Older recipes' images of this release are no longer used by anything.
find "$GUEST_CACHE" -mindepth 1 -maxdepth 1 -type d -name "$RELEASE-*" ! -path "$IMAGE" -exec rm -rf {} +
log "built $IMAGE in $((SECONDS - T0)) s ($(du -sh "$IMAGE" | cut -f1) allocated)"
echo "$IMAGE" >&3
