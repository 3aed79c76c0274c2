# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""process.py: the process records (pid, start time, shim, exit status) and the process directory."""

from __future__ import annotations

import os
import stat
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as P
from ansible_collections.oci.runtime.plugins.module_utils._runtime import shim
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import InvalidPidError, StateError


def _pid_max():
    with open("/proc/sys/kernel/pid_max") as handle:
        return int(handle.read())


@pytest.fixture
def record(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    return layout, P.ProcessRecord(layout, "c1", "init")


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


# --- the process directory -------------------------------------------------------------------

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


def test_cmdline_reads_a_live_process_and_gives_up_on_kernel_threads():
    assert P._cmdline(os.getpid())[0]
    assert P._may_show_argv(os.getpid())
    kthreadd = 2  # the kernel's thread creator: a kernel thread, which never shows a command line
    if os.path.exists("/proc/%d/stat" % kthreadd):
        assert not P._may_show_argv(kthreadd)  # so its empty command line is not waited on
        assert P._cmdline(kthreadd) == []
    assert P._cmdline(2 ** 22 + 1) == []  # above pid_max: gone
