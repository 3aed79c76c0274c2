# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The oci connection plugin's own logic: users, the exec process and argv, where the container is
found, and the messages of failed transfers (no runtime is run)."""

from __future__ import annotations

import json
import os

import pytest

from ansible.errors import AnsibleConnectionFailure, AnsibleError

from ansible_collections.oci.runtime.plugins.connection import oci as plugin
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1001:app:/home/app:/bin/sh
"""
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n"


# --- users (users.resolve_user, through the container's files) -----------------------------------

def _reading(files):
    """A connection whose container's files are ``files`` (path -> text); what it read."""
    connection = plugin.Connection.__new__(plugin.Connection)
    connection._target = _Target("/bin/true")
    read = []
    connection._container_file = lambda path: read.append(path) or files.get(path, "")
    return connection, read


@pytest.mark.parametrize("user, ids", [
    ("app", (1000, 1001)),
    ("app:staff", (1000, 50)),
    ("1000", (1000, 1001)),
    ("4242", (4242, 0)),
])
def test_remote_user_names_come_from_the_container(user, ids):
    connection, dummy = _reading({"etc/passwd": PASSWD, "etc/group": GROUP})
    assert connection._resolve_user(user) == ids


def test_remote_user_root_without_passwd_is_0_0():
    connection, dummy = _reading({})
    assert connection._resolve_user("root") == (0, 0)
    assert connection._resolve_user("root:root") == (0, 0)


def test_remote_user_numbers_read_nothing():
    connection, read = _reading({})
    assert connection._resolve_user("0:0") == (0, 0)
    assert read == []


@pytest.mark.parametrize("user, words", [
    ("nobody", "container web: remote_user 'nobody': no such user in /etc/passwd"),
    ("app:wheel", "no such group in /etc/group"),
    ("app:", "is not 'uid[:gid]' or 'name[:group]'"),
])
def test_remote_user_errors(user, words):
    connection, dummy = _reading({"etc/passwd": PASSWD, "etc/group": GROUP})
    with pytest.raises(AnsibleConnectionFailure) as info:
        connection._resolve_user(user)
    assert words in str(info.value)


# --- the exec -----------------------------------------------------------------------------------

RECORDED = {
    "terminal": False,
    "user": {"uid": 0, "gid": 0, "additionalGids": [10], "umask": 18},
    "args": ["sh", "-c", "sleep 1000"],
    "env": ["PATH=/usr/bin:/bin", "APP_MODE=test"],
    "cwd": "/srv",
    "capabilities": {"bounding": ["CAP_KILL"]},
    "noNewPrivileges": True,
    "containerdStdin": "/dev/null",
    "containerdStdout": "/x/stdout.log",
    "containerdStderr": "/x/stderr.log",
    "exec": False,
    "runtimeArgs": [],
    "noPivotRoot": False,
    "checkpoint": "",
    "rootUID": 0,
    "rootGID": 0,
}


def test_exec_process_keeps_the_spec_and_drops_the_records():
    spec = plugin.exec_process(RECORDED, ["/bin/sh", "-c", "id"])
    assert spec == {
        "terminal": False,
        "user": {"uid": 0, "gid": 0, "additionalGids": [10], "umask": 18},
        "args": ["/bin/sh", "-c", "id"],
        "env": ["PATH=/usr/bin:/bin", "APP_MODE=test"],
        "cwd": "/srv",
        "capabilities": {"bounding": ["CAP_KILL"]},
        "noNewPrivileges": True,
    }
    assert RECORDED["args"] == ["sh", "-c", "sleep 1000"]  # the record is not changed


def test_exec_process_with_a_user_keeps_only_the_umask():
    spec = plugin.exec_process(RECORDED, ["id"], (1000, 1001))
    assert spec["user"] == {"uid": 1000, "gid": 1001, "umask": 18}
    spec = plugin.exec_process({"user": {"uid": 0, "gid": 0}, "terminal": True}, ["id"], (5, 6))
    assert spec["user"] == {"uid": 5, "gid": 6}
    assert spec["terminal"] is False


@pytest.fixture
def fake_runtime(tmp_path):
    binary = tmp_path / "bin" / "runc"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return str(binary)


def test_exec_argv_with_a_process_file(fake_runtime):
    runtime = OciRuntime(fake_runtime, root="/run/r", runtime_args=["--systemd-cgroup"])
    argv = plugin.exec_argv(runtime, "web", ["/bin/sh", "-c", "id"], "/tmp/log", "/tmp/p.json", (1, 2))
    assert argv == [fake_runtime, "--root", "/run/r", "--log", "/tmp/log", "--log-format", "json",
                    "--systemd-cgroup", "exec", "--process", "/tmp/p.json", "web"]


