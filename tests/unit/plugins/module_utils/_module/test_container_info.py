# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_info adapter on a fixture state dir with a fake runtime (no runc, no cgroups)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import container_info as adapter
from ansible_collections.oci.runtime.plugins.module_utils._runtime import checkpoint as ckpt
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import InvalidIdError


class FakeRuntime(object):
    """Answers ``state`` for every container from a dict (None: the runtime does not know it)."""

    name = "runc"
    root = None
    runtime_args = []

    def __init__(self, states=None):
        self.states = states or {}
        self.calls = []

    def state(self, container_id):
        self.calls.append(("state", container_id))
        return self.states.get(container_id)

    def __getattr__(self, verb):
        raise AssertionError("container_info must not call the runtime's %s" % verb)


def _record(tmp_path, container_id, labels=(), **extra):
    directory = tmp_path / "state" / container_id
    directory.mkdir(parents=True)
    record = {"bundle": "/srv/" + container_id, "labels": list(labels), "runtime": "runc",
              "runtimeRoot": "", "configDigest": "sha256:x", "created": "2026-11-30T07:00:00Z"}
    record.update(extra)
    (directory / "state.json").write_text(json.dumps(record))
    return directory


def _params(tmp_path, **overrides):
    params = {"state_dir": str(tmp_path / "state"), "runtime": None, "runtime_root": None,
              "name": None, "labels": None, "checkpoint_root": str(tmp_path / "ckpt"),
              "checkpoint_dir": None}
    params.update(overrides)
    return params


def _run(tmp_path, runtime=None, **params):
    runtime = runtime or FakeRuntime()
    return adapter.ContainerInfo(_params(tmp_path, **params), runtime=runtime).run(), runtime


def test_lists_every_container_sorted_with_one_state_call_each(tmp_path):
    for cid in ("ci-b", "ci-a", "ci-c"):
        _record(tmp_path, cid)
    (tmp_path / "state" / ".locks").mkdir()
    (tmp_path / "state" / "not-a-container").mkdir()
    result, runtime = _run(tmp_path)
    assert result["changed"] is False
    assert [c["id"] for c in result["containers"]] == ["ci-a", "ci-b", "ci-c"]
    assert runtime.calls == [("state", "ci-a"), ("state", "ci-b"), ("state", "ci-c")]


def test_a_stopped_container_has_no_resources_or_stats(tmp_path):
    _record(tmp_path, "ci-a", labels=["app=web"], runtimeRoot="/run/r")
    result, dummy = _run(tmp_path)
    info = result["containers"][0]
    assert info["status"] == "stopped"
    assert info["pid"] is None and info["shim_pid"] is None and info["exit_status"] is None
    assert info["labels"] == {"app": "web"}
    assert info["runtime_root"] == "/run/r"
    assert info["resources"] == {} and info["stats"] == {}
    assert info["processes"] == [] and info["checkpoints"] == []


def test_runtime_root_null_for_the_default(tmp_path):
    _record(tmp_path, "ci-a")
    assert _run(tmp_path)[0]["containers"][0]["runtime_root"] is None


def test_name_reads_one_container_only(tmp_path):
    _record(tmp_path, "ci-a")
    _record(tmp_path, "ci-b")
    result, runtime = _run(tmp_path, name="ci-b")
    assert [c["id"] for c in result["containers"]] == ["ci-b"]
    assert runtime.calls == [("state", "ci-b")]


def test_a_missing_name_or_state_dir_is_an_empty_list_and_creates_nothing(tmp_path):
    result, runtime = _run(tmp_path, name="ci-nope")
    assert result["containers"] == [] and runtime.calls == []
    result, runtime = _run(tmp_path)
    assert result["containers"] == []
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("wanted, expected", [
    ({"app": "web"}, ["ci-a", "ci-b"]),
    ({"app": "web", "tier": "front"}, ["ci-a"]),
    ({"tier": "front"}, ["ci-a"]),
    ({"app": "db"}, []),
    ({"port": 80}, ["ci-c"]),  # values are compared as text
    ({}, ["ci-a", "ci-b", "ci-c"]),
])
def test_labels_filter_before_asking_the_runtime(tmp_path, wanted, expected):
    _record(tmp_path, "ci-a", labels=["app=web", "tier=front"])
    _record(tmp_path, "ci-b", labels=["app=web"])
    _record(tmp_path, "ci-c", labels=["port=80"])
    result, runtime = _run(tmp_path, labels=wanted)
    assert [c["id"] for c in result["containers"]] == expected
    assert [call[1] for call in runtime.calls] == expected


