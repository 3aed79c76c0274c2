# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""process.py: the process records and the shim protocol, driven by a fake runtime script (no runc)."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as P
from ansible_collections.oci.runtime.plugins.module_utils._runtime import shim
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    ContainerNotStartedError,
    ContainerStartTimeoutError,
    InvalidPidError,
    StateError,
)


def _pid_max():
    with open("/proc/sys/kernel/pid_max") as handle:
        return int(handle.read())


_LAUNCHED = []


@pytest.fixture
def record(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    rec = P.ProcessRecord(layout, "c1", "init")
    del _LAUNCHED[:]
    yield layout, rec
    # Kill the shim a launch test left behind, with its session (the fake runtime's children).
    for launched in _LAUNCHED:
        shim_pid, alive = launched.shim()
        if alive and shim_pid != os.getpid() and os.getsid(shim_pid) == shim_pid:
            try:
                os.killpg(shim_pid, signal.SIGKILL)
            except OSError:
                pass


# --- pid_alive / ProcessRecord ------------------------------------------------------------------

def test_pid_alive():
    me = os.getpid()
    assert P.pid_alive(me, shim.process_start_time(me))
    assert P.pid_alive(me, None)
    assert not P.pid_alive(me, shim.process_start_time(me) + 1)
    assert not P.pid_alive(None, None)
    assert not P.pid_alive(0, None)
    assert not P.pid_alive(_pid_max() + 1, None)


def test_record_files(record):
    layout, rec = record
    assert not rec.exists()
    assert rec.pid is None and rec.start_time is None and rec.exit_status is None
    assert rec.shim() == (None, False)
    assert rec.spec() == {}
    assert not rec.alive()
    L.make_private_dir(rec.dir)
    L.atomic_write(rec.path(L.PID_FILE), "%d\n" % os.getpid())
    L.atomic_write(rec.path(L.START_TIME_FILE), "%d\n" % shim.process_start_time(os.getpid()))
    assert rec.alive()
    L.atomic_write(rec.path(L.START_TIME_FILE), "%d\n" % (shim.process_start_time(os.getpid()) - 1))
    assert not rec.alive()
    L.atomic_write(rec.path(L.EXIT_STATUS_FILE), "137\n")
    assert rec.exit_status == 137


@pytest.mark.parametrize("content", ["0", "-5"])
def test_record_invalid_pid(record, content):
    dummy, rec = record
    L.make_private_dir(rec.dir)
    L.atomic_write(rec.path(L.PID_FILE), content)
    with pytest.raises(InvalidPidError) as info:
        dummy = rec.pid
    assert rec.path(L.PID_FILE) in str(info.value)


def test_record_garbage_pid_and_start_time(record):
    dummy, rec = record
    L.make_private_dir(rec.dir)
    L.atomic_write(rec.path(L.PID_FILE), "abc")
    with pytest.raises(StateError):
        dummy = rec.pid
    L.atomic_write(rec.path(L.START_TIME_FILE), "12x")
    with pytest.raises(StateError) as info:
        dummy = rec.start_time
    assert rec.path(L.START_TIME_FILE) in str(info.value)


@pytest.mark.parametrize("content,expected_pid,expected_alive", [
    ("", None, False),
    ("garbage", None, False),
    ("{dead} 5\n", "dead", False),
    ("{me} {start}\n", "me", True),
    ("{me} None\n", "me", True),
    ("{me}\n", "me", True),
    ("{me} {wrong}\n", "me", False),
])
def test_record_shim(record, content, expected_pid, expected_alive):
    dummy, rec = record
    me = os.getpid()
    values = {"me": me, "dead": _pid_max() + 1, "start": shim.process_start_time(me),
              "wrong": shim.process_start_time(me) + 7}
    L.make_private_dir(rec.dir)
    L.atomic_write(rec.path(L.SHIM_PID_FILE), content.format(**values))
    assert rec.shim() == (values.get(expected_pid), expected_alive)


def test_wait_exit_without_shim_or_process_returns_at_once(record):
    dummy, rec = record
    L.make_private_dir(rec.dir)
    started = time.monotonic()
    assert rec.wait_exit(5)
    assert time.monotonic() - started < 1


def test_wait_exit_times_out_while_alive(record):
    dummy, rec = record
    L.make_private_dir(rec.dir)
    L.atomic_write(rec.path(L.PID_FILE), "%d\n" % os.getpid())
    started = time.monotonic()
    assert not rec.wait_exit(0.2)
    assert 0.2 <= time.monotonic() - started < 2


# --- shim installation and the process directory ------------------------------------------------

def test_shim_source_is_shim_py():
    with open(shim.__file__, "rb") as handle:
        assert P.shim_source() == handle.read()


def test_install_shim_idempotent(record):
    layout, dummy = record
    path = P.install_shim(layout)
    assert os.path.dirname(path) == layout.shim_dir()
    assert os.path.basename(path).startswith("shim-") and path.endswith(".py")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(layout.shim_dir()).st_mode) == 0o700
    mtime = os.stat(path).st_mtime_ns
    assert P.install_shim(layout) == path
    assert os.stat(path).st_mtime_ns == mtime
    assert os.listdir(layout.shim_dir()) == [os.path.basename(path)]


