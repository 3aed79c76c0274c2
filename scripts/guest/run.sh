#!/usr/bin/env bash
# Boot a Debian guest (systemd as PID 1, cgroup v2) under qemu and run tests/guest/site.yml in it with
# Ansible over SSH, then power it off.
#
# Usage: scripts/guest/run.sh RELEASE [ansible-playbook args...]      (bookworm | trixie; as root)
#
# The image comes from scripts/guest/build-image.sh (cached). qemu runs with TCG: this machine's KVM
# is the PVM flavour, under which a stock Debian kernel does not boot (GUEST_ACCEL=kvm where KVM is
# usable). The disk is opened with snapshot=on, so every boot starts from the pristine image and the
# cached image is never written. The only network path is qemu's user-mode network with restrict=on
# (the guest reaches nothing) and one forward, 127.0.0.1:<free port> -> guest:22. qemu is killed on
# every way out of this script (trap); a normal run powers the guest off through systemd first.
#
# Environment: ANSIBLE_COLLECTIONS_PATH (where oci.runtime is: scripts/run-tests.sh sets it to its
# collection copy), GUEST_MEM (MiB, 1536), GUEST_CPUS (2: cpuset tests need two), GUEST_BOOT_TIMEOUT (s, 600),
# GUEST_ACCEL (tcg), GUEST_CACHE (see build-image.sh), GUEST_KEEP_LOGS=1 keeps the run directory (console.log, ansible.log with a time stamp per line).
# Exit status: the playbook's; non-zero also when no image can be built or the guest does not boot.
set -euo pipefail

RELEASE=${1:?usage: run.sh bookworm|trixie [ansible-playbook args...]}
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MEM=${GUEST_MEM:-1536}
CPUS=${GUEST_CPUS:-2}
BOOT_TIMEOUT=${GUEST_BOOT_TIMEOUT:-600}
ACCEL=${GUEST_ACCEL:-tcg}

log() { printf 'guest %s %s: %s\n' "$RELEASE" "$(date +%T)" "$*" >&2; }
die() { printf 'guest %s: ERROR: %s\n' "$RELEASE" "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (the image build uses debootstrap and chroot)"

# Host packages, installed once (idempotent: nothing happens when they are there).
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v ssh >/dev/null || need+=(openssh-client)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing host packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=900 "${need[@]}" >&2 || die "cannot install ${need[*]}"
fi

# A playbook that does not parse fails here, before a boot that costs a minute.
if ! out=$(ansible-playbook --syntax-check -i "$RELEASE," "$ROOT/tests/guest/site.yml" 2>&1); then
    printf '%s\n' "$out" >&2
    die "tests/guest/site.yml does not parse"
fi

T0=$SECONDS
IMAGE=$(bash "$HERE/build-image.sh" "$RELEASE") || die "no guest image for $RELEASE"
T_IMAGE=$((SECONDS - T0))

RUN=$(mktemp -d "/tmp/oci-runtime-guest-$RELEASE.XXXXXX")
QEMU_PID=
# shellcheck disable=SC2317  # run by the EXIT trap
stop_qemu() {
    # Last resort on any way out: the guest's qemu must not outlive this script.
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        log "killing qemu (pid $QEMU_PID)"
        kill "$QEMU_PID" 2>/dev/null || true
        sleep 1
        kill -9 "$QEMU_PID" 2>/dev/null || true
    fi
    if [ "${GUEST_KEEP_LOGS:-0}" = 1 ]; then log "run directory kept: $RUN"; else rm -rf "$RUN"; fi
}
trap stop_qemu EXIT
trap 'exit 130' INT TERM

# A free loopback port for the ssh forward (the kernel picks it; never 2222, the fleet example's sshd).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ "$PORT" != 2222 ] || die "the kernel offered port 2222; run again"

if [ "$ACCEL" = kvm ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg -cpu max); fi
log "booting (accel $ACCEL, $CPUS cpu, ${MEM} MiB, ssh 127.0.0.1:$PORT)"
T1=$SECONDS
# -nodefaults: no CD-ROM, floppy or VGA for the guest kernel to probe (seconds each under emulation).
qemu-system-x86_64 "${accel[@]}" -nodefaults -smp "$CPUS" -m "$MEM" -machine q35 -no-reboot \
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 loglevel=4 panic=-1 systemd.unified_cgroup_hierarchy=1 systemd.show_status=0" \
    -drive "file=$IMAGE/disk.img,format=raw,if=virtio,snapshot=on,cache=unsafe" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci -display none -vga none -serial "file:$RUN/console.log" \
    -pidfile "$RUN/qemu.pid" -daemonize
QEMU_PID=$(cat "$RUN/qemu.pid")

SSH_OPTS=(-i "$IMAGE/id_ed25519" -p "$PORT" -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
until ssh "${SSH_OPTS[@]}" root@127.0.0.1 true </dev/null 2>/dev/null; do
    if ! kill -0 "$QEMU_PID" 2>/dev/null; then
        tail -30 "$RUN/console.log" >&2
        die "qemu exited while the guest booted"
    fi
    if [ $((SECONDS - T1)) -ge "$BOOT_TIMEOUT" ]; then
        tail -30 "$RUN/console.log" >&2
        die "no ssh answer from the guest after ${BOOT_TIMEOUT} s"
    fi
    sleep 2
done
T_BOOT=$((SECONDS - T1))
log "ssh answers after $T_BOOT s"

cat >"$RUN/inventory.ini" <<EOF
[guests]
$RELEASE ansible_host=127.0.0.1 ansible_port=$PORT ansible_user=root ansible_ssh_private_key_file=$IMAGE/id_ed25519 ansible_python_interpreter=/usr/bin/python3

[guests:vars]
ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
EOF
T2=$SECONDS
rc=0
# Pipelining: one ssh round trip per module instead of three (every one costs more under emulation).
ANSIBLE_PIPELINING=1 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 \
    ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_SSH_CONTROL_PATH_DIR="$RUN/cp" ANSIBLE_LOG_PATH="$RUN/ansible.log" \
    ansible-playbook -i "$RUN/inventory.ini" "$ROOT/tests/guest/site.yml" "$@" || rc=$?
T_PLAY=$((SECONDS - T2))

# A clean power-off through systemd (short stop timeouts in the image); the trap kills qemu if it hangs.
T3=$SECONDS
ssh "${SSH_OPTS[@]}" root@127.0.0.1 systemctl poweroff --no-block </dev/null >/dev/null 2>&1 || true
for _ in $(seq 60); do
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 1
done
if kill -0 "$QEMU_PID" 2>/dev/null; then
    log "the guest did not power off within 60 s"
    rc=$((rc ? rc : 1))
fi
log "image ${T_IMAGE} s, boot ${T_BOOT} s, playbook ${T_PLAY} s, power-off $((SECONDS - T3)) s, total $((SECONDS - T0)) s, rc $rc"
exit "$rc"