def _checkpoint(directory, name):
    path = directory / name
    path.mkdir(parents=True)
    (path / ckpt.META_FILE).write_text(json.dumps({"name": name, "container": "ci-a"}))


def test_checkpoints_from_the_root_or_from_checkpoint_dir(tmp_path):
    _record(tmp_path, "ci-a")
    _checkpoint(tmp_path / "ckpt" / "ci-a", "snap1")
    _checkpoint(tmp_path / "elsewhere", "snap2")
    result = _run(tmp_path)[0]
    assert [c["name"] for c in result["containers"][0]["checkpoints"]] == ["snap1"]
    result = _run(tmp_path, name="ci-a", checkpoint_dir=str(tmp_path / "elsewhere"))[0]
    assert [c["name"] for c in result["containers"][0]["checkpoints"]] == ["snap2"]


def test_default_checkpoint_root_is_the_checkpoint_module_default(tmp_path):
    info = adapter.ContainerInfo(_params(tmp_path, checkpoint_root=None), runtime=FakeRuntime())
    assert info.checkpoint_dir("ci-a") == os.path.join(ckpt.DEFAULT_CHECKPOINT_ROOT, "ci-a")


def test_processes_with_exit_statuses(tmp_path):
    directory = _record(tmp_path, "ci-a")
    for pid_dir, status in (("job", "5"), ("probe", "137")):
        (directory / pid_dir).mkdir()
        (directory / pid_dir / "process.json").write_text("{}")
        (directory / pid_dir / "exitStatus").write_text(status)
    result = _run(tmp_path)[0]
    assert result["containers"][0]["processes"] == [
        {"id": "job", "pid": None, "status": "exited", "exit_status": 5, "oom_killed": False},
        # 137 without a recorded cgroup whose OOM kill counter rose: a plain SIGKILL
        {"id": "probe", "pid": None, "status": "exited", "exit_status": 137, "oom_killed": False},
    ]


def test_a_running_container_reads_its_cgroup(tmp_path, monkeypatch):
    _record(tmp_path, "ci-a")
    seen = []

    class Files(object):
        version = 1

    def of_pid(pid, cgroup_root):
        seen.append(pid)
        return Files()

    monkeypatch.setattr(adapter.res.CgroupFiles, "of_pid", staticmethod(of_pid))
    monkeypatch.setattr(adapter.res, "read_kernel", lambda files: {"memory": 1})
    monkeypatch.setattr(adapter.res, "read_stats", lambda files: {"pids_current": 2})
    info = adapter.ContainerInfo(_params(tmp_path), runtime=FakeRuntime())
    assert info.cgroup_view({"status": "running", "pid": 4242}) == ({"memory": 1}, {"pids_current": 2})
    assert info.cgroup_view({"status": "paused", "pid": 4243}) == ({"memory": 1}, {"pids_current": 2})
    assert info.cgroup_view({"status": "stopped", "pid": None}) == ({}, {})
    assert seen == [4242, 4243]


def test_a_process_that_ended_between_the_reads_has_empty_views(tmp_path, monkeypatch):
    def gone(pid, cgroup_root):
        raise adapter.res.ResourceError("cannot read the cgroups of pid %d" % pid)

    monkeypatch.setattr(adapter.res.CgroupFiles, "of_pid", staticmethod(gone))
    info = adapter.ContainerInfo(_params(tmp_path), runtime=FakeRuntime())
    assert info.cgroup_view({"status": "running", "pid": 4242}) == ({}, {})


@pytest.mark.parametrize("params, error, words", [
    ({"name": "../etc"}, InvalidIdError, "is not valid"),
    ({"labels": {"a=b": "c"}}, InvalidIdError, "label key"),
    ({"labels": {"": "c"}}, InvalidIdError, "label key"),
    ({"labels": {"a": None}}, InvalidIdError, "has no value"),
    ({"checkpoint_dir": "/x"}, ValueError, "give name"),
])
def test_bad_input(tmp_path, params, error, words):
    with pytest.raises(error) as info:
        adapter.ContainerInfo(_params(tmp_path, **params), runtime=FakeRuntime())
    assert words in str(info.value)


def test_labels_match():
    assert adapter.labels_match({"a": "1", "b": "2"}, {"a": "1"})
    assert adapter.labels_match({"a": "1"}, {"a": 1})
    assert not adapter.labels_match({"a": "1"}, {"a": "2"})
    assert not adapter.labels_match({}, {"a": ""})
    assert adapter.labels_match({}, {})
