# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""oom: the OOM kill counter of cgroup v1 and v2 fixture trees, and how a process dir's records
(the recorded cgroup, the counter at start and before the delete) decide oom_killed."""

from __future__ import annotations

import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import oom
from ansible_collections.oci.runtime.plugins.module_utils._runtime.process import ProcessRecord
from ansible_collections.oci.runtime.plugins.module_utils._runtime.resources import CgroupFiles

V1_PROC = "9:pids:/ci-oom\n4:memory:/outer/ci-oom\n0::/ci-oom\n"
V2_PROC = "0::/system.slice/ci-oom\n"
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill %d\n"
V2_EVENTS = "low 0\nhigh 0\nmax 12\noom 2\noom_kill %d\noom_group_kill 0\n"


def _write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(content)


def _v1_tree(root, **files):
    for name, content in files.items():
        _write(os.path.join(str(root), "memory", "outer", "ci-oom", name.replace("_", ".", 1)), content)
    os.makedirs(os.path.join(str(root), "unified", "ci-oom"), exist_ok=True)
    return CgroupFiles(V1_PROC, cgroup_root=str(root))


def _v2_tree(root, events):
    _write(os.path.join(str(root), "cgroup.controllers"), "cpu io memory pids\n")
    if events is not None:
        _write(os.path.join(str(root), "system.slice", "ci-oom", "memory.events"), events)
    return CgroupFiles(V2_PROC, cgroup_root=str(root))


def test_parsers_read_the_oom_kill_line():
    assert oom.parse_oom_control(V1_OOM_CONTROL % 3) == 3
    assert oom.parse_memory_events(V2_EVENTS % 1) == 1
    assert oom.parse_oom_control("oom_kill_disable 0\nunder_oom 0\n") is None  # kernel < 4.13
    assert oom.parse_memory_events("oom_kill x\n") is None
    assert oom.parse_memory_events(None) is None and oom.parse_memory_events("") is None


def test_v1_counter_from_oom_control(tmp_path):
    files = _v1_tree(tmp_path, memory_oom_control=V1_OOM_CONTROL % 2, memory_failcnt="40\n")
    assert files.version == 1 and oom.oom_kills(files) == 2


def test_v1_without_oom_kill_line_falls_back_to_failcnt(tmp_path):
    files = _v1_tree(tmp_path, memory_oom_control="oom_kill_disable 0\nunder_oom 0\n",
                     memory_failcnt="5\n")
    assert oom.oom_kills(files) == 5


def test_v1_cgroup_gone_reads_none(tmp_path):
    assert oom.oom_kills(_v1_tree(tmp_path)) is None


def test_v2_counter_from_memory_events(tmp_path):
    assert oom.oom_kills(_v2_tree(tmp_path, V2_EVENTS % 4)) == 4
    assert oom.oom_kills(_v2_tree(tmp_path / "gone", None)) is None


@pytest.fixture
def records(tmp_path, monkeypatch):
    """An init and an exec'd process dir whose recorded cgroup is a v2 fixture tree."""
    root = tmp_path / "cgroup"
    monkeypatch.setattr(oom, "CGROUP_ROOT", str(root))
    layout = L.Layout(str(tmp_path / "state"))
    init = ProcessRecord(layout, "c1", L.INIT_PROCESS_ID)
    other = ProcessRecord(layout, "c1", "p1")
    for record in (init, other):
        os.makedirs(record.dir)
    L.atomic_write(init.path(oom.CGROUP_FILE), V2_PROC)
    _v2_tree(root, V2_EVENTS % 0)

    def counter(value):
        _write(os.path.join(str(root), "system.slice", "ci-oom", "memory.events"),
               V2_EVENTS % value if value is not None else "")
    return init, other, counter


def test_oom_killed_needs_sigkill_and_a_risen_counter(records):
    init, other, counter = records
    counter(1)
    assert oom.oom_killed(init, init, 137) is True
    assert oom.oom_killed(init, init, 1) is False and oom.oom_killed(init, init, None) is False
    counter(0)
    assert oom.oom_killed(init, init, 137) is False  # a plain SIGKILL


def test_exec_process_counts_from_its_start(records):
    init, other, counter = records
    counter(2)
    oom.remember_start(other, init)
    assert L.read_int(other.path(oom.OOM_KILLS_START_FILE)) == 2
    assert oom.oom_killed(other, init, 137) is False  # kills before it started are not its own
    counter(3)
    assert oom.oom_killed(other, init, 137) is True


def test_recorded_final_count_outlives_the_cgroup(records):
    init, other, counter = records
    counter(1)
    oom.record_final([init, other], init)
    counter(None)  # the runtime deleted the cgroup (its files read empty or are gone)
    assert L.read_int(init.path(oom.OOM_KILLS_FILE)) == 1
    assert oom.oom_killed(init, init, 137) is True
    counter(7)  # a later record_final keeps the first count
    oom.record_final([init], init)
    assert L.read_int(init.path(oom.OOM_KILLS_FILE)) == 1


def test_no_recorded_cgroup_is_not_oom_killed(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    init = ProcessRecord(layout, "c1", L.INIT_PROCESS_ID)
    os.makedirs(init.dir)
    oom.record_final([init], init)
    assert not os.path.exists(init.path(oom.OOM_KILLS_FILE))
    assert oom.oom_killed(init, init, 137) is False
