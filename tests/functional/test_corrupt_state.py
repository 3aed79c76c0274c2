# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Damaged records of a running container: every read gives a core error that names the file, the
container and the fix (remove the container's state directory), never a traceback; following the
fix adopts the container from the runtime's state, untouched."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import shim_processes
from faults_helpers import leftovers, rel_id

from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container_info import ContainerInfo
from ansible_collections.oci.runtime.plugins.module_utils._module.process import ProcessConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError

GOOD_STATE = None  # marker: the first half of the real file (a write cut short)

# (file under the container dir, what is written there, which run reads it)
DAMAGE = [
    ("state.json", GOOD_STATE, "container"),
    ("state.json", "", "container"),
    ("state.json", "{not json", "container"),
    ("state.json", "[1, 2]", "container"),
    ("state.json", '{"labels": []}', "container"),
    ("state.json", '{"bundle": 5}', "container"),
    ("state.json", '{"bundle": "/b", "labels": 5}', "container"),
    ("state.json", '{"bundle": "/b", "runtime": ["runc"]}', "container"),
    ("state.json", '{"bundle": "/b", "runtimeArgs": [1]}', "container"),
    ("state.json", b'\xff\xfe\x00garbage', "container"),
    ("init/pid", "", "container"),
    ("init/pid", "abc\n", "container"),
    ("init/pid", "-5\n", "container"),
    ("init/pid", "0\n", "container"),
    ("init/starttime", "yesterday\n", "container"),
    ("init/process.json", GOOD_STATE, "exec"),
    ("init/process.json", "{", "exec"),
    ("job/exitStatus", "ok\n", "container"),
]


def _write(path, data):
    if data is GOOD_STATE:
        with open(path, "rb") as handle:
            whole = handle.read()
        data = whole[:len(whole) // 2]
    with open(path, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def _process_params(env, name, process_id, **overrides):
    params = {
        "state_dir": env.state_dir, "runtime": None, "runtime_root": env.runtime_root,
        "container": name, "id": process_id, "args": ["sh", "-c", "echo done"], "env": None,
        "cwd": None, "user": None, "stdin": None, "stdout": None, "stderr": None,
        "state": "exited", "timeout": 30.0, "start_timeout": 30.0, "signal": None,
    }
    params.update(overrides)
    return params


def _run(env, name, which):
    if which == "exec":
        return ProcessConverger(_process_params(env, name, "job2")).run()
    return ContainerConverger(env.params(name)).run()


@pytest.mark.parametrize("relative, data, which", DAMAGE,
                         ids=["%s=%r" % (d[0], d[1] if d[1] is not None else "half")[:40] for d in DAMAGE])
def test_damaged_record_names_the_fix(env, relative, data, which):
    name = rel_id(env, "bad")
    first = ContainerConverger(env.params(name, env.bundle())).run()["container"]
    job = ProcessConverger(_process_params(env, name, "job")).run()
    assert job["exit_status"] == 0, job
    directory = os.path.join(env.state_dir, name)
    target = os.path.join(directory, relative)
    _write(target, data)

    with pytest.raises(RuntimeCoreError) as info:
        _run(env, name, which)
    message = str(info.value)
    assert repr(name) in message and target in message, message
    assert "remove %s (rm -r)" % directory in message, message
    if which == "container":  # container_info reads what a converge reads, process.json aside
        with pytest.raises(RuntimeCoreError) as info:
            ContainerInfo({"state_dir": env.state_dir, "name": name}).run()
        assert target in str(info.value)

    # the container was not touched; the documented fix adopts it as it runs
    assert env.runc_state(name)["pid"] == first["pid"]
    shutil.rmtree(directory)
    result = ContainerConverger(env.params(name)).run()
    assert result["actions"][0].startswith("adopt"), result
    assert result["container"]["pid"] == first["pid"] and result["container"]["status"] == "running"
    assert shim_processes(env.state_dir, name) == [first["shim_pid"]]
    again = ProcessConverger(_process_params(env, name, "job3")).run()
    assert again["exit_status"] == 0  # the rebuilt init process.json serves exec
    ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()
    assert leftovers(env, name) == []


def test_pid_of_another_process_restarts_the_container(env):
    """A pid file naming some other live process: the recorded process is not the runtime's, so the
    container counts as stopped (never signal a stranger), and `running` starts it afresh."""
    name = rel_id(env, "pid1")
    first = ContainerConverger(env.params(name, env.bundle())).run()["container"]
    with open(os.path.join(env.state_dir, name, "init", "pid"), "w") as handle:
        handle.write("1\n")
    result = ContainerConverger(env.params(name, state="stopped")).run()
    assert result["changed"] is False and result["container"]["status"] == "stopped"
    assert os.path.exists("/proc/1")  # nothing signalled pid 1
    result = ContainerConverger(env.params(name)).run()
    assert result["actions"] == ["create", "start"]
    assert result["container"]["pid"] not in (first["pid"], 1)
    assert env.runc_ids() == [name] and shim_processes(env.state_dir, name) == [result["container"]["shim_pid"]]
    ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()
    assert leftovers(env, name) == []
