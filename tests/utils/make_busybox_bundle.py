# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a minimal OCI bundle around the host's static busybox, for tests and the demo.

Usage: python3 tests/utils/make_busybox_bundle.py DEST [--env K=V ...] [--hostname H] [--args ARG ...]

DEST/rootfs gets bin/busybox (copied from /bin/busybox, which must be statically linked: Debian's
busybox-static), a symlink in bin/ for every applet, the directories proc sys dev tmp etc root, and a
minimal etc/passwd and etc/group. DEST/config.json is what ``runc spec`` (runc 1.1) writes, byte for byte,
with ``process.terminal`` false, a writable root and the given process args (default ``sleep 3600``), env
(added to runc's default PATH and TERM) and hostname (default ``runc``). --args takes every argument after
it, so give it last: ``--args sh -c 'echo hi; sleep 60'``.

Idempotent: when DEST already holds exactly this content nothing is written and ``unchanged`` is printed;
otherwise what differs is written atomically (a temporary file renamed into place) and ``changed`` is
printed. From Python, ``build_bundle(dest, args=None, env=None, hostname=None)`` returns whether anything
changed. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import stat
import struct
import subprocess
import sys
import tempfile

BUSYBOX = "/bin/busybox"
DEFAULT_ARGS = ("sleep", "3600")
DEFAULT_HOSTNAME = "runc"
ROOTFS_DIRS = (("bin", 0o755), ("proc", 0o755), ("sys", 0o755), ("dev", 0o755), ("tmp", 0o1777),
               ("etc", 0o755), ("root", 0o700))
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
PT_INTERP = 3


class BundleBuildError(Exception):
    """The bundle cannot be built (busybox missing or not static, DEST unusable)."""


def _core_spec():
    """The collection's ``plugins/module_utils/_runtime/spec.py`` (runc's default spec lives there),
    loaded from this checkout whether or not ``ansible_collections.oci.runtime`` is importable."""
    name = "_oci_runtime_core_for_tests"
    if name + ".spec" in sys.modules:
        return sys.modules[name + ".spec"]
    package_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "plugins", "module_utils", "_runtime")
    if name not in sys.modules:
        package_spec = importlib.util.spec_from_file_location(
            name, os.path.join(package_dir, "__init__.py"), submodule_search_locations=[package_dir])
        package = importlib.util.module_from_spec(package_spec)
        sys.modules[name] = package
        package_spec.loader.exec_module(package)
    return importlib.import_module(name + ".spec")


def runc_spec(args=None, env=None, hostname=None):
    """Return the config that ``runc spec`` writes, with terminal off, a writable root and these values."""
    config = _core_spec().default_spec()
    process_env = config["process"]["env"]
    for item in _env_items(env):
        key = item.split("=", 1)[0]
        process_env = [e for e in process_env if e.split("=", 1)[0] != key]
        process_env.append(item)
    config["process"]["args"] = list(DEFAULT_ARGS if args is None else args)
    config["process"]["env"] = process_env
    config["root"]["readonly"] = False
    config["hostname"] = DEFAULT_HOSTNAME if hostname is None else hostname
    return config


def _env_items(env):
    """``K=V`` strings from a mapping or an iterable of ``K=V`` strings."""
    if env is None:
        return []
    if isinstance(env, dict):
        return ["%s=%s" % (key, value) for key, value in env.items()]
    items = list(env)
    for item in items:
        if "=" not in item or item.startswith("="):
            raise BundleBuildError("env entries must look like KEY=VALUE, got %r" % (item,))
    return items


def config_bytes(args=None, env=None, hostname=None):
    """The config.json bytes, formatted as runc formats them (tab indent, no final newline)."""
    return _core_spec().config_bytes(runc_spec(args, env, hostname))


