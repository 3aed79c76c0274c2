# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""shim.py: its pure helpers (start time, exit codes, the runtime's error), without a runtime."""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout
from ansible_collections.oci.runtime.plugins.module_utils._runtime import shim


def _entry(level, msg):
    return json.dumps({"level": level, "msg": msg, "time": "2026-11-30T06:33:26Z"})


# --- process_start_time --------------------------------------------------------------------------

def test_process_start_time_self():
    with open("/proc/self/stat") as handle:
        text = handle.read()
    expected = int(text[text.rfind(")") + 2:].split()[19])
    assert shim.process_start_time(os.getpid()) == expected
    assert shim.process_start_time(os.getpid()) == expected  # stable


def test_process_start_time_nonexistent_pid():
    with open("/proc/sys/kernel/pid_max") as handle:
        pid_max = int(handle.read())
    assert shim.process_start_time(pid_max + 1) is None
    assert shim.process_start_time(0x7FFFFFFF) is None


def test_process_start_time_differs_between_processes():
    proc = subprocess.Popen(["sleep", "5"])
    try:
        time.sleep(0.02)
        child = shim.process_start_time(proc.pid)
        assert isinstance(child, int)
        assert child >= shim.process_start_time(os.getpid())
    finally:
        proc.kill()
        proc.wait()
    assert shim.process_start_time(proc.pid) is None


def test_process_start_time_zombie_is_gone():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % pid) as handle:
                if ") Z " in handle.read():
                    break
            time.sleep(0.005)
        assert shim.process_start_time(pid) is None
    finally:
        os.waitpid(pid, 0)


def test_process_start_time_command_with_spaces_and_parens(tmp_path):
    odd = tmp_path / "a) (b c"
    shutil.copy("/bin/sleep", str(odd))
    proc = subprocess.Popen([str(odd), "5"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % proc.pid) as handle:
                text = handle.read()
            if "(a) (b c)" in text:
                break
            time.sleep(0.005)
        assert "(a) (b c)" in text
        expected = int(text[text.rfind(")") + 2:].split()[19])
        assert shim.process_start_time(proc.pid) == expected
    finally:
        proc.kill()
        proc.wait()


# --- _exit_code -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status,expected", [
    (0, 0),
    (7 << 8, 7),
    (255 << 8, 255),
    (signal.SIGKILL, 137),
    (signal.SIGTERM, 143),
    (signal.SIGSEGV | 0x80, 128 + signal.SIGSEGV),   # core dumped
    ((signal.SIGSTOP << 8) | 0x7F, None),              # stopped: not an exit
    (0xFFFF, None),                                   # continued
])
def test_exit_code_from_status(status, expected):
    assert shim._exit_code(status) == expected


def _status_of(func):
    pid = os.fork()
    if pid == 0:
        try:
            func()
        finally:
            os._exit(99)
    return os.waitpid(pid, 0)[1]


def test_exit_code_real_children():
    assert shim._exit_code(_status_of(lambda: os._exit(7))) == 7
    assert shim._exit_code(_status_of(lambda: os._exit(0))) == 0
    assert shim._exit_code(_status_of(lambda: os.kill(os.getpid(), signal.SIGKILL))) == 137


# --- _runtime_error --------------------------------------------------------------------------------

def test_runtime_error_from_json_log(tmp_path):
    log = tmp_path / "runtime.log"
    log.write_text("\n".join([_entry("info", "hello"), _entry("error", "first"),
                              _entry("fatal", "second"), _entry("error", "first"), "garbage"]) + "\n")
    assert shim._runtime_error(str(log), str(tmp_path / "none")) == "first; second"


def test_runtime_error_concatenated_json(tmp_path):
    log = tmp_path / "runtime.log"
    log.write_text(_entry("warning", "w") + _entry("error", "a") + _entry("panic", "b"))
    assert shim._runtime_error(str(log), str(tmp_path / "none")) == "a; b"


