# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checkpoint adapter: present / absent / restored plans, errors, and the options' round trip
through checkpoint.json, with a fake container and runtime over a real checkpoint directory (no
runc, no CRIU: a stand-in ``criu`` that only exits 0)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import checkpoint as adapter
from ansible_collections.oci.runtime.plugins.module_utils._runtime import checkpoint as ckpt
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    InvalidValueError,
    NoSuchContainerError,
    RuntimeCommandError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord


class FakeRuntime(object):
    flavor = "runc"

    def __init__(self):
        self.calls = []

    def run(self, verb, args=(), criu=None, **kwargs):
        self.calls.append((verb, list(args), criu))


class FakeContainer(object):
    id = "app"

    def __init__(self, status="running", restore_error=None):
        self._status = status
        self.runtime = FakeRuntime()
        self.record = ContainerRecord("/srv/b", config_digest="sha256:c0")
        self.restore_error = restore_error
        self.calls = []

    def status(self):
        return self._status

    def restore(self, name, image_path, work, args, criu, timeout):
        self.calls.append(("restore", name, image_path, args, timeout))
        if self.restore_error is not None:
            raise self.restore_error
        self._status = "running"

    def remove(self):
        self.calls.append(("remove",))

    def forget_runtime_state(self):
        pass

    def describe(self):
        return {"id": self.id, "status": self._status}


@pytest.fixture
def criu(tmp_path):
    path = str(tmp_path / "criu")
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def loaded(monkeypatch):
    """Make Container.load return what the test puts in ``loaded[0]`` (None: no container)."""
    box = [None]
    monkeypatch.setattr(adapter.core.Container, "load",
                        classmethod(lambda cls, layout, container_id, **kwargs: box[0]))
    return box


def _params(tmp_path, criu_path=None, **overrides):
    params = {name: spec.get("default") for name, spec in adapter.CHECKPOINT_OPTIONS.items()}
    params.update({"container": "app", "name": "c1", "state_dir": str(tmp_path / "state"),
                   "checkpoint_dir": str(tmp_path / "ckpt"), "criu_path": criu_path,
                   "runtime": None, "runtime_root": None})
    params.update(overrides)
    return params


def _store_checkpoint(tmp_path, name="c1", **meta):
    directory = tmp_path / "ckpt" / name
    directory.mkdir(parents=True)
    data = {"name": name, "created": "2026-01-01T00:00:00Z", "tcp": True, "unixSockets": True,
            "shell": False, "exit": False, "emptyNS": ["network"], "container": "app",
            "bundle": "/srv/b", "configDigest": "sha256:c0"}
    data.update(meta)
    (directory / ckpt.META_FILE).write_text(json.dumps(data))
    return str(directory)


# --- input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,error", [
    ({"container": "../x"}, InvalidIdError),
    ({"name": "a/b"}, InvalidIdError),
    ({"checkpoint_dir": "relative"}, ckpt.CheckpointError),
    ({"start_timeout": float("nan")}, InvalidValueError),
])
def test_bad_input(tmp_path, overrides, error):
    with pytest.raises(error):
        adapter.CheckpointConverger(_params(tmp_path, **overrides))


def test_default_checkpoint_dir_is_per_container(tmp_path):
    converger = adapter.CheckpointConverger(_params(tmp_path, checkpoint_dir=None))
    assert converger.store.directory == os.path.join(ckpt.DEFAULT_CHECKPOINT_ROOT, "app")


# --- present ---------------------------------------------------------------------------------------

def test_present_without_container_is_the_one_error(tmp_path, loaded, criu):
    with pytest.raises(NoSuchContainerError) as info:
        adapter.CheckpointConverger(_params(tmp_path, criu), check_mode=True).run()
    assert info.value.msg == ("container 'app' does not exist under %s: nothing to checkpoint"
                              % (tmp_path / "state"))


def test_present_of_a_stopped_container_fails(tmp_path, loaded, criu):
    loaded[0] = FakeContainer(status="stopped")
    with pytest.raises(ckpt.CheckpointError) as info:
        adapter.CheckpointConverger(_params(tmp_path, criu), check_mode=True).run()
    assert "is stopped: only a running or paused container" in info.value.msg


def test_present_check_mode_plans_with_the_task_options(tmp_path, loaded, criu):
    loaded[0] = FakeContainer()
    result = adapter.CheckpointConverger(
        _params(tmp_path, criu, exit=True, tcp=True, empty_ns=["network"]), check_mode=True).run()
    assert result["actions"] == ["checkpoint and exit"] and result["changed"] is True
    assert result["checkpoint"] == {
        "name": "c1", "path": str(tmp_path / "ckpt" / "c1"),
        "options": {"tcp": True, "unix_sockets": False, "shell": False, "exit": True,
                    "empty_ns": ["network"]}}
    assert result["diff"]["before"] == {"state": "absent"}
    assert loaded[0].runtime.calls == [] and not os.path.exists(str(tmp_path / "ckpt"))


