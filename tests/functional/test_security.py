# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security properties with the real runc: private records and checkpoints, symlinks planted in
the state dir are never followed out of it, no shell anywhere, env values kept out of results."""

from __future__ import annotations

import ast
import json
import os
import stat

import pytest

from conftest import REPO, processes, shim_processes
from faults_helpers import leftovers, rel_id

from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import CheckpointConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.process import (
    ProcessConverger,
    ProcessFailedError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import StateError


def _process_params(environment, name, process_id, **overrides):
    params = {
        "state_dir": environment.state_dir, "runtime": None,
        "runtime_root": environment.runtime_root,
        "container": name, "id": process_id, "args": ["true"], "env": None, "cwd": None,
        "user": None, "stdin": None, "stdout": None, "stderr": None, "state": "exited",
        "timeout": 30.0, "start_timeout": 30.0, "signal": None,
    }
    params.update(overrides)
    return params


def _not_private(top):
    """Paths below ``top`` (and ``top``) that group or others can read, write or enter."""
    found = []
    for root, dirs, files in os.walk(top):
        for path in [root] + [os.path.join(root, f) for f in files]:
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                found.append("%s %s" % (oct(stat.S_IMODE(st.st_mode)), path))
    return found


def test_records_and_checkpoints_are_private(env, tmp_path):
    old_umask = os.umask(0o022)  # what a root shell usually has
    try:
        name = rel_id(env, "priv")
        ContainerConverger(env.params(name, env.bundle())).run()
        ProcessConverger(_process_params(env, name, "job")).run()
        checkpoints = str(tmp_path / "var" / "lib" / "cps" / name)  # parents do not exist yet
        CheckpointConverger({
            "state_dir": env.state_dir, "runtime": None, "runtime_root": env.runtime_root,
            "container": name, "name": "cp", "state": "present", "checkpoint_dir": checkpoints,
            "exit": False, "tcp": False, "unix_sockets": False, "shell": False, "empty_ns": [],
            "bundle": None, "criu_path": None, "force": False, "start_timeout": 60.0}).run()
    finally:
        os.umask(old_umask)
    files = [os.path.join(r, f) for r, d, fs in os.walk(checkpoints) for f in fs]
    assert any(f.endswith("pages-1.img") for f in files)  # the container's memory is in there
    assert _not_private(env.state_dir) == []
    assert _not_private(str(tmp_path / "var")) == []  # created parents included
    ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()


# --- symlinks planted in the state dir ----------------------------------------------------------------

def _outside(tmp_path):
    """A directory outside the state dir, with a file that must never change."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    (outside / "state.json").write_text(json.dumps({"bundle": str(outside)}))
    return outside


def _snapshot(path):
    return sorted((p.name, p.read_bytes()) for p in path.iterdir())


def test_symlinked_container_dir_is_refused(env, tmp_path):
    outside = _outside(tmp_path)
    before = _snapshot(outside)
    name = rel_id(env, "lnkdir")
    os.makedirs(env.state_dir)
    os.symlink(str(outside), os.path.join(env.state_dir, name))
    for state in ("running", "absent"):
        with pytest.raises(StateError) as info:
            ContainerConverger(env.params(name, env.bundle(), state=state)).run()
        assert "symlink" in str(info.value) and name in str(info.value)
    assert _snapshot(outside) == before
    assert env.layout.container_ids() == []
    assert env.runc_ids() == []


@pytest.mark.parametrize("planted", ["init", "init/stdout.log", "init/exitStatus", "init/pid",
                                     "init/runtime.log", "state.json"])
def test_planted_symlink_is_not_followed(env, tmp_path, planted):
    outside = _outside(tmp_path)
    name = rel_id(env, "lnk")
    bundle = env.bundle("sh", "-c", "echo out; echo err >&2; sleep 3600")
    ContainerConverger(env.params(name, bundle)).run()
    ContainerConverger(env.params(name, state="stopped", stop_signal="KILL")).run()
    before = _snapshot(outside)
    path = os.path.join(env.state_dir, name, planted)
    target = str(outside) if planted == "init" else str(outside / "precious")
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.listdir(path):
            os.unlink(os.path.join(path, entry))
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)

    # read, restart, stop, remove: each either refuses clearly or works without following it
    for params in (env.params(name, state="stopped"), env.params(name),
                   env.params(name, state="stopped", stop_signal="KILL"),
                   env.params(name, state="absent", stop_signal="KILL")):
        try:
            ContainerConverger(params).run()
        except StateError as exc:
            assert "symlink" in str(exc) or "damaged" in str(exc), str(exc)
        assert _snapshot(outside) == before, "followed %s" % planted
    if os.path.lexists(os.path.join(env.state_dir, name)):
        # refused all along: the documented fix (remove the container's state dir) converges
        for entry in (os.path.join(env.state_dir, name),):
            os.unlink(entry) if os.path.islink(entry) else __import__("shutil").rmtree(entry)
        ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()
    assert _snapshot(outside) == before
    env.runc("delete", "--force", name, check=False)
    assert leftovers(env, name) == []


