# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""resources.read_stats: a container's current usage from cgroup v1 and v2 fixture trees."""

from __future__ import annotations

import os

from ansible_collections.oci.runtime.plugins.module_utils._runtime import resources as res

V1_UNLIMITED = "9223372036854771712"  # cgroup v1's "no memory limit" (4 KiB pages)

V1_PROC = """\
9:name=systemd:/ci-stats
8:pids:/ci-stats
4:memory:/process_api/xyz/ci-stats
2:cpuacct:/ci-stats
1:cpu:/ci-stats
0::/ci-stats
"""
V2_PROC = "0::/system.slice/ci-stats\n"


def _write(root, rel, content):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(content)


def _v1(tmp_path, proc=V1_PROC, **files):
    """A hybrid host's v1 tree like this project's machines (nested memory cgroup, a cgroup2 mount
    without controllers)."""
    root = tmp_path / "cgroup"
    tree = {
        "cpuacct/ci-stats/cpuacct.usage": "51234567\n",
        "memory/process_api/xyz/ci-stats/memory.usage_in_bytes": "1286144\n",
        "memory/process_api/xyz/ci-stats/memory.limit_in_bytes": "268435456\n",
        "pids/ci-stats/pids.current": "3\n",
    }
    tree.update(files)
    for rel, content in tree.items():
        if content is not None:
            _write(root, rel, content)
    (root / "unified" / "ci-stats").mkdir(parents=True, exist_ok=True)
    return res.CgroupFiles(proc, cgroup_root=str(root))


def _v2(tmp_path, **files):
    root = tmp_path / "cgroup"
    _write(root, "cgroup.controllers", "cpuset cpu io memory pids\n")
    tree = {
        "cpu.stat": "usage_usec 51234\nuser_usec 40000\nsystem_usec 11234\nnr_periods 0\n",
        "memory.current": "1286144\n",
        "memory.max": "268435456\n",
        "pids.current": "3\n",
    }
    tree.update(files)
    for name, content in tree.items():
        if content is not None:
            _write(root, os.path.join("system.slice", "ci-stats", name), content)
    return res.CgroupFiles(V2_PROC, cgroup_root=str(root))


def test_v1_reads_every_stat(tmp_path):
    assert res.read_stats(_v1(tmp_path)) == {
        "cpu_usage_ns": 51234567,
        "memory_usage_bytes": 1286144,
        "memory_limit_bytes": 268435456,
        "pids_current": 3,
        "cgroup_version": 1,
    }


def test_v1_unlimited_memory_is_minus_one(tmp_path):
    files = _v1(tmp_path, **{"memory/process_api/xyz/ci-stats/memory.limit_in_bytes": V1_UNLIMITED + "\n"})
    assert res.read_stats(files)["memory_limit_bytes"] == -1


def test_v1_reads_the_memory_cgroup_where_proc_says_it_is(tmp_path):
    # The memory cgroup is nested under the host's own: the path comes from /proc/<pid>/cgroup,
    # not from the container id.
    files = _v1(tmp_path, **{"memory/ci-stats/memory.usage_in_bytes": "999\n"})
    assert res.read_stats(files)["memory_usage_bytes"] == 1286144


def test_v1_without_pids_controller_leaves_the_field_out(tmp_path):
    proc = "".join(line + "\n" for line in V1_PROC.splitlines() if ":pids:" not in line)
    stats = res.read_stats(_v1(tmp_path, proc=proc))
    assert "pids_current" not in stats
    assert stats["cpu_usage_ns"] == 51234567


def test_v1_missing_or_garbled_files_are_left_out(tmp_path):
    files = _v1(tmp_path, **{
        "cpuacct/ci-stats/cpuacct.usage": None,
        "memory/process_api/xyz/ci-stats/memory.usage_in_bytes": "\n",
        "memory/process_api/xyz/ci-stats/memory.limit_in_bytes": "garbage\n",
    })
    assert res.read_stats(files) == {"pids_current": 3, "cgroup_version": 1}


def test_v2_reads_every_stat(tmp_path):
    assert res.read_stats(_v2(tmp_path)) == {
        "cpu_usage_ns": 51234000,  # usage_usec in nanoseconds
        "memory_usage_bytes": 1286144,
        "memory_limit_bytes": 268435456,
        "pids_current": 3,
        "cgroup_version": 2,
    }


def test_v2_max_memory_is_minus_one(tmp_path):
    assert res.read_stats(_v2(tmp_path, **{"memory.max": "max\n"}))["memory_limit_bytes"] == -1


def test_v2_cpu_stat_without_usage_line(tmp_path):
    stats = res.read_stats(_v2(tmp_path, **{"cpu.stat": "user_usec 1\nsystem_usec 2\n"}))
    assert "cpu_usage_ns" not in stats


def test_v2_cgroup_gone(tmp_path):
    files = _v2(tmp_path, **{"cpu.stat": None, "memory.current": None, "memory.max": None,
                             "pids.current": None})
    assert res.read_stats(files) == {"cgroup_version": 2}


def test_stats_of_this_process_read_the_real_host():
    # Whatever this host has (v1, v2 or hybrid), the reader works on the real files.
    stats = res.read_stats(res.CgroupFiles.of_pid(os.getpid()))
    assert stats["cgroup_version"] in (1, 2)
    assert set(stats) <= {"cgroup_version", "cpu_usage_ns", "memory_usage_bytes", "memory_limit_bytes",
                          "pids_current"}
    for value in stats.values():
        assert isinstance(value, int)