def _check_static(path):
    """Raise BundleBuildError unless ``path`` is a statically linked ELF executable."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if len(header) < 52 or header[:4] != b"\x7fELF":
                raise BundleBuildError("%s is not an ELF executable" % path)
            is64 = header[4] == 2
            order = "<" if header[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(order + "Q", header, 0x20)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 0x36)
            else:
                phoff, = struct.unpack_from(order + "I", header, 0x1C)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 0x2A)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except (IOError, OSError) as exc:
        raise BundleBuildError("cannot read %s (install busybox-static): %s" % (path, exc))
    for index in range(phnum):
        p_type, = struct.unpack_from(order + "I", table, index * phentsize)
        if p_type == PT_INTERP:
            raise BundleBuildError("%s is dynamically linked; a bundle needs the static one (install busybox-static)"
                                   % path)


def _applets(busybox):
    try:
        output = subprocess.check_output([busybox, "--list"])
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BundleBuildError("%s --list failed: %s" % (busybox, exc))
    return sorted(set(name for name in output.decode("ascii").split() if name and "/" not in name) - {"busybox"})


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write_file(path, data, mode):
    """Write ``data`` to ``path`` with ``mode`` unless it is already so; return whether anything changed."""
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == len(data) and _read(path) == data:
        if stat.S_IMODE(st.st_mode) == mode:
            return False
        os.chmod(path, mode)
        return True
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return True


def _symlink(path, target):
    if os.path.islink(path) and os.readlink(path) == target:
        return False
    tmp = os.path.join(os.path.dirname(path), ".tmp-link-%d" % os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)
    return True


def _mkdir(path, mode):
    if os.path.isdir(path) and not os.path.islink(path):
        if stat.S_IMODE(os.stat(path).st_mode) == mode:
            return False
    else:
        if os.path.lexists(path):
            raise BundleBuildError("%s exists and is not a directory" % path)
        os.makedirs(path)
    os.chmod(path, mode)
    return True


def build_bundle(dest, args=None, env=None, hostname=None):
    """Create or update the busybox bundle at ``dest``; return True when anything was written."""
    _check_static(BUSYBOX)
    busybox = _read(BUSYBOX)
    config = config_bytes(args, env, hostname)
    dest = os.path.abspath(dest)
    rootfs = os.path.join(dest, "rootfs")

    changed = False
    if not os.path.isdir(dest):
        os.makedirs(dest)
        changed = True
    changed |= _mkdir(rootfs, 0o755)
    for name, mode in ROOTFS_DIRS:
        changed |= _mkdir(os.path.join(rootfs, name), mode)
    changed |= _write_file(os.path.join(rootfs, "bin", "busybox"), busybox, 0o755)
    for applet in _applets(BUSYBOX):
        changed |= _symlink(os.path.join(rootfs, "bin", applet), "busybox")
    changed |= _write_file(os.path.join(rootfs, "etc", "passwd"), PASSWD.encode("ascii"), 0o644)
    changed |= _write_file(os.path.join(rootfs, "etc", "group"), GROUP.encode("ascii"), 0o644)
    changed |= _write_file(os.path.join(dest, "config.json"), config, 0o644)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build a busybox OCI bundle (runc spec config, writable root).")
    parser.add_argument("dest", help="bundle directory to create or update")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="environment variable for the process (repeatable)")
    parser.add_argument("--hostname", default=None, help="container hostname (default: %s)" % DEFAULT_HOSTNAME)
    parser.add_argument("--args", nargs=argparse.REMAINDER, default=None, metavar="ARG",
                        help="process args, everything after --args (default: %s)" % " ".join(DEFAULT_ARGS))
    options = parser.parse_args(argv)
    if options.args is not None and not options.args:
        parser.error("--args needs at least one argument")
    try:
        changed = build_bundle(options.dest, args=options.args, env=options.env, hostname=options.hostname)
    except (BundleBuildError, OSError) as exc:
        sys.stderr.write("make_busybox_bundle: error: %s\n" % exc)
        return 1
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
