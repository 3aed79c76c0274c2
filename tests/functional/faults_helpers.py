# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the reliability tests (faults, corrupt state, concurrency, soak, security): what is
left on the host for one container, counted only in places that belong to the test."""

from __future__ import annotations

import glob
import os

from conftest import shim_processes

CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_dirs(container_id):
    """runc names a container's cgroup /<id> in every v1 hierarchy (and in the v2 tree)."""
    return sorted(glob.glob(os.path.join(CGROUP_ROOT, "*", container_id))
                  + glob.glob(os.path.join(CGROUP_ROOT, container_id)))


def mounts_below(path):
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4]
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return found


def leftovers(env, container_id):
    """Everything of ``container_id`` still on the host: [] when it is completely gone."""
    found = []
    if container_id in env.runc_ids():
        found.append("runc container %s" % container_id)
    found += ["shim %d" % pid for pid in shim_processes(env.state_dir, container_id)]
    found += ["cgroup %s" % path for path in cgroup_dirs(container_id)]
    if os.path.lexists(os.path.join(env.state_dir, container_id)):
        found.append("state dir entry %s" % container_id)
    found += ["mount %s" % point for point in mounts_below(env.runtime_root)]
    return found


_COUNT = [0]


def rel_id(env, label):
    """A container id with this suite's prefix (rel-), unique on the host, removed by env's
    finalizer."""
    _COUNT[0] += 1
    container_id = "rel-%d-%d-%s" % (os.getpid(), _COUNT[0], label)
    env.ids.append(container_id)
    return container_id