def test_runtime_error_falls_back_to_stderr_tail(tmp_path):
    log = tmp_path / "runtime.log"
    log.write_text(_entry("info", "nothing wrong") + "\n")
    err = tmp_path / "stderr.log"
    err.write_text("one\ntwo\nthree\nfour\n\n")
    assert shim._runtime_error(str(log), str(err)) == "two three four"
    assert shim._runtime_error(str(tmp_path / "nolog"), str(err)) == "two three four"


def test_runtime_error_nothing_at_all(tmp_path):
    assert shim._runtime_error(str(tmp_path / "a"), str(tmp_path / "b")) == ""


# --- small helpers ---------------------------------------------------------------------------------

def test_write_file_atomic_private(tmp_path):
    path = tmp_path / "exitStatus"
    shim._write_file(str(path), "7\n")
    assert path.read_text() == "7\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["exitStatus"]


def test_read_file(tmp_path):
    assert shim._read_file(str(tmp_path / "none")) is None
    (tmp_path / "f").write_text("x")
    assert shim._read_file(str(tmp_path / "f")) == "x"


def test_control_closes_stdin(tmp_path):
    proc_dir = tmp_path / "c1" / "init"
    proc_dir.mkdir(parents=True)
    (proc_dir / "launch.json").write_text("{}")
    obj = shim.Shim(str(tmp_path), "c1", "init", None)
    src = os.open(os.devnull, os.O_RDONLY)
    in_r, in_w = os.pipe()
    obj.stdin = shim.Pump(src, in_w)
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1 2 3\n")
        obj.control(read_fd)
        assert obj.stdin is not None  # not the close command
        os.write(write_fd, b"0 0 0\n")
        obj.control(read_fd)
        assert obj.stdin is None
        assert os.read(in_r, 10) == b""  # the process's stdin reads EOF
        os.write(write_fd, b"0 0 0\n")
        obj.control(read_fd)  # already closed: nothing to do
    finally:
        for fd in (read_fd, write_fd, in_r):
            os.close(fd)


def test_pump_copies_and_reports_eof(tmp_path):
    src_r, src_w = os.pipe()
    log = tmp_path / "stdout.log"
    dst = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pump = shim.Pump(src_r, dst)
    os.write(src_w, b"hello ")
    assert pump.fill() and pump.flush()
    os.write(src_w, b"world\n")
    os.close(src_w)
    assert pump.fill() and pump.flush()
    assert pump.fill() is False  # EOF
    pump.close()
    assert log.read_bytes() == b"hello world\n"


def test_report_without_fd_is_quiet(tmp_path):
    proc_dir = tmp_path / "c1" / "init"
    proc_dir.mkdir(parents=True)
    (proc_dir / "launch.json").write_text("{}")
    obj = shim.Shim(str(tmp_path), "c1", "init", None)
    obj.report({"ok": True})  # no fd: nothing happens
    read_fd, write_fd = os.pipe()
    obj = shim.Shim(str(tmp_path), "c1", "init", write_fd)
    obj.report({"ok": True, "pid": 5})
    assert obj.report_fd is None
    assert json.loads(os.read(read_fd, 1000).decode()) == {"ok": True, "pid": 5}
    assert os.read(read_fd, 1000) == b""  # the report fd was closed
    os.close(read_fd)


def test_main_usage_error(capsys):
    assert shim.main(["only", "three", "args"]) == 2
    assert "usage" in capsys.readouterr().err


def test_shim_is_self_contained():
    """The shim runs from a copy with ``python -I -S``: standard library imports only."""
    with open(shim.__file__) as handle:
        tree = ast.parse(handle.read())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in shim.py"
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert modules <= stdlib, modules - stdlib


