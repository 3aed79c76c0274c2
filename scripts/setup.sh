#!/usr/bin/env bash
# Prepare this machine (Debian 12 or 13, as root) for developing and testing the oci.runtime collection.
#
#   1. Debian packages: runc, busybox-static, python3-venv, rsync, git, make, shellcheck (without it
#      ansible-test sanity skips its shellcheck test), and openssh-server + openssh-client (the fleet example
#      reaches two of its hosts over SSH to a loopback sshd); apt-get update runs only when one is missing.
#   2. .venv/ in the repository, from the python3 on PATH (>= 3.11), with requirements-dev.txt installed.
#      A stamp keyed on the hash of requirements-dev.txt and the Python version makes a rerun instant; a venv
#      whose Python no longer runs, or is another version, is recreated.
#   3. An offline stand-in for the get-pip script that ansible-test downloads when it bootstraps pip in its
#      own virtual environments (its host is not reachable here). It embeds a pip wheel fetched from the
#      package registry with `pip download` and cached under ~/.cache/oci-runtime/.
#   4. CRIU >= 4 that passes `criu check`, with iptables for its network lock (scripts/setup-criu.sh).
#   5. A check that runc, busybox and the venv's ansible run.
#
# Every step checks before it acts, so a second run changes nothing and takes well under a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/requirements-dev.txt"
STAMP="$VENV/.oci-runtime-requirements.stamp"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/oci-runtime"
ANSIBLE_TEST_CACHE="$HOME/.ansible/test/cache"
APT_PACKAGES=(runc busybox-static python3-venv rsync git make shellcheck openssh-server openssh-client skopeo docker-registry apache2-utils containernetworking-plugins iptables)
BUSYBOX=/bin/busybox

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# --- the machine ------------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root (it installs Debian packages)"
[ -r /etc/os-release ] || die "/etc/os-release is missing: this setup supports Debian 12 and 13 only"
os_id=$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"')
os_version=$(sed -n 's/^VERSION_ID=//p' /etc/os-release | tr -d '"')
if [ "$os_id" != debian ] || { [ "$os_version" != 12 ] && [ "$os_version" != 13 ]; }; then
    die "unsupported system '${os_id} ${os_version}': this setup supports Debian 12 and 13 only"
fi

# --- Debian packages -------------------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
else
    log "Debian packages present: ${APT_PACKAGES[*]}"
fi

# --- the virtual environment -----------------------------------------------------------------------------
[ -f "$REQUIREMENTS" ] || die "$REQUIREMENTS is missing"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "'$PYTHON' is not on PATH"
py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    || die "'$(command -v "$PYTHON")' does not run"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "'$(command -v "$PYTHON")' is Python $py_version; ansible-core 2.19 needs Python >= 3.11"

venv_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ "$venv_version" != "$py_version" ]; then
    if [ -e "$VENV" ]; then
        log "recreating .venv (its Python is '${venv_version:-broken}', wanted $py_version)"
        rm -rf "$VENV"
    else
        log "creating .venv with Python $py_version ($(command -v "$PYTHON"))"
    fi
    "$PYTHON" -m venv "$VENV" || die "python -m venv failed (on a system Python, install python3-venv)"
fi

want_stamp="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) python-$py_version"
if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want_stamp" ] && [ -x "$VENV/bin/ansible-test" ]; then
    log ".venv up to date with requirements-dev.txt"
else
    log "installing requirements-dev.txt into .venv"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS" \
        || die "pip install -r requirements-dev.txt failed"
    printf '%s\n' "$want_stamp" >"$STAMP"
fi

# --- ansible-test's get-pip stand-in ---------------------------------------------------------------------
# ansible-test (ansible_test/_util/target/setup/requirements.py) runs ~/.ansible/test/cache/get_pip_<X_Y>.py
# when present instead of downloading get-pip-<X.Y>.py. The pip version is ansible-test's own pin.
pip_version=$("$VENV/bin/python" - <<'EOF'
import pathlib, re, sys
import ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
m = re.search(r"default_packages\s*=\s*dict\(\s*pip='([0-9.]+)'", src.read_text())
if not m:
    sys.exit("cannot find the pip version that ansible-test pins in %s" % src)
print(m.group(1))
EOF
) || die "cannot tell which pip version ansible-test bootstraps"
get_pip="$ANSIBLE_TEST_CACHE/get_pip_${pip_version//./_}.py"
wheel="$CACHE_DIR/pip-${pip_version}-py3-none-any.whl"