def test_prepare_process_dir(record, tmp_path):
    dummy, rec = record
    stdio = P.prepare_process_dir(rec, {"args": ["sh"], "exec": False}, None, None, None)
    assert stdio == {"stdin": os.devnull, "stdout": rec.path("stdout.log"),
                     "stderr": rec.path("stderr.log")}
    spec = rec.spec()
    assert spec["args"] == ["sh"] and spec["containerdStdout"] == rec.path("stdout.log")
    assert stat.S_ISFIFO(os.lstat(rec.path(L.EXIT_FILE)).st_mode)
    assert stat.S_ISFIFO(os.lstat(rec.path(L.CONTROL_FILE)).st_mode)
    custom = P.prepare_process_dir(rec, {}, "/in", str(tmp_path / "o"), str(tmp_path / "e"))
    assert custom == {"stdin": "/in", "stdout": str(tmp_path / "o"), "stderr": str(tmp_path / "e")}


# --- launch: the shim protocol with a fake runtime --------------------------------------------------

def _fake_runtime(tmp_path, body):
    path = tmp_path / "fake-runtime"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return [str(path)]


def _launch(layout, rec, argv, timeout=10):
    stdio = P.prepare_process_dir(rec, {"args": ["x"]}, None, None, None)
    _LAUNCHED.append(rec)
    return P.launch(layout, rec, argv, stdio, timeout)


def test_launch_records_pid_start_time_and_exit(record, tmp_path):
    layout, rec = record
    # "create": leave a process behind, write its pid (the shim runs us in the process dir), exit 0.
    argv = _fake_runtime(tmp_path, "echo created-out; echo created-err >&2\n"
                                   "sh -c 'sleep 0.3; exit 7' </dev/null >/dev/null 2>&1 &\n"
                                   "echo $! > pid\n")
    pid = _launch(layout, rec, argv)
    assert rec.pid == pid
    assert rec.start_time == shim.process_start_time(pid)
    shim_pid, shim_alive = rec.shim()
    assert shim_alive and shim_pid not in (os.getpid(), pid)
    assert os.getsid(shim_pid) == shim_pid  # its own session
    assert rec.wait_exit(10)
    assert rec.exit_status == 7
    with open(rec.path("stdout.log")) as handle:
        assert handle.read() == "created-out\n"
    with open(rec.path("stderr.log")) as handle:
        assert handle.read() == "created-err\n"
    # The shim exits after recording, and its exit fifo reaches EOF.
    deadline = time.monotonic() + 5
    while rec.shim()[1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not rec.shim()[1]
    fd = os.open(rec.path(L.EXIT_FILE), os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 10) == b""
    finally:
        os.close(fd)


def test_launch_killed_process_is_128_plus_signal(record, tmp_path):
    layout, rec = record
    argv = _fake_runtime(tmp_path, "sleep 30 </dev/null >/dev/null 2>&1 &\necho $! > pid\n")
    pid = _launch(layout, rec, argv)
    os.kill(pid, signal.SIGKILL)
    assert rec.wait_exit(10)
    assert rec.exit_status == 137


def test_launch_runtime_failure_quotes_its_log(record, tmp_path):
    layout, rec = record
    argv = _fake_runtime(tmp_path, """\
printf '%s' '{"level":"info","msg":"x"}{"level":"error","msg":"bad namespace type"}' > runtime.log
exit 1
""")
    with pytest.raises(ContainerNotStartedError) as info:
        _launch(layout, rec, argv)
    assert "bad namespace type" in str(info.value) and "'c1'" in str(info.value)
    deadline = time.monotonic() + 5
    while rec.shim()[1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not rec.shim()[1], "the shim outlived a failed create"


def test_launch_runtime_failure_falls_back_to_stderr(record, tmp_path):
    layout, rec = record
    argv = _fake_runtime(tmp_path, "echo 'plain complaint' >&2; exit 2\n")
    with pytest.raises(ContainerNotStartedError) as info:
        _launch(layout, rec, argv)
    assert "plain complaint" in str(info.value)


def test_launch_no_pid_file(record, tmp_path):
    layout, rec = record
    argv = _fake_runtime(tmp_path, "exit 0\n")
    with pytest.raises(ContainerNotStartedError) as info:
        _launch(layout, rec, argv)
    assert "pid file" in str(info.value)


def test_launch_missing_binary(record, tmp_path):
    layout, rec = record
    with pytest.raises(ContainerNotStartedError) as info:
        _launch(layout, rec, [str(tmp_path / "no-such-runtime")])
    assert "no-such-runtime" in str(info.value)


def test_launch_timeout(record, tmp_path):
    layout, rec = record
    argv = _fake_runtime(tmp_path, "exec sleep 30\n")
    started = time.monotonic()
    with pytest.raises(ContainerStartTimeoutError):
        _launch(layout, rec, argv, timeout=0.3)
    assert time.monotonic() - started < 5


def test_read_report():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b'{"ok": true, "pid": 5}\nrest')
    assert P._read_report(read_fd, time.monotonic() + 1) == {"ok": True, "pid": 5}
    os.close(read_fd)
    os.close(write_fd)
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    assert P._read_report(read_fd, time.monotonic() + 1) == {"ok": False, "error": "the shim exited without reporting"}
    os.close(read_fd)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"garbage\n")
    assert "garbage" in P._read_report(read_fd, time.monotonic() + 1)["error"]
    os.close(read_fd)
    os.close(write_fd)
    read_fd, write_fd = os.pipe()
    assert P._read_report(read_fd, time.monotonic() + 0.1) is None
    os.close(read_fd)
    os.close(write_fd)
