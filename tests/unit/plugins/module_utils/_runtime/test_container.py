# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container.py: signal parsing and the status cross-check, with a fake runtime (no runc)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    ContainerExitedError,
    StateError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time


# --- parse_signal ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    (15, 15),
    ("15", 15),
    (" 9 ", 9),
    ("TERM", signal.SIGTERM),
    ("SIGTERM", signal.SIGTERM),
    ("sigterm", signal.SIGTERM),
    ("kill", signal.SIGKILL),
    ("SIGINT", signal.SIGINT),
    ("HUP", signal.SIGHUP),
    ("USR1", signal.SIGUSR1),
    ("SIGRTMIN", int(signal.SIGRTMIN)),
    (signal.NSIG - 1, signal.NSIG - 1),
    (signal.SIGQUIT, signal.SIGQUIT),   # a Signals enum member
])
def test_parse_signal(value, expected):
    result = core.parse_signal(value)
    assert result == expected and isinstance(result, int) and not isinstance(result, signal.Signals)


@pytest.mark.parametrize("value", [
    "0", 0, signal.NSIG, "999", "-9", "", "SIG", "NOPE", "SIGNOPE", "SIG_DFL", "SIG_IGN", "sig_ign",
    "DFL", "NSIG", "15.0", "TERM TERM", "9x", None,
])
def test_parse_signal_rejects(value):
    with pytest.raises(ValueError):
        core.parse_signal(value)


def test_parse_signal_messages():
    with pytest.raises(ValueError) as info:
        core.parse_signal("NOPE")
    assert "unknown signal 'NOPE'" in str(info.value)
    with pytest.raises(ValueError) as info:
        core.parse_signal("0")
    assert "out of range" in str(info.value)


# --- a container with a fake runtime ---------------------------------------------------------------

class FakeRuntime(object):
    """Answers ``state`` from a dict and records every verb; never runs a binary."""

    name = "runc"
    root = None
    runtime_args = []

    def __init__(self, state=None):
        self.answer = state
        self.log = []

    def state(self, container_id):
        self.log.append(("state", container_id))
        return self.answer

    def __getattr__(self, verb):
        return lambda *args, **kwargs: self.log.append((verb,) + args)


def _make(tmp_path, state=None, pid=None, start_time="auto", exit_status=None, shim_pid=None):
    layout = L.Layout(str(tmp_path / "state"))
    data = {"bundle": "/b", "runtime": "runc", "labels": ["b=2", "a=1=x"], "created": "now",
            "configDigest": "sha256:0"}
    runtime = FakeRuntime(state)
    container = core.Container(layout, runtime, "c1", ContainerRecord.from_json(data, "state.json"))
    os.makedirs(container.init.dir)
    L.atomic_write_json(layout.state_file("c1"), data)
    if pid is not None:
        L.atomic_write(container.init.path(L.PID_FILE), "%d\n" % pid)
        if start_time == "auto":
            start_time = process_start_time(pid)
        if start_time is not None:
            L.atomic_write(container.init.path(L.START_TIME_FILE), "%s\n" % start_time)
    if exit_status is not None:
        L.atomic_write(container.init.path(L.EXIT_STATUS_FILE), "%d\n" % exit_status)
    if shim_pid is not None:
        L.atomic_write(container.init.path(L.SHIM_PID_FILE),
                       "%d %s\n" % (shim_pid, process_start_time(shim_pid)))
    return container, runtime


def test_status_no_runtime_state_is_stopped(tmp_path):
    container, dummy = _make(tmp_path, state=None, exit_status=3)
    assert container.status() == core.STOPPED
    assert container.exit_status() == 3


@pytest.mark.parametrize("status", [core.RUNNING, core.PAUSED, core.CREATED])
def test_status_trusts_runtime_when_pid_and_start_time_match(tmp_path, status):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": status, "pid": me}, pid=me)
    assert container.status() == status
    assert container.exit_status() is None


def test_status_pid_mismatch_is_stopped(tmp_path):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "running", "pid": me + 1}, pid=me)
    assert container.status() == core.STOPPED


def test_status_reused_pid_is_stopped(tmp_path):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "running", "pid": me}, pid=me,
                             start_time=process_start_time(me) + 1)
    assert container.status() == core.STOPPED