if [ -s "$get_pip" ]; then
    log "ansible-test pip bootstrap present: $get_pip"
else
    mkdir -p "$CACHE_DIR" "$ANSIBLE_TEST_CACHE"
    if ! "$VENV/bin/python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).getinfo("pip/__init__.py")' \
            "$wheel" 2>/dev/null; then
        log "downloading pip $pip_version wheel into $CACHE_DIR"
        rm -f "$wheel"
        "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
            -d "$CACHE_DIR" "pip==$pip_version" || die "pip download pip==$pip_version failed"
        [ -f "$wheel" ] || die "pip download did not produce $wheel"
    fi
    log "writing ansible-test pip bootstrap stand-in: $get_pip"
    "$VENV/bin/python" - "$wheel" "$get_pip.tmp" <<'EOF' || die "cannot write $get_pip"
import base64, hashlib, os, sys
STANDIN = '''\
"""Offline stand-in for get-pip.py, written by oci.runtime's scripts/setup.sh.

ansible-test runs this file (instead of downloading get-pip.py) to put pip into each empty virtual
environment it creates. It installs pip from the wheel embedded below, %(name)s (sha256 %(sha256)s),
with the caller's pip options; --no-setuptools and --no-wheel, which only get-pip.py knows, are dropped.
"""
import base64
import os
import shutil
import sys
import tempfile

WHEEL_NAME = "%(name)s"
WHEEL = """
%(b64)s"""


def main():
    tmp = tempfile.mkdtemp(prefix="get-pip-standin-")
    try:
        wheel = os.path.join(tmp, WHEEL_NAME)
        with open(wheel, "wb") as f:
            f.write(base64.decodebytes(WHEEL.encode("ascii")))
        args = []
        for arg in sys.argv[1:]:
            if arg in ("--no-setuptools", "--no-wheel"):
                continue
            if arg.split("=")[0].strip().lower() == "pip":
                arg = wheel  # pip itself comes from the embedded wheel, not from an index
            args.append(arg)
        sys.path.insert(0, wheel)
        from pip._internal.cli.main import main as pip_main
        return pip_main(["install", "--upgrade", "--force-reinstall"] + args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
'''
wheel, out = sys.argv[1], sys.argv[2]
data = open(wheel, "rb").read()
b64 = base64.encodebytes(data).decode("ascii")
with open(out, "w") as f:
    f.write(STANDIN % dict(name=os.path.basename(wheel), sha256=hashlib.sha256(data).hexdigest(), b64=b64))
EOF
    # Prove it bootstraps pip into an empty venv the way ansible-test calls it, before trusting it.
    probe=$(mktemp -d)
    trap 'rm -rf "$probe"' EXIT
    "$VENV/bin/python" -m venv --without-pip "$probe/venv"
    "$probe/venv/bin/python" "$get_pip.tmp" --disable-pip-version-check -q "pip==$pip_version" \
        --no-setuptools --no-wheel >"$probe/log" 2>&1 || { cat "$probe/log" >&2; die "the get-pip stand-in failed"; }
    got=$("$probe/venv/bin/python" -m pip --version 2>&1 | cut -d' ' -f2)
    [ "$got" = "$pip_version" ] || die "the get-pip stand-in installed pip '$got', wanted $pip_version"
    mv "$get_pip.tmp" "$get_pip"
fi

# --- CRIU, for checkpoint/restore ---------------------------------------------------------------------------
bash "$ROOT/scripts/setup-criu.sh"

# --- final checks ----------------------------------------------------------------------------------------
# (Whole outputs are captured, then cut: `cmd | head -n1` under pipefail fails whenever cmd gets SIGPIPE.)
runc_version=$(runc --version) || die "runc --version failed"
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (package busybox-static)"
"$BUSYBOX" true || die "$BUSYBOX does not run"
ansible_version=$("$VENV/bin/ansible" --version) || die ".venv/bin/ansible --version failed"
log "ok: ${runc_version%%$'\n'*}; $BUSYBOX; ${ansible_version%%$'\n'*}; $("$VENV/bin/python" --version)"
