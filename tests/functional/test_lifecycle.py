# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime core's container lifecycle against the real runc: start, exit codes, stop, pause."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import read_cmdline, shim_processes, wait_exec, wait_for

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import ContainerExitedError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time


def _stopped_with(container, timeout=10):
    """Wait until the shim recorded the exit; return the container's exit status."""
    assert container.init.wait_exit(timeout), "the shim did not record an exit in %ss" % timeout
    container.forget_runtime_state()
    assert container.status() == core.STOPPED
    return container.exit_status()


def test_register_create_start_running(env):
    bundle = env.bundle()
    container = env.register(bundle)
    assert container.status() == core.STOPPED
    assert container.describe()["exit_status"] is None  # never ran
    record = L.read_json(env.layout.state_file(container.id))
    assert record["bundle"] == bundle and record["runtimeRoot"] == env.runtime_root

    container.create(30)
    assert env.runc_state(container.id)["status"] == "created"
    assert container.status() == core.CREATED
    container.start()

    state = env.runc_state(container.id)
    assert state["status"] == "running"
    pid = container.init.pid
    assert pid == state["pid"]
    assert wait_exec(pid) == ["sleep", "3600"]
    assert container.init.start_time == process_start_time(pid)
    assert container.status() == core.RUNNING

    view = env.load(container.id).describe()  # from disk, as a later task would see it
    assert view["status"] == "running" and view["pid"] == pid and view["exit_status"] is None
    shim_pid = view["shim_pid"]
    assert shim_pid and process_start_time(shim_pid) is not None
    argv = read_cmdline(shim_pid)
    assert env.state_dir in argv and container.id in argv and "init" in argv
    assert shim_processes(env.state_dir, container.id) == [shim_pid]
    assert os.getsid(shim_pid) == shim_pid  # own session: no controlling terminal, no module pipes
    # the container process was re-parented to its shim (the subreaper)
    with open("/proc/%d/stat" % pid) as handle:
        stat = handle.read()
    assert int(stat[stat.rfind(")") + 2:].split()[1]) == shim_pid


def test_exit_code_recorded_by_shim(env):
    container = env.run(env.bundle("sh", "-c", "exit 7"))
    assert _stopped_with(container) == 7
    with open(container.init.path(L.EXIT_STATUS_FILE)) as handle:
        assert handle.read().strip() == "7"
    view = env.load(container.id).describe()
    assert view["status"] == "stopped" and view["exit_status"] == 7 and view["pid"] is None
    wait_for(lambda: not shim_processes(env.state_dir, container.id), what="the shim to exit")


def test_sigkill_from_outside_is_137(env):
    container = env.run(env.bundle())
    os.kill(container.init.pid, signal.SIGKILL)
    assert _stopped_with(container) == 137


def test_stop_with_term_handled_by_the_process(env):
    script = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    container = env.run(env.bundle("sh", "-c", script))
    time.sleep(0.1)  # let sh install its trap
    started = time.monotonic()
    container.stop("SIGTERM", 10)
    assert time.monotonic() - started < 5, "the TERM was not acted on"
    assert container.status() == core.STOPPED
    assert container.exit_status() == 0
    with pytest.raises(ContainerExitedError):
        container.stop("SIGTERM", 1)


def test_stop_escalates_to_kill(env):
    # sleep as PID 1 of its namespace has no TERM handler, so the kernel ignores TERM.
    container = env.run(env.bundle("sleep", "3600"))
    started = time.monotonic()
    container.stop("TERM", 0.5)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.5, "stopped before the timeout: TERM was not ignored?"
    assert elapsed < 8
    assert container.status() == core.STOPPED
    assert container.exit_status() == 137


def _freezer_state(pid):
    """FROZEN / THAWED / FREEZING of the container's cgroup (v1 freezer or v2 cgroup.freeze)."""
    with open("/proc/%d/cgroup" % pid) as handle:
        lines = handle.read().splitlines()
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            with open(os.path.join("/sys/fs/cgroup/freezer", path.lstrip("/"), "freezer.state")) as handle:
                return handle.read().strip()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # a pure cgroup v2 host
        for line in lines:
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0":
                with open(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "cgroup.freeze")) as handle:
                    return "FROZEN" if handle.read().strip() == "1" else "THAWED"
    raise AssertionError("no freezer cgroup for pid %d in %r" % (pid, lines))


def test_pause_and_resume(env):
    container = env.run(env.bundle())
    pid = container.init.pid
    assert _freezer_state(pid) == "THAWED"
    container.pause()
    assert env.runc_state(container.id)["status"] == "paused"
    assert container.status() == core.PAUSED
    wait_for(lambda: _freezer_state(pid) == "FROZEN", what="FROZEN")
    assert env.load(container.id).describe()["status"] == "paused"
    container.resume()
    assert env.runc_state(container.id)["status"] == "running"
    assert container.status() == core.RUNNING
    assert _freezer_state(pid) == "THAWED"
    # stopping a paused container resumes it first, so the signal is acted on
    container.pause()
    container.stop("KILL", 5)
    assert container.exit_status() == 137