# --- no shell -----------------------------------------------------------------------------------------

SHELL_CALLS = {("os", "system"), ("os", "popen"), ("os", "spawnlp"), ("pty", "spawn"),
               ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}


def test_no_shell_in_the_collections_python():
    """No shell=True, use_unsafe_shell, os.system/popen in any Python under plugins/ (found with
    the ast, so comments and strings do not count and aliases of the names would)."""
    found = []
    for root, dirs, files in os.walk(os.path.join(REPO, "plugins")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path) as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                for keyword in node.keywords:
                    value = keyword.value
                    if keyword.arg not in ("shell", "use_unsafe_shell"):
                        continue
                    if isinstance(value, ast.Constant) and value.value is False:
                        continue
                    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
                            and value.func.id == "dict":
                        continue  # the checkpoint module's `shell` option (CRIU's --shell-job)
                    found.append("%s:%d %s=" % (path, node.lineno, keyword.arg))
                func = node.func
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                        and (func.value.id, func.attr) in SHELL_CALLS:
                    found.append("%s:%d %s.%s" % (path, node.lineno, func.value.id, func.attr))
    assert found == []
    assert os.path.isfile(os.path.join(REPO, "plugins", "module_utils", "_runtime", "oci.py"))


def test_shell_metacharacters_stay_literal(env, tmp_path):
    marker = tmp_path / "pwned"
    bundle_dir = str(tmp_path / "b; touch pwned $(touch pwned) `touch pwned`")
    os.rename(env.bundle(), bundle_dir)
    name = rel_id(env, "meta")
    result = ContainerConverger(env.params(name, bundle_dir, labels={"x": "$(touch %s)" % marker})).run()
    assert result["container"]["status"] == "running"
    job = ProcessConverger(_process_params(
        env, name, "job", args=["echo", "`touch /pwned`", "$(id)", ";", "|", "&&"],
        env={"V": "$(touch %s)" % marker})).run()
    assert job["stdout"] == "`touch /pwned` $(id) ; | &&\n"
    for directory in (str(tmp_path), os.getcwd(), os.path.join(bundle_dir, "rootfs"), "/"):
        assert not os.path.exists(os.path.join(directory, "pwned")), directory
    ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()


# --- env values ------------------------------------------------------------------------------------------

SECRET = "s3cr3t-Value-42"


def test_env_values_stay_out_of_results_messages_and_argv(env):
    name = rel_id(env, "env")
    ContainerConverger(env.params(name, env.bundle())).run()
    params = _process_params(env, name, "job", env={"TOKEN": SECRET},
                             args=["sh", "-c", "sleep 0.3; exit 3"])
    with pytest.raises(ProcessFailedError) as info:
        ProcessConverger(params).run()
    assert SECRET not in str(info.value) and SECRET not in json.dumps(info.value.result)
    # a second run with other args: the warning (which Ansible shows even under no_log) does not
    # echo the task's values either
    other = ProcessConverger(dict(params, args=["sh", "-c", "echo %s" % SECRET]))
    with pytest.raises(ProcessFailedError) as info:
        other.run()
    assert SECRET not in json.dumps(info.value.result), info.value.result
    # the value never reaches a command line, where any local user could read it in /proc
    params["id"], params["args"], params["state"] = "long", ["sleep", "5"], "running"
    ProcessConverger(params).run()
    for pid, argv in processes(exclude_self=False):
        assert not any(SECRET in arg for arg in argv), pid
    assert shim_processes(env.state_dir, name)
    ContainerConverger(env.params(name, state="absent", stop_signal="KILL")).run()
