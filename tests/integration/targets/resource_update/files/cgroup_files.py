#!/usr/bin/env python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, the cgroup v1 limit files of one process, read from the kernel.

The cgroup of each controller is taken from /proc/<pid>/cgroup (on the project's hybrid hosts the
memory cgroup of a container is nested below the caller's, e.g. /process_api/<x>/<id>). This is an
independent reader for the integration tests: it does not use the collection's code.

Usage: cgroup_files.py PID
Output: {"dirs": {controller: directory}, "files": {file name: content}, "page_size": bytes}
"""

from __future__ import annotations

import json
import os
import sys

ROOT = "/sys/fs/cgroup"
FILES = {
    "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.memsw.limit_in_bytes", "memory.kmem.limit_in_bytes",
               "memory.kmem.tcp.limit_in_bytes"],
    "blkio": ["blkio.weight", "blkio.bfq.weight"],
    "pids": ["pids.max"],
    "freezer": ["freezer.state"],
}


def main():
    pid = int(sys.argv[1])
    cgroups = {}
    with open("/proc/%d/cgroup" % pid) as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                for controller in parts[1].split(","):
                    if controller:
                        cgroups[controller] = parts[2]
    result = {"dirs": {}, "files": {}, "page_size": os.sysconf("SC_PAGE_SIZE")}
    for controller, names in sorted(FILES.items()):
        if controller not in cgroups:
            continue
        directory = os.path.join(ROOT, controller, cgroups[controller].lstrip("/"))
        result["dirs"][controller] = directory
        for name in names:
            path = os.path.join(directory, name)
            if os.path.exists(path):
                with open(path) as handle:
                    result["files"][name] = handle.read().strip()
    json.dump(result, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
