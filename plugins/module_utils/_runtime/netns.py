# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named network namespaces, as ``ip netns`` keeps them: a namespace bind-mounted on
``/run/netns/<name>``, so it lives without a process in it and ``ip netns exec <name>`` and the CNI
plugins reach it by path.

They are made and removed with iproute2's ``ip netns add`` / ``ip netns delete`` (iproute2 is on
every Linux host; it makes ``/run/netns`` a shared mount the first time, so the namespace's mount
is released in every mount namespace when it is deleted). The loopback interface is brought up at
creation: runc leaves a namespace it joins by path as it finds it.
"""

from __future__ import annotations

import os
import re
import subprocess

from .errors import RuntimeCoreError

NETNS_DIR = "/run/netns"
IP_COMMAND = "ip"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class NetnsError(RuntimeCoreError):
    """A network namespace could not be made or removed."""


def path_of(name: str) -> str:
    return os.path.join(NETNS_DIR, check_name(name))


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise NetnsError("%r is not a valid network namespace name" % (name,))
    return name


def name_of(path: object) -> str:
    """The name of a namespace path under NETNS_DIR; NetnsError for any other path."""
    if not isinstance(path, str) or os.path.dirname(path) != NETNS_DIR:
        raise NetnsError("network namespace path %r is not under %s" % (path, NETNS_DIR))
    return check_name(os.path.basename(path))


def _ip(*args: str) -> None:
    argv = [IP_COMMAND] + list(args)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                              close_fds=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError("cannot run %s: %s" % (" ".join(argv), exc), argv=argv)
    if proc.returncode != 0:
        raise NetnsError("%s failed: %s" % (" ".join(argv),
                                            proc.stderr.decode("utf-8", "replace").strip()),
                         argv=argv, rc=proc.returncode,
                         stderr=proc.stderr.decode("utf-8", "replace"))


def is_mounted(path: str) -> bool:
    """Whether ``path`` is a mount point (a live named namespace), from /proc/self/mountinfo."""
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    encoded = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011") \
        .replace("\n", "\\012")
    return any(len(fields) > 4 and fields[4] == encoded
               for fields in (line.split(" ") for line in text.splitlines()))


def exists(name: str) -> bool:
    return os.path.lexists(path_of(name))


def create(name: str) -> str:
    """A new named network namespace with its loopback up; its path. A namespace left under the
    same name is deleted first."""
    path = path_of(name)
    if os.path.lexists(path):
        remove(name)
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
    except NetnsError:
        remove(name)
        raise
    return path


def remove(name: str) -> None:
    """Delete the named namespace (unmount and unlink); nothing when it is not there."""
    path = path_of(name)
    if not os.path.lexists(path):
        return
    if is_mounted(path):
        _ip("netns", "delete", name)
    if os.path.lexists(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise NetnsError("cannot remove %s: %s" % (path, exc.strerror), path=path)
