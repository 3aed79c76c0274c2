# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The process adapter: input checks, the plan (start, signal, remove), check-mode predictions and
how an ended process is reported, with a fake container over real process records (no runtime)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import process as adapter
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as proc
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    InvalidValueError,
    NoSuchContainerError,
)


def _params(tmp_path, **overrides):
    params = {name: spec.get("default") for name, spec in adapter.PROCESS_OPTIONS.items()}
    params.update({"container": "app", "id": "job", "args": ["sh", "-c", "true"],
                   "state_dir": str(tmp_path / "state"), "runtime": None, "runtime_root": None})
    params.update(overrides)
    return params


def _write_record(layout, process_id, exit_status=None, spec=None, stdout=None):
    """A process directory as the shim leaves it once the process ended."""
    directory = layout.process_dir("app", process_id)
    os.makedirs(directory)
    with open(os.path.join(directory, L.PROCESS_FILE), "w") as handle:
        json.dump(spec or {"args": ["sh", "-c", "true"]}, handle)
    if exit_status is not None:
        with open(os.path.join(directory, L.EXIT_STATUS_FILE), "w") as handle:
            handle.write("%d\n" % exit_status)
    if stdout is not None:
        with open(os.path.join(directory, proc.STDOUT_LOG), "wb") as handle:
            handle.write(stdout)


class FakeInit(object):
    def spec(self):
        return {"env": ["PATH=/bin", "TERM=xterm"]}


class FakeContainer(object):
    """Container-like: real process records under the state dir; exec and remove are recorded."""

    def __init__(self, layout):
        self.layout = layout
        self.init = FakeInit()
        self.calls = []

    def process(self, process_id):
        return proc.ProcessRecord(self.layout, "app", process_id)

    def exec_process(self, process_id, overrides, stdio, timeout):
        self.calls.append(("exec", process_id, overrides, stdio, timeout))

    def remove_process(self, record, grace):
        self.calls.append(("remove", record.id, grace))


@pytest.fixture
def container(tmp_path, monkeypatch):
    layout = L.Layout(str(tmp_path / "state"))
    fake = FakeContainer(layout)
    monkeypatch.setattr(adapter, "load_container", lambda layout, container_id: fake)
    monkeypatch.setattr(adapter.core.Container, "load",
                        classmethod(lambda cls, layout, container_id, **kwargs: fake))
    return fake


# --- input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,user", [("0", {"uid": 0}), (" 1000:100 ", {"uid": 1000, "gid": 100})])
def test_parse_user(value, user):
    assert adapter.parse_user(value) == user


@pytest.mark.parametrize("value", ["app", "1000:", "-1", "1:-2", "1:2:3"])
def test_parse_user_refuses(value):
    with pytest.raises(InvalidIdError):
        adapter.parse_user(value)


@pytest.mark.parametrize("overrides,error,words", [
    ({"id": "init"}, InvalidIdError, "reserved"),
    ({"id": "../x"}, InvalidIdError, "process id"),
    ({"container": "a/b"}, InvalidIdError, "container name"),
    ({"user": "root"}, InvalidIdError, "uid"),
    ({"stdout": "out.log"}, InvalidValueError, "stdout must be an absolute path"),
    ({"cwd": "tmp"}, InvalidValueError, "cwd must be an absolute path"),
    ({"timeout": float("inf")}, InvalidValueError, "timeout"),
    ({"start_timeout": -1}, InvalidValueError, "start_timeout"),
    ({"signal": "SIGNOPE"}, ValueError, "SIGNOPE"),
])
def test_bad_input_is_refused_before_anything(tmp_path, overrides, error, words):
    with pytest.raises(error) as info:
        adapter.ProcessConverger(_params(tmp_path, **overrides))
    assert words in str(info.value)
    assert not os.path.exists(str(tmp_path / "state"))


def test_read_tail(tmp_path):
    path = str(tmp_path / "out")
    with open(path, "wb") as handle:
        handle.write(b"a" * 10 + b"\xff" + b"end")
    assert adapter.read_tail(path, limit=4) == ("\ufffdend", True)
    assert adapter.read_tail(path) == ("a" * 10 + "\ufffdend", False)
    assert adapter.read_tail(str(tmp_path / "missing")) == ("", False)


# --- plan ------------------------------------------------------------------------------------------

def test_no_container_is_one_error(tmp_path):
    with pytest.raises(NoSuchContainerError) as info:
        adapter.ProcessConverger(_params(tmp_path, state="running"), check_mode=True).run()
    assert info.value.msg == "container 'app' does not exist under %s" % (tmp_path / "state")
    assert info.value.details == {"container": "app"}


def test_absent_process_is_started_with_merged_env(tmp_path, container):
    params = _params(tmp_path, state="running", env={"TERM": "dumb", "N": 1}, cwd="/srv",
                     user="5:6", stdout="/var/log/job.out")
    result = adapter.ProcessConverger(params).run()
    assert result["actions"] == ["start"] and result["changed"] is True
    verb, process_id, overrides, stdio, timeout = container.calls[0]
    assert (verb, process_id, timeout) == ("exec", "job", 30)
    assert overrides == {"args": ["sh", "-c", "true"], "env": ["PATH=/bin", "TERM=dumb", "N=1"],
                         "cwd": "/srv", "user": {"uid": 5, "gid": 6}}
    assert stdio == {"stdin": None, "stdout": "/var/log/job.out", "stderr": None}
    assert result["diff"] == {"before": {"status": "absent"}, "after": {"status": "absent"}}


