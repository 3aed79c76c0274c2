# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults behind the converger's back, with the real runc: a killed shim, a killed container, the
runtime's state wiped as by a reboot, our state dir wiped, a runtime that fails one call at each
step, a full state dir. Each ends with the container converged again and nothing left over."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import RUNC, load_util, shim_processes, wait_for
from faults_helpers import cgroup_dirs, leftovers, rel_id

from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import CheckpointConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError, StateError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time

failing = load_util("failing_runtime")


def converge(env, name, bundle=None, **overrides):
    return ContainerConverger(env.params(name, bundle, **overrides)).run()


def remove_and_check(env, name, **overrides):
    result = converge(env, name, state="absent", stop_signal="KILL", **overrides)
    assert result["container"] == {}
    wait_for(lambda: not leftovers(env, name), timeout=5,
             what="nothing left of %s (left: %s)" % (name, leftovers(env, name)))


def kill_and_wait(pid):
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_start_time(pid) is None, what="pid %d to die" % pid)


# --- the shim, the container, the runtime's state, our state --------------------------------------

def test_shim_killed_exit_status_is_unknown(env):
    name = rel_id(env, "shim")
    first = converge(env, name, env.bundle())["container"]
    kill_and_wait(first["shim_pid"])

    again = converge(env, name)
    assert again["changed"] is False
    view = again["container"]
    assert view["status"] == "running" and view["pid"] == first["pid"]
    assert view["shim_pid"] is None and view["exit_status"] is None
    assert view["exit_status_unknown"] is False  # it has not ended

    stopped = converge(env, name, state="stopped", stop_timeout=0.3)
    assert stopped["actions"] == ["stop"]
    view = stopped["container"]
    assert view["status"] == "stopped" and view["pid"] is None
    # nobody saw the end: null and flagged, not the seed's invented 255
    assert view["exit_status"] is None and view["exit_status_unknown"] is True
    assert process_start_time(first["pid"]) is None
    remove_and_check(env, name)


def test_container_killed_from_outside_is_stopped_137(env):
    name = rel_id(env, "kill")
    first = converge(env, name, env.bundle())["container"]
    kill_and_wait(first["pid"])
    wait_for(lambda: os.path.exists(os.path.join(env.state_dir, name, "init", "exitStatus")),
             what="the shim to record the exit")
    result = converge(env, name, state="stopped")
    assert result["changed"] is False
    assert result["container"]["status"] == "stopped"
    assert result["container"]["exit_status"] == 137
    assert result["container"]["exit_status_unknown"] is False
    result = converge(env, name)  # declared running again: started afresh
    assert result["actions"] == ["create", "start"] and result["container"]["pid"] != first["pid"]
    remove_and_check(env, name)


def test_runtime_root_emptied_as_after_reboot(env):
    name = rel_id(env, "boot")
    first = converge(env, name, env.bundle())["container"]
    # A reboot: every process gone, /run (the runtime's root) empty, the cgroups gone; only our
    # records (on a disk that survives) remain.
    kill_and_wait(first["shim_pid"])
    kill_and_wait(first["pid"])
    for path in cgroup_dirs(name):
        os.rmdir(path)
    shutil.rmtree(env.runtime_root)
    assert env.runc_ids() == []

    result = converge(env, name)
    assert result["actions"] == ["create", "start"], result
    view = result["container"]
    assert view["status"] == "running" and view["pid"] != first["pid"]
    assert env.runc_state(name)["status"] == "running"
    assert shim_processes(env.state_dir, name) == [view["shim_pid"]]
    assert converge(env, name)["changed"] is False
    remove_and_check(env, name)