def test_exec_argv_without_a_process_file(fake_runtime):
    runtime = OciRuntime(fake_runtime)
    argv = plugin.exec_argv(runtime, "web", ["/bin/sh", "-c", "id"], "/tmp/log")
    assert argv == [fake_runtime, "--log", "/tmp/log", "--log-format", "json", "exec", "web",
                    "/bin/sh", "-c", "id"]
    argv = plugin.exec_argv(runtime, "web", ["id"], "/tmp/log", user_ids=(1000, 1001))
    assert argv[-4:] == ["--user", "1000:1001", "web", "id"]


# --- where the container is ------------------------------------------------------------------------

def _recorded(tmp_path, runtime, root="/run/recorded", args=("--systemd-cgroup",), with_spec=True):
    directory = tmp_path / "state" / "web"
    (directory / "init").mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps(
        {"bundle": "/srv/web", "runtime": runtime, "runtimeRoot": root, "runtimeArgs": list(args)}))
    if with_spec:
        (directory / "init" / "process.json").write_text(json.dumps(RECORDED))
    return str(tmp_path / "state")


def test_target_from_the_record(tmp_path, fake_runtime):
    state_dir = _recorded(tmp_path, fake_runtime)
    target = plugin.ExecTarget("web", state_dir)
    assert target.runtime.binary == fake_runtime
    assert target.runtime.root == "/run/recorded"
    assert target.runtime.runtime_args == ["--systemd-cgroup"]
    assert target.spec["env"] == RECORDED["env"]


def test_options_win_over_the_record(tmp_path, fake_runtime):
    other = tmp_path / "bin" / "crun"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    state_dir = _recorded(tmp_path, fake_runtime)
    target = plugin.ExecTarget("web", state_dir, runtime=str(other), runtime_root="/run/mine")
    assert target.runtime.binary == str(other)
    assert target.runtime.root == "/run/mine"
    assert target.runtime.runtime_args == []  # the recorded ones belong to the recorded runtime


def test_a_container_without_a_record_uses_the_options(tmp_path, fake_runtime):
    target = plugin.ExecTarget("web", str(tmp_path / "nothing"), runtime=fake_runtime)
    assert target.record is None and target.spec is None
    assert target.runtime.root is None
    target = plugin.ExecTarget("web", None, runtime=fake_runtime, runtime_root="/run/r")
    assert target.runtime.root == "/run/r"


def test_a_record_without_process_spec(tmp_path, fake_runtime):
    state_dir = _recorded(tmp_path, fake_runtime, root="", with_spec=False)
    target = plugin.ExecTarget("web", state_dir)
    assert target.spec is None
    assert target.runtime.root is None  # recorded "": the runtime's default


def test_a_bad_id_is_a_core_error(tmp_path, fake_runtime):
    with pytest.raises(RuntimeCoreError) as info:
        plugin.ExecTarget("../web", str(tmp_path), runtime=fake_runtime)
    assert "ansible_host" in str(info.value)


def test_init_pid_of_a_stopped_container_asks_the_runtime(tmp_path, fake_runtime):
    state_dir = _recorded(tmp_path, fake_runtime)
    (tmp_path / "state" / "web" / "init" / "pid").write_text("999999999")
    target = plugin.ExecTarget("web", state_dir)
    asked = []
    target.runtime.state = lambda cid: asked.append(cid) or {"pid": 77}
    assert target.init_pid() == 77  # the recorded pid does not run: not trusted
    assert asked == ["web"]


def test_init_pid_of_a_live_record(tmp_path, fake_runtime):
    state_dir = _recorded(tmp_path, fake_runtime)
    init = tmp_path / "state" / "web" / "init"
    (init / "pid").write_text(str(os.getpid()))
    target = plugin.ExecTarget("web", state_dir)
    target.runtime.state = lambda cid: pytest.fail("the runtime must not be asked")
    assert target.init_pid() == os.getpid()


# --- failed transfers and runtime failures --------------------------------------------------------

class _Target(object):
    container_id = "web"
    state_dir = "/run/oci-runtime"

    def __init__(self, binary):
        self.runtime = OciRuntime(binary, root="/run/r")


def _connection(fake_runtime, answer):
    connection = plugin.Connection.__new__(plugin.Connection)
    connection._connected = True
    connection._target = _Target(fake_runtime)
    connection._user_ids = None
    calls = []

    def exec_(args, stdin=None, stdout=None, in_data=None):
        calls.append(args)
        if isinstance(answer, Exception):
            raise answer
        if stdout is not None and hasattr(stdout, "write"):
            stdout.write(b"data")
        return answer

    connection._exec = exec_
    connection._connect = lambda: connection
    return connection, calls


