#!/usr/bin/env bash
# Prepare this machine (Debian 12 or 13, as root) for `make bench` (issue 10). Idempotent: every step
# checks before it acts, so a second run changes nothing and takes about a second.
#
#   1. Debian packages: podman (the peer the bench compares with; it brings conmon) and the dev setup's
#      runc and busybox-static (scripts/setup.sh must have run: the bench also uses the dev venv .venv/).
#   2. .venv-bench/, a SEPARATE venv from the same python3 as .venv/, with the `ansible` package (12.x on
#      Python 3.11: it brings containers.podman, which Galaxy cannot give us here), matplotlib (the PNG
#      chart) and pyinstrument (profiles). Kept apart so the dev venv's pinned ansible-core is untouched.
#   3. build/bench/containers.conf: podman runs here only with runc and lowered ulimits (crun refuses hybrid
#      cgroups; the default nofile/nproc limits cannot be raised in this sandbox). The bench points
#      CONTAINERS_CONF at it; nothing system-wide is changed.
#   4. The podman image localhost/oci-bench-busybox:latest, imported from the same busybox rootfs the tests
#      build (tests/utils/make_busybox_bundle.py), re-imported only when that rootfs changes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv-bench"
WORK="$ROOT/build/bench"
CONF="$WORK/containers.conf"
IMAGE=localhost/oci-bench-busybox:latest
PIP_PACKAGES=("ansible>=12,<13" "matplotlib>=3.7" "pyinstrument>=4.6")
STAMP="$VENV/.oci-runtime-bench.stamp"

log() { printf 'setup-bench: %s\n' "$*"; }
die() { printf 'setup-bench: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs Debian packages and runs containers)"
[ -x "$ROOT/.venv/bin/python" ] || die "$ROOT/.venv is missing: run 'make setup' first"
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || die "runc is missing: run 'make setup' first"
[ -x /bin/busybox ] || die "/bin/busybox is missing: run 'make setup' first"

# --- 1. Debian packages ------------------------------------------------------------------------------------
if [ "$(dpkg-query -W -f='${db:Status-Status}' podman 2>/dev/null || true)" != installed ]; then
    log "installing Debian's podman"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends podman >/dev/null || die "apt-get install podman failed"
else
    log "podman present ($(podman --version))"
fi
command -v conmon >/dev/null || [ -x /usr/bin/conmon ] || [ -x /usr/libexec/podman/conmon ] \
    || die "conmon is missing after installing podman"

# --- 2. the bench venv -------------------------------------------------------------------------------------
PYTHON=$(readlink -f "$ROOT/.venv/bin/python")
py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "$PYTHON does not run"
venv_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ "$venv_version" != "$py_version" ]; then
    rm -rf "$VENV"
    log "creating .venv-bench with Python $py_version ($PYTHON)"
    "$PYTHON" -m venv "$VENV" || die "python -m venv failed"
fi
want_stamp="${PIP_PACKAGES[*]} python-$py_version"
if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want_stamp" ] && [ -x "$VENV/bin/ansible-playbook" ]; then
    log ".venv-bench up to date ($("$VENV/bin/ansible-playbook" --version | head -1))"
else
    log "installing into .venv-bench: ${PIP_PACKAGES[*]}"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" \
        || die "pip install ${PIP_PACKAGES[*]} failed"
    printf '%s\n' "$want_stamp" >"$STAMP"
fi
ANSIBLE_COLLECTIONS_PATH=/nonexistent "$VENV/bin/ansible-doc" -t module containers.podman.podman_container \
    >/dev/null 2>&1 || die "containers.podman is not in .venv-bench (the ansible package should bring it)"

# --- 3. podman's containers.conf ---------------------------------------------------------------------------
mkdir -p "$WORK"
conf_text='# Written by scripts/setup-bench.sh: podman on this host needs runc and lowered ulimits.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
'
if [ "$(cat "$CONF" 2>/dev/null || true)" != "$(printf '%s' "$conf_text")" ]; then
    printf '%s' "$conf_text" >"$CONF"
    log "wrote $CONF"
fi
export CONTAINERS_CONF="$CONF"

# --- 4. the busybox image ----------------------------------------------------------------------------------
bundle="$WORK/image-bundle"
"$ROOT/.venv/bin/python" "$ROOT/tests/utils/make_busybox_bundle.py" "$bundle" >/dev/null \
    || die "cannot build the busybox rootfs"
digest=$(cd "$bundle/rootfs" && find . -printf '%p %y %l %s\n' | LC_ALL=C sort | sha256sum | cut -c1-16)
label_now=$(podman image inspect --format '{{ index .Labels "oci.bench.rootfs" }}' "$IMAGE" 2>/dev/null || true)
if [ "$label_now" != "$digest" ]; then
    log "importing $IMAGE from $bundle/rootfs"
    tar -C "$bundle/rootfs" -cf "$WORK/busybox-rootfs.tar" .
    podman import --change "LABEL oci.bench.rootfs=$digest" --change 'CMD ["sleep", "3600"]' \
        "$WORK/busybox-rootfs.tar" "$IMAGE" >/dev/null || die "podman import failed"
    rm -f "$WORK/busybox-rootfs.tar"
fi
podman run --rm --network none "$IMAGE" true || die "podman cannot run $IMAGE (check $CONF)"
log "ready: podman runs $IMAGE with runc"