def test_state_dir_wiped_while_running_is_adopted(env):
    name = rel_id(env, "wipe")
    bundle = env.bundle()
    first = converge(env, name, bundle, labels={"app": "x"})["container"]
    shutil.rmtree(env.state_dir)  # all of it: records, shim copy, locks

    result = converge(env, name)
    assert result["changed"] is True
    assert result["actions"][0].startswith("adopt: container %r had no record" % name), result
    assert result["actions"][1:] == []
    view = result["container"]
    assert view["status"] == "running" and view["pid"] == first["pid"]
    assert view["shim_pid"] == first["shim_pid"] and view["bundle"] == bundle
    assert view["config_digest"] == first["config_digest"]
    assert view["labels"] == {}  # labels lived only in our records
    assert converge(env, name, bundle)["changed"] is False  # same bundle: no recreate

    # the surviving shim writes the exit status into the rebuilt records
    stopped = converge(env, name, state="stopped", stop_timeout=0.3)["container"]
    assert stopped["exit_status"] == 137 and stopped["exit_status_unknown"] is False
    remove_and_check(env, name)


def test_state_dir_and_shim_gone_gives_recovery_message(env):
    name = rel_id(env, "orphan")
    bundle = env.bundle()
    first = converge(env, name, bundle)["container"]
    kill_and_wait(first["shim_pid"])
    shutil.rmtree(os.path.join(env.state_dir, name))

    with pytest.raises(StateError) as info:
        converge(env, name, bundle)
    message = str(info.value)
    assert repr(name) in message and "no shim of this state_dir watches it" in message
    delete_hint = "%s --root %s delete --force %s" % (RUNC, env.runtime_root, name)
    assert delete_hint in message, message
    # nothing was touched: it still runs, and no half record was written
    assert env.runc_state(name)["pid"] == first["pid"]
    assert not os.path.exists(os.path.join(env.state_dir, name))

    # following the message converges
    subprocess.run(delete_hint.split(), check=True, capture_output=True, timeout=60)
    result = converge(env, name, bundle)
    assert result["actions"][1:] == ["create", "start"] and result["container"]["status"] == "running"
    remove_and_check(env, name)


def test_stopped_runtime_container_without_record_is_adopted(env):
    """Our state dir wiped after the container ended (its shim gone too): adopted as stopped with
    an unknown exit status, then started afresh."""
    name = rel_id(env, "dead")
    bundle = env.bundle()
    first = converge(env, name, bundle)["container"]
    kill_and_wait(first["shim_pid"])
    kill_and_wait(first["pid"])
    shutil.rmtree(os.path.join(env.state_dir, name))
    result = converge(env, name, bundle, state="stopped")
    assert [a.split(":")[0] for a in result["actions"]] == ["adopt"]
    assert result["container"]["status"] == "stopped"
    assert result["container"]["exit_status"] is None
    assert result["container"]["exit_status_unknown"] is True
    result = converge(env, name, bundle)
    assert result["actions"] == ["create", "start"]
    remove_and_check(env, name)


# --- a runtime that fails one call -------------------------------------------------------------------

def _checkpoint_params(env, name, checkpoint_dir, **overrides):
    params = {
        "state_dir": env.state_dir, "runtime": None, "runtime_root": env.runtime_root,
        "container": name, "name": "cp1", "state": "present", "checkpoint_dir": checkpoint_dir,
        "exit": False, "tcp": False, "unix_sockets": False, "shell": False, "empty_ns": [],
        "bundle": None, "criu_path": None, "force": False, "start_timeout": 60.0,
    }
    params.update(overrides)
    return params


def _fail_and_recover(env, wrapper, verb, first_run, next_run, n=1):
    """``first_run`` must fail with the wrapper's injected message; ``next_run`` (the wrapper now
    passes every call to the real runc) must converge."""
    with pytest.raises(RuntimeCoreError) as info:
        first_run()
    assert failing.message_for(verb, n) in str(info.value), str(info.value)
    assert failing.calls(wrapper) >= n
    return next_run()


UP = [("create", "running"), ("start", "running"), ("pause", "paused")]
# kill call 2 is the SIGKILL after the SIGTERM that PID 1 (sleep) ignores: a failure mid-way
DOWN = [("kill", "stopped", 1), ("kill", "stopped", 2), ("delete", "absent", 1)]
# The next run uses the same wrapper (which now passes every call through, so it continues from
# where the failed run stopped), or the real runc binary (a different `runtime`: a recreate).
NEXT = ["same-path", "real-runc"]


