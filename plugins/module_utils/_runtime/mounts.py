# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unmounting what a killed runtime or CRIU left mounted under the directories of one container."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

MNT_DETACH = 2


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def mount_points_below(prefixes: Iterable[str], mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below any of ``prefixes``, deepest first."""
    roots = [os.path.normpath(p) for p in prefixes if p]
    found = []
    try:
        with open(mountinfo) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 5:
                    continue
                point = _unescape(fields[4])
                if any(point == r or point.startswith(r + "/") for r in roots):
                    found.append(point)
    except (IOError, OSError):
        return []
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_below(prefixes: Iterable[str]) -> list[str]:
    """Lazily unmount everything mounted below ``prefixes``; returns what could not be unmounted."""
    points = mount_points_below(prefixes)
    if not points:
        return []
    import ctypes  # pylint: disable=import-outside-toplevel
    libc = ctypes.CDLL(None, use_errno=True)
    stuck = []
    for point in points:
        if libc.umount2(point.encode(), MNT_DETACH) != 0:
            stuck.append(point)
    return stuck


def remove_empty_cgroups(cgroup_path: str, cgroup_root: str = "/sys/fs/cgroup") -> None:
    """rmdir the container's cgroup in every hierarchy where it is left empty (a killed runtime or
    CRIU can leave them); a cgroup that still holds a process cannot be removed, and stays."""
    relative = cgroup_path.strip("/")
    if not relative or ".." in relative.split("/"):
        return
    candidates = [os.path.join(cgroup_root, relative)]
    try:
        candidates += [os.path.join(cgroup_root, name, relative) for name in os.listdir(cgroup_root)]
    except OSError:
        return
    for path in candidates:
        try:
            os.rmdir(path)
        except OSError:
            pass