def test_present_writes_the_options_under_their_checkpoint_json_names(tmp_path, loaded, criu):
    container = loaded[0] = FakeContainer()
    result = adapter.CheckpointConverger(
        _params(tmp_path, criu, unix_sockets=True, shell=True, empty_ns=["network"])).run()
    assert result["actions"] == ["checkpoint"]
    verb, args, used_criu = container.runtime.calls[0]
    assert (verb, args[-1], used_criu) == ("checkpoint", "app", criu)
    assert "--leave-running" in args and "--ext-unix-sk" in args and "--shell-job" in args
    assert "--tcp-established" not in args
    assert args[args.index("--empty-ns") + 1] == "network"
    meta = json.loads((tmp_path / "ckpt" / "c1" / ckpt.META_FILE).read_text())
    assert {k: meta[k] for k in ("tcp", "unixSockets", "shell", "exit", "emptyNS")} == {
        "tcp": False, "unixSockets": True, "shell": True, "exit": False, "emptyNS": ["network"]}
    assert (meta["container"], meta["bundle"], meta["configDigest"]) == ("app", "/srv/b", "sha256:c0")
    assert result["checkpoint"]["options"] == {"tcp": False, "unix_sockets": True, "shell": True,
                                               "exit": False, "empty_ns": ["network"]}
    assert [c["name"] for c in result["checkpoints"]] == ["c1"]


def test_present_keeps_an_existing_checkpoint(tmp_path, loaded, criu):
    loaded[0] = FakeContainer()
    _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, criu)).run()
    assert result["actions"] == [] and result["changed"] is False and "diff" not in result
    assert result["checkpoint"]["options"]["empty_ns"] == ["network"]
    assert loaded[0].runtime.calls == []


def test_force_replaces_it(tmp_path, loaded, criu):
    loaded[0] = FakeContainer()
    _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, criu, force=True), check_mode=True).run()
    assert result["actions"] == ["checkpoint"]


# --- absent ----------------------------------------------------------------------------------------

def test_absent_removes_the_checkpoint(tmp_path, loaded):
    path = _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, state="absent")).run()
    assert result["actions"] == ["remove"] and not os.path.exists(path)
    assert result["checkpoint"] == {} and result["checkpoints"] == []
    assert result["diff"]["after"] == {"state": "absent"}
    assert result["diff"]["before"]["name"] == "c1"


def test_absent_in_check_mode_keeps_it(tmp_path, loaded):
    path = _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, state="absent"), check_mode=True).run()
    assert result["actions"] == ["remove"] and os.path.exists(path)


def test_absent_of_nothing(tmp_path, loaded):
    result = adapter.CheckpointConverger(_params(tmp_path, state="absent")).run()
    assert result["actions"] == [] and result["changed"] is False


# --- restored --------------------------------------------------------------------------------------

def test_restore_from_nothing_fails(tmp_path, loaded, criu):
    with pytest.raises(ckpt.CheckpointError) as info:
        adapter.CheckpointConverger(_params(tmp_path, criu, state="restored")).run()
    assert info.value.msg == "no checkpoint named 'c1' in %s" % (tmp_path / "ckpt")


def test_running_container_is_not_restored(tmp_path, loaded, criu):
    loaded[0] = FakeContainer()
    _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, criu, state="restored")).run()
    assert result["actions"] == [] and result["container"]["status"] == "running"


def test_unknown_container_without_bundle_is_the_one_error(tmp_path, loaded, criu):
    _store_checkpoint(tmp_path, bundle=None)
    with pytest.raises(NoSuchContainerError) as info:
        adapter.CheckpointConverger(_params(tmp_path, criu, state="restored")).run()
    assert info.value.msg.endswith(": give bundle to restore it from checkpoint 'c1'")


def test_unknown_container_check_mode_plans_register_and_restore(tmp_path, loaded, criu):
    _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, criu, state="restored"),
                                         check_mode=True).run()
    assert result["actions"] == ["register", "restore"]
    assert result["diff"] == {"before": {"container_status": "absent"},
                              "after": {"container_status": "running"}}


def test_restore_uses_the_recorded_options(tmp_path, loaded, criu):
    container = loaded[0] = FakeContainer(status="stopped")
    path = _store_checkpoint(tmp_path)
    result = adapter.CheckpointConverger(_params(tmp_path, criu, state="restored",
                                                 tcp=False)).run()
    assert result["actions"] == ["restore"]
    verb, name, image_path, args, timeout = container.calls[0]
    assert (verb, name, image_path, timeout) == ("restore", "c1", path, 60)
    assert args == ["--tcp-established", "--ext-unix-sk", "--empty-ns", "network"]
    assert result["diff"] == {"before": {"container_status": "stopped"},
                              "after": {"container_status": "running"}}


def test_failed_restore_says_why(tmp_path, loaded, criu):
    error = RuntimeCommandError(["runc", "restore"], "restore", 1, "criu failed")
    container = loaded[0] = FakeContainer(status="stopped", restore_error=error)
    _store_checkpoint(tmp_path)
    with pytest.raises(ckpt.CheckpointError) as info:
        adapter.CheckpointConverger(_params(tmp_path, criu, state="restored")).run()
    assert info.value.msg.startswith("restore of container 'app' from checkpoint 'c1' failed: "
                                     "runc restore failed (exit 1): criu failed")
    assert ("remove",) not in container.calls  # it was known before: kept


def test_summary():
    assert adapter._summary(None) == {"state": "absent"}
    assert adapter._summary({"name": "c1", "created": "t", "path": "/p"}) == {
        "state": "present", "name": "c1", "created": "t"}
