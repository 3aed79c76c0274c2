# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""record.py: a container's state.json (keys, defaults, labels, unknown keys kept), and the records
that register and adopt write (a fake runtime; no runc)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import oci
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import InvalidIdError, StateError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import (
    ContainerRecord,
    check_labels,
)

FULL = {
    "schemaVersion": L.SCHEMA_VERSION,
    "bundle": "/srv/web",
    "labels": ["app=web", "k=v=w"],
    "stdin": "/in",
    "stdout": "/out",
    "stderr": "/err",
    "runtime": "crun",
    "runtimeRoot": "/run/r",
    "runtimeArgs": ["--debug"],
    "shim": "shim",
    "noPivotRoot": True,
    "configDigest": "sha256:abc",
    "created": "2026-12-05T00:00:00Z",
}
# What register and adopt write, and nothing else (adopt adds "adopted").
KEYS = sorted(FULL)


def test_defaults_of_a_minimal_record():
    record = ContainerRecord.from_json({"bundle": "/b"}, "state.json")
    assert (record.bundle, record.labels, record.stdin, record.stdout, record.stderr) == ("/b", {}, "", "", "")
    assert record.runtime == oci.DEFAULT_RUNTIME == "runc"
    assert record.runtime_root is None and record.runtime_args == [] and record.no_pivot_root is False
    assert record.config_digest == "" and record.created is None and record.adopted is None
    assert sorted(record.to_json()) == KEYS
    assert record.to_json()["runtimeRoot"] == ""  # the runtime's default, as the file has it


def test_round_trip_keeps_every_key_and_unknown_ones():
    data = dict(FULL, adopted="2026-12-05T01:00:00Z", future={"kept": True})
    record = ContainerRecord.from_json(data, "state.json")
    assert record.labels == {"app": "web", "k": "v=w"}
    assert record.runtime_root == "/run/r" and record.runtime_args == ["--debug"]
    assert record.no_pivot_root is True and record.adopted == "2026-12-05T01:00:00Z"
    assert record.to_json() == data


def test_labels_are_written_sorted_as_key_value():
    record = ContainerRecord("/b", labels={"z": "26", "a": "1=x", "e": ""})
    assert record.to_json()["labels"] == ["a=1=x", "e=", "z=26"]
    assert ContainerRecord.from_json(record.to_json(), "x").labels == {"a": "1=x", "e": "", "z": "26"}


def test_write_and_read(tmp_path):
    path = str(tmp_path / "state.json")
    assert ContainerRecord.read(path) is None
    ContainerRecord.from_json(FULL, path).write(path)
    with open(path) as handle:
        assert json.load(handle) == FULL
    assert ContainerRecord.read(path).to_json() == FULL


@pytest.mark.parametrize("data, words", [
    ([], "it holds a JSON list, not an object"),
    ({"no": "bundle"}, "'bundle' is missing"),
    ({"bundle": 5}, "'bundle' is a int, not a str"),
    ({"bundle": "/b", "labels": "a=1"}, "'labels' is a str, not a list"),
    ({"bundle": "/b", "labels": [1]}, "'labels' must hold only strings"),
    ({"bundle": "/b", "runtimeArgs": [None]}, "'runtimeArgs' must hold only strings"),
    ({"bundle": "/b", "noPivotRoot": "yes"}, "'noPivotRoot' is a str, not a bool"),
])
def test_not_a_record(data, words):
    with pytest.raises(StateError) as info:
        ContainerRecord.from_json(data, "/s/c1/state.json")
    assert info.value.msg == "/s/c1/state.json is not a container record: " + words
    assert info.value.details["path"] == "/s/c1/state.json"


def test_check_labels():
    assert check_labels(None) == {}
    assert check_labels({"a": 1, 2: True, "e": ""}) == {"a": "1", "2": "True", "e": ""}
    for bad in ({"": "x"}, {"a=b": "x"}, {None: "x"}, {"a": None}):
        with pytest.raises(InvalidIdError):
            check_labels(bad)


@pytest.mark.parametrize("runtime, root", [
    ("runc", "/run/runc"), ("/usr/sbin/runc", "/run/runc"), ("crun", "/run/crun"),
    ("/usr/local/bin/crun", "/run/crun"), ("", "/run/runc"),
])
def test_default_runtime_root(runtime, root):
    assert oci.default_runtime_root(runtime) == root


def _executable(tmp_path, name):
    path = tmp_path / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_runtime_of_a_record(tmp_path):
    crun = _executable(tmp_path, "crun")
    runtime = ContainerRecord.from_json(dict(FULL, runtime=crun), "x").oci_runtime()
    assert runtime.binary == crun and runtime.root == "/run/r" and runtime.runtime_args == ["--debug"]
    runtime = ContainerRecord.from_json({"bundle": "/b", "runtime": crun, "runtimeRoot": ""}, "x").oci_runtime()
    assert runtime.root is None and runtime.runtime_args == []
    assert runtime.state_root == "/run/crun"  # not runc's


# --- what register and adopt write -------------------------------------------------------------------

class FakeRuntime(object):
    name = "crun"
    root = "/run/r"
    runtime_args = ["--debug"]

    def __init__(self, state=None):
        self.answer = state

    def state(self, container_id):
        return self.answer


@pytest.fixture
def bundle(tmp_path):
    directory = tmp_path / "bundle"
    (directory / "rootfs").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(
        {"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
         "root": {"path": "rootfs"}}))
    return str(directory)


def test_register_writes_the_record(tmp_path, bundle):
    layout = L.Layout(str(tmp_path / "state"))
    container = core.Container.register(layout, FakeRuntime(), "c1", bundle, labels={"b": "2", "a": "1"},
                                        stdio={"stdout": "/out"}, no_pivot_root=True)
    data = L.read_json(layout.state_file("c1"))
    assert sorted(data) == KEYS
    assert data["labels"] == ["a=1", "b=2"] and data["stdout"] == "/out" and data["stdin"] == ""
    assert (data["runtime"], data["runtimeRoot"], data["runtimeArgs"]) == ("crun", "/run/r", ["--debug"])
    assert data["noPivotRoot"] is True and data["configDigest"].startswith("sha256:")
    assert data["shim"] == "" and data["created"]
    assert core.Container.load(layout, "c1", runtime=FakeRuntime()).record.to_json() == container.record.to_json()


def test_adopt_writes_the_same_record_plus_adopted(tmp_path, bundle, monkeypatch):
    layout = L.Layout(str(tmp_path / "state"))
    runtime = FakeRuntime({"status": "stopped", "pid": 0, "bundle": bundle, "created": "then"})
    monkeypatch.setattr(core, "runtime_may_know", lambda name, root, container_id: True)
    container = core.Container.adopt(layout, runtime, "c1")
    data = L.read_json(layout.state_file("c1"))
    assert sorted(data) == sorted(KEYS + ["adopted"])
    assert data["bundle"] == bundle and data["labels"] == [] and data["created"] == "then"
    assert (data["runtime"], data["runtimeRoot"], data["runtimeArgs"]) == ("crun", "/run/r", ["--debug"])
    assert container.record.adopted and data["shim"] == ""
    assert os.path.isfile(container.init.path(L.PROCESS_FILE))