def test_stdout_and_stderr_logs_are_separate(env):
    container = env.run(env.bundle("sh", "-c", "echo to-out; echo to-err >&2; echo more-out"))
    assert _stopped_with(container) == 0
    with open(container.init.path("stdout.log")) as handle:
        assert handle.read() == "to-out\nmore-out\n"
    with open(container.init.path("stderr.log")) as handle:
        assert handle.read() == "to-err\n"


def test_custom_stdout_and_stderr_files(env, tmp_path):
    out, err = str(tmp_path / "out.log"), str(tmp_path / "err.log")
    container = env.register(env.bundle("sh", "-c", "echo o; echo e >&2"),
                             stdio={"stdout": out, "stderr": err})
    container.create(30)
    container.start()
    assert _stopped_with(container) == 0
    with open(out) as handle:
        assert handle.read() == "o\n"
    with open(err) as handle:
        assert handle.read() == "e\n"
    assert not os.path.exists(container.init.path("stdout.log"))


def test_restart_after_exit_creates_afresh(env):
    container = env.run(env.bundle("sh", "-c", "exit 3"))
    assert _stopped_with(container) == 3
    container.create(30)
    container.start()
    assert _stopped_with(container) == 3
    assert env.runc_ids() == [container.id]
    assert len(shim_processes(env.state_dir, container.id)) <= 1


def _fd_targets(pid):
    targets = {}
    directory = "/proc/%d/fd" % pid
    for name in os.listdir(directory):
        try:
            targets[int(name)] = os.readlink(os.path.join(directory, name))
        except OSError:
            pass
    return targets


def test_shim_and_container_inherit_no_caller_fds(env):
    """Ansible waits for the module's pipes to close: no shim or container may hold a copy."""
    read_fd, write_fd = os.pipe()
    os.set_inheritable(read_fd, True)
    os.set_inheritable(write_fd, True)
    try:
        ours = {os.readlink("/proc/self/fd/%d" % read_fd), os.readlink("/proc/self/fd/%d" % write_fd)}
        container = env.run(env.bundle())
        shim_pid = container.describe()["shim_pid"]
        pid = container.init.pid
        wait_exec(pid)  # until then it is `runc init`, holding runc's fds
        for owner in (shim_pid, pid):
            leaked = ours & set(_fd_targets(owner).values())
            assert not leaked, "process %d holds the caller's pipe %s" % (owner, leaked)
        shim_fds = _fd_targets(shim_pid)
        assert shim_fds[0] == shim_fds[1] == shim_fds[2] == "/dev/null"
        # the container's stdio are pipes whose other ends only its shim holds; the shim owns the logs
        container_fds = _fd_targets(pid)
        assert sorted(container_fds) == [0, 1, 2]
        for fd in (1, 2):
            assert container_fds[fd].startswith("pipe:"), container_fds
            assert container_fds[fd] in shim_fds.values(), (container_fds, shim_fds)
        assert container_fds[1] != container_fds[2]
        assert container.init.path("stdout.log") in shim_fds.values()
        assert container.init.path("stderr.log") in shim_fds.values()
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_exit_fifo_reaches_eof_when_the_shim_is_done(env):
    container = env.run(env.bundle("sh", "-c", "sleep 0.5; exit 4"))
    fd = os.open(container.init.path(L.EXIT_FILE), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            os.read(fd, 1)  # the shim holds it open while the process runs
        os.set_blocking(fd, True)
        started = time.monotonic()
        assert os.read(fd, 1) == b""  # EOF: the shim closed it
        assert time.monotonic() - started < 10
    finally:
        os.close(fd)
    assert os.path.exists(container.init.path(L.EXIT_STATUS_FILE))
    assert container.exit_status() == 4


def test_stop_and_remove_of_created_container(env):
    container = env.register(env.bundle())
    container.create(30)
    assert container.status() == core.CREATED
    container.stop("SIGTERM", 5)
    assert container.status() == core.STOPPED
    assert container.exit_status() == 137  # a created container is killed
    container.remove()
    assert env.runc_ids() == []


def test_stdin_file_is_fed_to_the_process(env, tmp_path):
    source = tmp_path / "input.txt"
    source.write_bytes(b"line one\nline two\n" + b"x" * 200000 + b"\n")
    container = env.register(env.bundle("sh", "-c", "cat; echo done >&2"),
                             stdio={"stdin": str(source)})
    container.create(30)
    container.start()
    assert _stopped_with(container) == 0
    with open(container.init.path("stdout.log"), "rb") as handle:
        assert handle.read() == source.read_bytes()
    with open(container.init.path("stderr.log")) as handle:
        assert handle.read() == "done\n"


def test_large_output_is_not_lost(env):
    container = env.run(env.bundle("sh", "-c", "seq 1 100000; seq 1 50000 >&2; exit 5"))
    assert _stopped_with(container) == 5
    with open(container.init.path("stdout.log")) as handle:
        assert handle.read() == "".join("%d\n" % i for i in range(1, 100001))
    with open(container.init.path("stderr.log")) as handle:
        assert handle.read() == "".join("%d\n" % i for i in range(1, 50001))