@pytest.mark.parametrize("next_runtime", NEXT)
@pytest.mark.parametrize("verb, state", UP)
def test_runtime_fails_on_the_way_up(env, tmp_path, verb, state, next_runtime):
    wrapper = failing.write_failing_runtime(str(tmp_path / "runc-fails"), RUNC, verb)
    after = wrapper if next_runtime == "same-path" else RUNC
    name = rel_id(env, "f%s" % verb)
    bundle = env.bundle()
    result = _fail_and_recover(
        env, wrapper, verb,
        lambda: converge(env, name, bundle, runtime=wrapper, state=state),
        lambda: converge(env, name, bundle, runtime=after, state=state))
    view = result["container"]
    assert view["status"] == state and env.runc_state(name)["status"] == state
    assert view["runtime"] == after
    # nothing of the failed run is left: one runtime container, one shim
    assert env.runc_ids() == [name]
    assert shim_processes(env.state_dir, name) == [view["shim_pid"]]
    assert converge(env, name, bundle, runtime=after, state=state)["changed"] is False
    remove_and_check(env, name, runtime=after)


@pytest.mark.parametrize("next_runtime", NEXT)
@pytest.mark.parametrize("verb, state, n", DOWN)
def test_runtime_fails_on_the_way_down(env, tmp_path, verb, state, n, next_runtime):
    wrapper = failing.write_failing_runtime(str(tmp_path / "runc-fails"), RUNC, verb, n)
    after = wrapper if next_runtime == "same-path" else RUNC
    name = rel_id(env, "f%s" % verb)
    bundle = env.bundle()
    converge(env, name, bundle, runtime=wrapper)
    result = _fail_and_recover(
        env, wrapper, verb,
        lambda: converge(env, name, bundle, runtime=wrapper, state=state, stop_timeout=0.3),
        lambda: converge(env, name, bundle, runtime=after, state=state, stop_timeout=0.3), n)
    if state == "stopped":
        assert result["container"]["status"] == "stopped"
        if next_runtime == "same-path":
            assert result["container"]["exit_status"] in (137, 143)
        else:  # recreated as stopped on the new runtime: a fresh record, it never ran
            assert result["container"]["exit_status"] is None
            assert result["container"]["exit_status_unknown"] is False
        assert env.runc_ids() == [] or env.runc_state(name)["status"] == "stopped"
        remove_and_check(env, name, runtime=after)
    else:
        assert result["container"] == {}
        wait_for(lambda: not leftovers(env, name), timeout=5,
                 what="nothing left (left: %s)" % leftovers(env, name))


def _checkpoint_leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n != ".work") if os.path.isdir(directory) else []


def test_runtime_fails_at_checkpoint(env, tmp_path):
    wrapper = failing.write_failing_runtime(str(tmp_path / "runc-fails"), RUNC, "checkpoint")
    name = rel_id(env, "fcp")
    first = converge(env, name, env.bundle(), runtime=wrapper)["container"]
    directory = str(tmp_path / "checkpoints")
    params = _checkpoint_params(env, name, directory)
    result = _fail_and_recover(env, wrapper, "checkpoint",
                               lambda: CheckpointConverger(dict(params)).run(),
                               lambda: None)
    assert _checkpoint_leftovers(directory) == []  # no half checkpoint, no staging dir
    assert converge(env, name, runtime=wrapper)["container"]["pid"] == first["pid"]  # still runs
    result = CheckpointConverger(dict(params)).run()
    assert result["actions"] == ["checkpoint"] and result["checkpoint"]["name"] == "cp1"
    assert _checkpoint_leftovers(directory) == ["cp1"]
    assert result["container"]["status"] == "running" and result["container"]["pid"] == first["pid"]
    remove_and_check(env, name)