def test_status_runtime_says_stopped(tmp_path):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "stopped", "pid": 0}, pid=me, exit_status=0)
    assert container.status() == core.STOPPED
    assert container.exit_status() == 0


def test_status_without_recorded_pid_trusts_runtime(tmp_path):
    container, dummy = _make(tmp_path, state={"status": "created", "pid": 12345})
    assert container.status() == core.CREATED


def test_status_garbage_start_time(tmp_path):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "running", "pid": me}, pid=me, start_time="junk")
    with pytest.raises(StateError):
        container.status()


def test_status_start_time_none_written_by_shim(tmp_path):
    # The shim writes "None" when the process was gone before it could read its start time.
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "running", "pid": me}, pid=me, start_time="None")
    assert container.init.start_time is None
    assert container.status() == core.RUNNING


def test_runtime_state_asked_once(tmp_path):
    me = os.getpid()
    container, runtime = _make(tmp_path, state={"status": "running", "pid": me}, pid=me)
    container.status()
    container.status()
    container.describe()
    assert runtime.log.count(("state", "c1")) == 1
    container.runtime_state(refresh=True)
    assert runtime.log.count(("state", "c1")) == 2
    container.forget_runtime_state()
    container.status()
    assert runtime.log.count(("state", "c1")) == 3


def test_describe(tmp_path):
    me = os.getpid()
    container, dummy = _make(tmp_path, state={"status": "running", "pid": me}, pid=me, shim_pid=me)
    assert container.describe() == {
        "id": "c1", "status": "running", "pid": me, "bundle": "/b", "created": "now",
        "labels": {"a": "1=x", "b": "2"}, "runtime": "runc", "shim_pid": me, "exit_status": None,
        "exit_status_unknown": False, "oom_killed": False,
        "config_digest": "sha256:0", "processes": [], "networks": []}


def test_describe_stopped_hides_pid_and_dead_shim(tmp_path):
    with open("/proc/sys/kernel/pid_max") as handle:
        dead = int(handle.read()) + 1
    container, dummy = _make(tmp_path, state=None, pid=os.getpid(), exit_status=137)
    L.atomic_write(container.init.path(L.SHIM_PID_FILE), "%d 1\n" % dead)
    view = container.describe()
    assert view["status"] == "stopped" and view["pid"] is None and view["shim_pid"] is None
    assert view["exit_status"] == 137


def test_exit_status_unknown_without_record_or_shim(tmp_path):
    container, dummy = _make(tmp_path, state=None)
    assert container.exit_status() is None


def test_stop_of_stopped_container_raises(tmp_path):
    container, runtime = _make(tmp_path, state=None)
    with pytest.raises(ContainerExitedError):
        container.stop("SIGTERM", 1)
    assert [entry for entry in runtime.log if entry[0] != "state"] == []


def test_labels_and_set_labels(tmp_path):
    container, dummy = _make(tmp_path)
    assert container.record.labels == {"a": "1=x", "b": "2"}
    container.set_labels({"z": "26", "k": "v=w"})
    assert container.record.labels == {"k": "v=w", "z": "26"}
    assert L.read_json(container.layout.state_file("c1"))["labels"] == ["k=v=w", "z=26"]


def test_load(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    assert core.Container.load(layout, "c1") is None
    os.makedirs(layout.container_dir("c1"))
    with open(layout.state_file("c1"), "w") as handle:
        json.dump({"bundle": "/b", "runtime": "/nonexistent/runc"}, handle)
    runtime = FakeRuntime()
    loaded = core.Container.load(layout, "c1", runtime=runtime)
    assert loaded.runtime is runtime and loaded.record.bundle == "/b"


@pytest.mark.parametrize("content", ["[]", '{"no": "bundle"}', '{"bundle": 5}', "{broken"])
def test_load_rejects_bad_record(tmp_path, content):
    layout = L.Layout(str(tmp_path / "state"))
    os.makedirs(layout.container_dir("c1"))
    with open(layout.state_file("c1"), "w") as handle:
        handle.write(content)
    with pytest.raises(StateError) as info:
        core.Container.load(layout, "c1", runtime=FakeRuntime())
    assert layout.state_file("c1") in str(info.value)
