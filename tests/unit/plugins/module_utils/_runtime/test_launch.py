# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""launch.py: installing the shim and the launch protocol, driven by a fake runtime script (no runc)."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import launch as LA
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as P
from ansible_collections.oci.runtime.plugins.module_utils._runtime import shim
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    ContainerNotStartedError,
    ContainerStartTimeoutError,
)

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


# --- installing the shim --------------------------------------------------------------------------

def test_shim_source_is_shim_py():
    with open(shim.__file__, "rb") as handle:
        assert LA.shim_source() == handle.read()


def test_install_shim_idempotent(record):
    layout, dummy = record
    path = LA.install_shim(layout)
    assert os.path.dirname(path) == layout.shim_dir()
    assert os.path.basename(path).startswith("shim-") and path.endswith(".py")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(layout.shim_dir()).st_mode) == 0o700
    mtime = os.stat(path).st_mtime_ns
    assert LA.install_shim(layout) == path
    assert os.stat(path).st_mtime_ns == mtime
    assert os.listdir(layout.shim_dir()) == [os.path.basename(path)]


def test_start_argv_uses_the_loader_once_the_code_is_there(tmp_path):
    script = str(tmp_path / "shim-x.py")
    args = ["/state", "c1", "init"]
    assert LA.start_argv("/py", script, args) == ["/py", "-I", "-S", script] + args
    with open("%s.%s.code" % (script, sys.implementation.cache_tag), "wb"):
        pass
    argv = LA.start_argv("/py", script, args)
    assert argv[:4] == ["/py", "-I", "-S", "-c"] and argv[4] == shim.START_LOADER
    assert argv[5:] == [script] + args  # the script right before the args, as find_shims reads it


# --- launch: the shim protocol with a fake runtime --------------------------------------------------

def _fake_runtime(tmp_path, body):
    path = tmp_path / "fake-runtime"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return [str(path)]


def _launch(layout, rec, argv, timeout=10):
    stdio = P.prepare_process_dir(rec, {"args": ["x"]}, None, None, None)
    _LAUNCHED.append(rec)
    return LA.launch(layout, rec, argv, stdio, timeout)


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


@pytest.mark.parametrize("body, words", [
    ("echo 'plain complaint' >&2; exit 2\n", "plain complaint"),  # no JSON log: stderr's tail
    ("exit 0\n", "pid file"),                                     # success without a pid file
    (None, "no-such-runtime"),                                    # no binary at all
])
def test_launch_failures_say_why(record, tmp_path, body, words):
    layout, rec = record
    argv = _fake_runtime(tmp_path, body) if body is not None else [str(tmp_path / "no-such-runtime")]
    with pytest.raises(ContainerNotStartedError) as info:
        _launch(layout, rec, argv)
    assert words in str(info.value)


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
    assert LA._read_report(read_fd, time.monotonic() + 1) == {"ok": True, "pid": 5}
    os.close(read_fd)
    os.close(write_fd)
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    assert LA._read_report(read_fd, time.monotonic() + 1) == {"ok": False, "error": "the shim exited without reporting"}
    os.close(read_fd)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"garbage\n")
    assert "garbage" in LA._read_report(read_fd, time.monotonic() + 1)["error"]
    os.close(read_fd)
    os.close(write_fd)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"[1]\n")  # JSON, but not an object
    assert "garbage: b'[1]'" in LA._read_report(read_fd, time.monotonic() + 1)["error"]
    os.close(read_fd)
    os.close(write_fd)
    read_fd, write_fd = os.pipe()
    assert LA._read_report(read_fd, time.monotonic() + 0.1) is None
    os.close(read_fd)
    os.close(write_fd)
