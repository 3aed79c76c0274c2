#!/usr/bin/env bash
# Make a CRIU >= 4 that passes `criu check` available as /usr/local/sbin/criu (Debian 12) or
# /usr/sbin/criu (Debian 13), for oci.runtime's checkpoint/restore. Idempotent; run as root.
#
# Why not simply the distribution's package: Debian 12's criu 3.17 fails on this kernel
# ("vdso: Unexpected rt vDSO area bounds"), and installing Debian 13's binary package on Debian 12
# drags in a newer libc6. So on Debian 12 the upstream source that Debian 13 packages
# (criu_<version>.orig.tar.xz, fetched with apt-get from Debian 13's source index, its hash checked
# by apt) is built against Debian 12's own libraries and installed under /usr/local, which leaves
# every system package as it is. CRIU 4 also needs iptables-restore for its network lock.
set -euo pipefail

CRIU_VERSION=4.1.1
PREFIX=/usr/local
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/oci-runtime/criu"
BUILD_DEPS=(gcc make pkgconf libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
            libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler
            uuid-dev python3-protobuf)

log() { printf 'setup-criu: %s\n' "$*"; }
die() { printf 'setup-criu: ERROR: %s\n' "$*" >&2; exit 1; }

apt_install() {  # apt_install PKG...: install the ones that are missing
    local pkg missing=()
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

criu_works() {  # criu_works BINARY: version >= 4 and `criu check` passes
    local version
    [ -x "$1" ] || return 1
    version=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p') || return 1
    [ "${version%%.*}" -ge 4 ] 2>/dev/null || return 1
    "$1" check >/dev/null 2>&1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
os_version=$(sed -n 's/^VERSION_ID=//p' /etc/os-release | tr -d '"')
apt_install iptables

if [ "$os_version" = 13 ]; then
    apt_install criu
    criu_works /usr/sbin/criu || die "Debian's criu does not pass 'criu check' here: $(/usr/sbin/criu check 2>&1 | tail -n 3)"
    log "ok: /usr/sbin/criu $(/usr/sbin/criu --version | sed -n 's/^Version: *//p') passes criu check"
    exit 0
fi

if criu_works "$PREFIX/sbin/criu"; then
    log "ok: $PREFIX/sbin/criu $("$PREFIX/sbin/criu" --version | sed -n 's/^Version: *//p') passes criu check"
    exit 0
fi

apt_install "${BUILD_DEPS[@]}"
mkdir -p "$CACHE_DIR"
tarball="$CACHE_DIR/criu_${CRIU_VERSION}.orig.tar.xz"
if [ ! -s "$tarball" ]; then
    log "fetching criu ${CRIU_VERSION} source (Debian 13's orig tarball) with apt-get"
    apt_dir=$(mktemp -d)
    chmod 0755 "$apt_dir"  # apt downloads as the _apt user
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb-src http://deb.debian.org/debian trixie main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
    apt-get "${apt_opts[@]}" update -qq || die "apt-get update of Debian 13's source index failed"
    # Only the upstream tarball is needed (apt checks its hash against the signed index); the Debian
    # packaging files are not, so a mirror that lacks them is no reason to stop.
    if ! (cd "$apt_dir" && apt-get "${apt_opts[@]}" source --download-only "criu=${CRIU_VERSION}-1" >/dev/null 2>&1); then
        log "apt-get source reported missing files; checking for the tarball itself"
    fi
    [ -s "$apt_dir/criu_${CRIU_VERSION}.orig.tar.xz" ] || die "could not fetch criu_${CRIU_VERSION}.orig.tar.xz from Debian's source index"
    mv "$apt_dir/criu_${CRIU_VERSION}.orig.tar.xz" "$tarball"
    rm -rf "$apt_dir"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
log "building criu ${CRIU_VERSION} (about a minute)"
tar -xf "$tarball" -C "$build"
make -C "$build/criu-${CRIU_VERSION}" -j"$(nproc)" criu >"$build/build.log" 2>&1 \
    || die "building criu failed; the end of its log: $(tail -n 20 "$build/build.log")"
install -D -m 0755 "$build/criu-${CRIU_VERSION}/criu/criu" "$PREFIX/sbin/criu"
criu_works "$PREFIX/sbin/criu" || die "the built criu does not pass 'criu check': $("$PREFIX/sbin/criu" check 2>&1 | tail -n 3)"
log "ok: built $PREFIX/sbin/criu ${CRIU_VERSION}; it passes criu check"