def test_check_mode_predicts_a_start_and_runs_nothing(tmp_path, container):
    result = adapter.ProcessConverger(_params(tmp_path, state="running"), check_mode=True).run()
    assert result["actions"] == ["start"] and container.calls == []
    assert result["process"] == {"id": "job", "status": "running", "pid": None,
                                 "exit_status": None, "oom_killed": False}
    assert result["diff"] == {"before": {"status": "absent"}, "after": {"status": "running"}}


def test_start_needs_args(tmp_path, container):
    with pytest.raises(InvalidValueError) as info:
        adapter.ProcessConverger(_params(tmp_path, args=None)).run()
    assert "args is required" in info.value.msg and container.calls == []


def test_ended_run_is_reported_not_run_again(tmp_path, container):
    layout = L.Layout(str(tmp_path / "state"))
    _write_record(layout, "job", exit_status=0, stdout=b"done\n",
                  spec={"args": ["sh", "-c", "other"]})
    result = adapter.ProcessConverger(_params(tmp_path)).run()
    assert container.calls == [] and result["actions"] == [] and result["changed"] is False
    assert (result["status"], result["exit_status"], result["pid"]) == ("exited", 0, None)
    assert (result["stdout"], result["stdout_truncated"]) == ("done\n", False)
    assert (result["stderr"], result["stderr_truncated"]) == ("", False)
    assert "other args" in result["warnings"][0] and "diff" not in result


def test_ended_run_is_started_again_for_state_running(tmp_path, container):
    _write_record(L.Layout(str(tmp_path / "state")), "job", exit_status=0)
    result = adapter.ProcessConverger(_params(tmp_path, state="running"), check_mode=True).run()
    assert result["actions"] == ["start"]
    assert result["diff"] == {"before": {"status": "exited"}, "after": {"status": "running"}}


def test_non_zero_exit_fails_with_rc_and_output(tmp_path, container):
    _write_record(L.Layout(str(tmp_path / "state")), "job", exit_status=3, stdout=b"out")
    with pytest.raises(adapter.ProcessFailedError) as info:
        adapter.ProcessConverger(_params(tmp_path)).run()
    assert info.value.msg == "non-zero return code"
    assert info.value.details == {"rc": 3}
    assert info.value.result["exit_status"] == 3 and info.value.result["stdout"] == "out"
    assert isinstance(info.value, adapter.TaskFailedError)


def test_unrecorded_exit_fails(tmp_path, container):
    _write_record(L.Layout(str(tmp_path / "state")), "job")
    with pytest.raises(adapter.ProcessFailedError) as info:
        adapter.ProcessConverger(_params(tmp_path)).run()
    assert "exit status was not recorded" in info.value.msg
    assert info.value.details == {"rc": None}


def test_signal_only_a_running_process(tmp_path, container):
    _write_record(L.Layout(str(tmp_path / "state")), "job", exit_status=0)
    result = adapter.ProcessConverger(_params(tmp_path, signal="SIGHUP"), check_mode=True).run()
    assert result["actions"] == []


def test_signal_is_rendered_with_its_number(tmp_path, container, monkeypatch):
    monkeypatch.setattr(proc.ProcessRecord, "describe", lambda self: {
        "id": self.id, "pid": 4242, "status": proc.RUNNING, "exit_status": None})
    monkeypatch.setattr(proc.ProcessRecord, "spec", lambda self: {"args": ["sh", "-c", "true"]})
    result = adapter.ProcessConverger(_params(tmp_path, state="running", signal="SIGHUP"),
                                      check_mode=True).run()
    assert result["actions"] == ["signal %d" % signal.SIGHUP]
    assert result["process"]["pid"] == 4242 and "warnings" not in result


def test_absent_removes_a_record(tmp_path, container):
    _write_record(L.Layout(str(tmp_path / "state")), "job", exit_status=1)
    result = adapter.ProcessConverger(_params(tmp_path, state="absent")).run()
    assert result["actions"] == ["remove"]
    assert container.calls == [("remove", "job", adapter.ABSENT_GRACE)]
    assert result["process"] == {"id": "job", "status": "absent", "pid": None, "exit_status": None,
                                 "oom_killed": False}
    assert "stdout" not in result


def test_absent_of_nothing_is_no_change(tmp_path, container):
    result = adapter.ProcessConverger(_params(tmp_path, state="absent")).run()
    assert result["actions"] == [] and result["changed"] is False and container.calls == []


def test_absent_without_container_is_no_change(tmp_path):
    result = adapter.ProcessConverger(_params(tmp_path, state="absent"), check_mode=True).run()
    assert result["changed"] is False and result["status"] == "absent"