def test_put_file_runs_cat_through_sh(tmp_path, fake_runtime):
    source = tmp_path / "in"
    source.write_text("x")
    connection, calls = _connection(fake_runtime, (0, b"", b""))
    connection.put_file(str(source), "relative/out file")
    assert calls == [["/bin/sh", "-c", 'cat > "$1"', "sh", "/relative/out file"]]


def test_put_file_without_sh(tmp_path, fake_runtime):
    source = tmp_path / "in"
    source.write_text("x")
    failure = AnsibleConnectionFailure(
        'runc exec in container web failed: exec failed: unable to start container process: '
        'exec: "/bin/sh": stat /bin/sh: no such file or directory')
    connection, dummy = _connection(fake_runtime, failure)
    with pytest.raises(AnsibleError) as info:
        connection.put_file(str(source), "/tmp/out")
    assert "it has no /bin/sh (file transfers need /bin/sh and cat in the container)" in str(info.value)


def test_put_file_without_cat(tmp_path, fake_runtime):
    source = tmp_path / "in"
    source.write_text("x")
    connection, dummy = _connection(fake_runtime, (127, b"", b"sh: cat: not found\n"))
    with pytest.raises(AnsibleError) as info:
        connection.put_file(str(source), "/tmp/out")
    assert "it has no cat" in str(info.value)
    assert "sh: cat: not found" in str(info.value)


def test_put_file_other_failure(tmp_path, fake_runtime):
    source = tmp_path / "in"
    source.write_text("x")
    connection, dummy = _connection(fake_runtime, (1, b"", b"sh: can't create /ro/x: Read-only file system\n"))
    with pytest.raises(AnsibleError) as info:
        connection.put_file(str(source), "/ro/x")
    assert "cannot write /ro/x in container web (exit 1): sh: can't create" in str(info.value)


def test_put_file_of_a_missing_local_file(tmp_path, fake_runtime):
    connection, calls = _connection(fake_runtime, (0, b"", b""))
    with pytest.raises(AnsibleError) as info:
        connection.put_file(str(tmp_path / "nope"), "/tmp/out")
    assert "does not exist" in str(info.value)
    assert calls == []


def test_fetch_file_writes_atomically(tmp_path, fake_runtime):
    connection, calls = _connection(fake_runtime, (0, b"", b""))
    dest = tmp_path / "out.txt"
    connection.fetch_file("/etc/hostname", str(dest))
    assert dest.read_bytes() == b"data"
    assert calls == [["/bin/sh", "-c", 'cat "$1"', "sh", "/etc/hostname"]]
    assert sorted(os.listdir(str(tmp_path))) == ["bin", "out.txt"]


def test_a_failed_fetch_leaves_the_old_file(tmp_path, fake_runtime):
    connection, dummy = _connection(fake_runtime, (1, b"", b"cat: can't open '/nope': No such file or directory\n"))
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(AnsibleError) as info:
        connection.fetch_file("/nope", str(dest))
    assert "cannot read /nope in container web (exit 1)" in str(info.value)
    assert dest.read_text() == "old"
    assert sorted(os.listdir(str(tmp_path))) == ["bin", "out.txt"]


def test_runtime_failure_reads_the_json_log(tmp_path, fake_runtime):
    connection, dummy = _connection(fake_runtime, (0, b"", b""))
    log = tmp_path / "runtime.log"
    log.write_text('{"level":"warning","msg":"just a warning"}\n'
                   '{"level":"error","msg":"exec failed: container does not exist"}\n')
    message = connection._runtime_failure(str(log))
    assert message == ("runc exec in container web (runtime root /run/r, state_dir /run/oci-runtime) "
                       "failed: exec failed: container does not exist")
    log.write_text("")
    assert connection._runtime_failure(str(log)) == ""  # the command's own exit status
    assert connection._runtime_failure(str(tmp_path / "none")) == ""


def test_a_user_name_for_a_container_that_does_not_run(tmp_path, fake_runtime):
    connection = plugin.Connection.__new__(plugin.Connection)
    connection._target = plugin.ExecTarget("web", str(tmp_path / "nothing"), runtime=fake_runtime,
                                           runtime_root="/run/r")
    connection._target.runtime.state = lambda cid: None
    with pytest.raises(AnsibleConnectionFailure) as info:
        connection._resolve_user("app")
    assert "container web does not run (runtime root /run/r" in str(info.value)
    assert connection._resolve_user("1000:1000") == (1000, 1000)  # numbers need no lookup