def test_shim_runs_isolated(tmp_path):
    """Run the shim's usage path the way the core starts it: ``python -I -S <copy>``."""
    copy = tmp_path / "shim-copy.py"
    shutil.copy(shim.__file__, str(copy))
    proc = subprocess.run([sys.executable, "-I", "-S", str(copy)], capture_output=True, timeout=30,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert b"usage" in proc.stderr


@pytest.mark.parametrize("value, ok", [
    ("web", True), ("a.b_c-1", True), ("x" * 128, True),
    ("", False), ("x" * 129, False), ("..", False), ("-rf", False), (".hidden", False),
    ("a/b", False), ("a b", False), ("é", False),
])
def test_host_accepts_only_valid_ids(value, ok):
    assert shim._valid_id(value) is ok
    assert layout.is_valid_id(value) is ok  # the twin the shim cannot import


def test_shim_id_length_is_the_layouts():
    assert shim._MAX_ID_LENGTH == layout.MAX_ID_LENGTH


# The shim's copies of layout.py's file names (it imports nothing of the package).
FILE_NAMES = ("LAUNCH_FILE", "START_TIME_FILE", "SHIM_PID_FILE", "EXIT_STATUS_FILE", "EXIT_FILE",
              "CONTROL_FILE")


@pytest.mark.parametrize("name", FILE_NAMES)
def test_shim_file_names_are_the_layouts(name):
    assert getattr(shim, name) == getattr(layout, name)


def test_shim_names_its_files_only_through_the_constants():
    """No other string in shim.py is one of those file names: a renamed file cannot be missed."""
    with open(shim.__file__) as handle:
        tree = ast.parse(handle.read())
    names = {getattr(layout, name) for name in FILE_NAMES}
    defined = {node.value.lineno for node in ast.walk(tree)
               if isinstance(node, ast.Assign) and len(node.targets) == 1
               and getattr(node.targets[0], "id", None) in FILE_NAMES}
    strays = [(node.lineno, node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and node.value in names and node.lineno not in defined]
    assert strays == []


def test_socket_address_short_and_long():
    assert shim.socket_address("/run/x/.shim/s.sock", 7) == "/run/x/.shim/s.sock"
    long_path = "/" + "d" * 120 + "/.shim/s.sock"
    assert shim.socket_address(long_path, 7) == "/proc/self/fd/7/s.sock"


def test_host_pad_has_room_for_two_ids_of_the_longest_kind():
    state_dir = "/run/oci-runtime"
    before = len(shim.HOST_FLAG + state_dir) + 1 + len(shim.HOST_PAD) + 1 + len("123") + 1
    after = sum(len(w) + 1 for w in (state_dir, "x" * 128, "y" * 128, "-"))
    assert after <= before


def test_handover_round_trip_renumbers_fds(tmp_path, monkeypatch):
    """What hand_over sends (the line, then the pending bytes) rebuilds the same shim, with the fds
    that arrived standing for the sender's numbers, in the line's order."""
    sender = shim.Shim(str(tmp_path), "c", "init", None)
    sender.container_pid, sender.control_fd = 4242, 11
    out = shim.Pump(12, 13)
    out.pending = b"abc"
    err = shim.Pump(14, 15)
    sender.outputs = [out, err]
    sender.stdin = shim.Pump(16, 17)
    sender.stdin.pending = b"in"
    line, fds, pending = sender._handover_state(10)
    assert fds == [10, 11, 12, 13, 14, 15, 16, 17]
    received = [100 + i for i in range(len(fds))]
    rebuilt = {}

    def keep(fd, flag):
        rebuilt.setdefault("inheritable", []).append((fd, flag))
    monkeypatch.setattr(shim.os, "set_inheritable", keep)  # the fds are made up: record, don't touch
    got, exit_fd = shim.Shim.from_handover(str(tmp_path), "c", "init",
                                           io.BytesIO(line + b"".join(pending)), received=received)
    assert exit_fd == 100 and got.control_fd == 101 and got.container_pid == 4242
    assert [(p.src, p.dst, p.pending) for p in got.outputs] == [(102, 103, b"abc"), (104, 105, b"")]
    assert (got.stdin.src, got.stdin.dst, got.stdin.pending) == (106, 107, b"in")
    assert sorted(fd for fd, flag in rebuilt["inheritable"]) == received and \
        not any(flag for fd, flag in rebuilt["inheritable"])


def test_main_dispatches_host_arguments_only_in_their_shape(capsys):
    assert shim.main([shim.HOST_FLAG + "/x", "not-the-pad", "3"]) == 2
    assert "usage" in capsys.readouterr().err