def test_runtime_fails_at_restore(env, tmp_path):
    wrapper = failing.write_failing_runtime(str(tmp_path / "runc-fails"), RUNC, "restore")
    name = rel_id(env, "frs")
    converge(env, name, env.bundle(), runtime=wrapper)
    directory = str(tmp_path / "checkpoints")
    result = CheckpointConverger(_checkpoint_params(env, name, directory, exit=True)).run()
    assert result["container"]["status"] == "stopped"
    restore = _checkpoint_params(env, name, directory, state="restored")
    result = _fail_and_recover(env, wrapper, "restore",
                               lambda: CheckpointConverger(dict(restore)).run(),
                               lambda: None)
    # the failed restore left no runtime container, shim, cgroup or mount behind
    assert env.runc_ids() == [] and shim_processes(env.state_dir, name) == []
    assert cgroup_dirs(name) == []
    result = CheckpointConverger(dict(restore)).run()
    assert result["actions"] == ["restore"] and result["container"]["status"] == "running"
    assert env.runc_state(name)["status"] == "running"
    remove_and_check(env, name)


# --- a full state dir ----------------------------------------------------------------------------

def _mount_tiny_tmpfs(path, request):
    os.makedirs(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", path],
                   check=True, capture_output=True, timeout=30)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", path], capture_output=True,
                                                timeout=30, check=False))


def _fill(directory):
    """Write until the file system is full; returns the filler's path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)
    return path


def test_full_state_dir_gives_clear_error_and_keeps_state(env, tmp_path, request):
    small = str(tmp_path / "small")
    _mount_tiny_tmpfs(small, request)
    env.state_dir = os.path.join(small, "state")
    name = rel_id(env, "full")
    other = rel_id(env, "full2")
    bundle = env.bundle()
    try:
        first = converge(env, name, bundle, labels={"v": "1"})["container"]
        state_file = os.path.join(env.state_dir, name, "state.json")
        with open(state_file, "rb") as handle:
            before = handle.read()
        filler = _fill(small)

        with pytest.raises(StateError) as info:
            converge(env, name, bundle, labels={"v": "2" * 4096})
        assert "No space left on device" in str(info.value) and state_file in str(info.value)
        with open(state_file, "rb") as handle:
            assert handle.read() == before  # not truncated, not half written
        assert json.loads(before)["labels"] == ["v=1"]
        assert [n for n in os.listdir(os.path.dirname(state_file)) if n.startswith(".state")] == []

        with pytest.raises(StateError) as info:
            converge(env, other, bundle)
        assert "No space left on device" in str(info.value)
        assert other not in env.runc_ids()  # it failed before the runtime was asked to create it

        os.unlink(filler)
        result = converge(env, name, bundle, labels={"v": "2"})
        assert result["actions"] == ["update labels"] and result["container"]["pid"] == first["pid"]
        assert converge(env, other, bundle)["container"]["status"] == "running"
        remove_and_check(env, name)
        remove_and_check(env, other)
    finally:
        env.cleanup()  # before the tmpfs goes: shims hold files on it


def test_create_over_a_foreign_container_leaves_it_alone(env):
    """A container the runtime already has under the id (made by someone else, so no shim of ours
    watches it): the converger refuses and writes nothing; a create over it (the core, as a run
    racing the other tool would) fails with the runtime's message, and our cleanup does not
    delete it."""
    from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
    from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import Container

    name = rel_id(env, "foreign")
    bundle = env.bundle()
    subprocess.run([RUNC, "--root", env.runtime_root, "run", "-d", "--bundle", bundle, name],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=60)
    foreign_pid = env.runc_state(name)["pid"]
    with pytest.raises(StateError) as info:
        converge(env, name, bundle)
    assert "delete --force %s" % name in str(info.value)
    assert not os.path.exists(os.path.join(env.state_dir, name))

    container = Container.register(env.layout, env.runtime, name, bundle)
    with pytest.raises(RuntimeCoreError) as info:
        container.create(30)
    assert "already exists" in str(info.value)
    assert env.runc_state(name)["pid"] == foreign_pid and process_start_time(foreign_pid)
    assert shim_processes(env.state_dir, name) == []
    L.remove_tree(os.path.join(env.state_dir, name))
