# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the core reports when things happen behind its back, and that it cleans up after itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from conftest import open_fds, processes, shim_processes, wait_for

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    ContainerNotStartedError,
    ContainerStartTimeoutError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time


def test_shim_killed_while_container_runs(env):
    container = env.run(env.bundle())
    pid = container.init.pid
    shim_pid = container.describe()["shim_pid"]
    os.kill(shim_pid, signal.SIGKILL)
    wait_for(lambda: process_start_time(shim_pid) is None, what="the shim to die")

    again = env.load(container.id)
    view = again.describe()
    assert view["status"] == "running" and view["pid"] == pid
    assert view["shim_pid"] is None
    assert view["exit_status"] is None

    again.stop("SIGTERM", 0.5)
    assert again.status() == core.STOPPED
    # nobody saw the process end: the status is unknown, not invented
    assert again.exit_status() is None
    assert env.load(container.id).describe()["exit_status"] is None
    assert not os.path.exists(again.init.path(L.EXIT_STATUS_FILE))

    again.remove()
    assert env.runc_ids() == []
    assert not os.path.exists(env.layout.container_dir(container.id))


def test_shim_killed_while_container_writes_output(env):
    """Output goes through pipes the shim owns (CRIU can checkpoint pipes, not host files), as
    under containerd: once the shim is gone, the next write gets SIGPIPE. The records must still
    tell the truth: stopped, as the runtime says, with the exit status unknown, not invented."""
    chatty = "while true; do echo tick; echo tock >&2; sleep 0.05; done"
    # PID 1 of a pid namespace ignores SIGPIPE; the workload runs as its child, as under an init.
    container = env.run(env.bundle("sh", "-c", "sh -c '%s' & wait; exit 3" % chatty))
    shim_pid = container.describe()["shim_pid"]
    wait_for(lambda: os.path.getsize(container.init.path("stdout.log")) > 0, what="output")
    os.kill(shim_pid, signal.SIGKILL)
    wait_for(lambda: process_start_time(shim_pid) is None, what="the shim to die")
    wait_for(lambda: env.runc_state(container.id)["status"] == "stopped",
             what="the writer to die of SIGPIPE and PID 1 to exit")
    again = env.load(container.id)
    view = again.describe()
    assert view["status"] == "stopped" and view["pid"] is None, view
    assert view["exit_status"] is None, view  # nobody saw the exit: unknown, not 3 or 255
    assert view["shim_pid"] is None, view
    again.remove()
    assert env.runc_ids() == []


def test_reused_pid_is_detected(env):
    container = env.run(env.bundle())
    pid = container.init.pid
    real = container.init.start_time
    L.atomic_write(container.init.path(L.START_TIME_FILE), "%d\n" % (real + 12345))
    again = env.load(container.id)
    assert env.runc_state(container.id)["status"] == "running"  # runc still sees our pid
    assert again.status() == core.STOPPED
    view = again.describe()
    assert view["status"] == "stopped" and view["pid"] is None
    assert process_start_time(pid) == real  # the real process was not touched


def test_runtime_state_wiped_outside(env):
    container = env.run(env.bundle())
    env.runc("delete", "--force", container.id)
    again = env.load(container.id)
    assert again.status() == core.STOPPED
    # the shim saw its child killed by runc delete --force
    assert again.init.wait_exit(10)
    assert again.describe()["exit_status"] == 137
    again.remove()
    assert not os.path.exists(env.layout.container_dir(container.id))


def test_runtime_root_wiped_outside(env):
    container = env.run(env.bundle())
    pid = container.init.pid
    env.runc("delete", "--force", container.id)
    wait_for(lambda: process_start_time(pid) is None, what="the process to die")
    shutil.rmtree(env.runtime_root)
    again = env.load(container.id)
    assert again.status() == core.STOPPED
    assert again.describe()["status"] == "stopped"
    again.remove()  # works although runc knows nothing any more
    assert not os.path.exists(env.layout.container_dir(container.id))


def test_remove_leaves_nothing(env):
    bundle = env.bundle()
    fds_before = open_fds()
    container = env.run(bundle)
    container.pause()
    container.stop("SIGKILL", 5)
    container.remove()
    assert not os.path.exists(env.layout.container_dir(container.id))
    assert env.layout.container_ids() == []
    assert env.runc_ids() == []
    assert env.runc_state(container.id) is None
    wait_for(lambda: not shim_processes(env.state_dir), what="no shim left")
    assert open_fds() == fds_before, "the test process's file descriptors changed"


def test_remove_of_running_container(env):
    fds_before = open_fds()
    container = env.run(env.bundle())
    pid = container.init.pid
    container.remove()
    assert env.runc_ids() == []
    assert not os.path.exists(env.layout.container_dir(container.id))
    wait_for(lambda: process_start_time(pid) is None, what="the container process to go")
    wait_for(lambda: not shim_processes(env.state_dir), what="the shim to go")
    assert open_fds() == fds_before


def _bad_namespace(config):
    config["linux"]["namespaces"].append({"type": "bogus"})


def test_failing_create_quotes_runc(env):
    fds_before = open_fds()
    container = env.register(env.bundle(edit=_bad_namespace))
    with pytest.raises(ContainerNotStartedError) as info:
        container.create(30)
    message = str(info.value)
    assert container.id in message
    assert 'namespace {"bogus" ""} does not exist' in message, message
    # the shim was killed (SIGKILL) or exited: give the kernel a moment to finish it
    wait_for(lambda: not shim_processes(env.state_dir), timeout=5, what="no shim left")
    assert env.runc_ids() == []
    assert container.status() == core.STOPPED
    assert open_fds() == fds_before


def test_failing_create_of_missing_binary(env):
    # runc 1.1 looks the binary up during create already, so create fails, not start.
    container = env.register(env.bundle("/no/such/binary"))
    with pytest.raises(ContainerNotStartedError) as info:
        container.create(30)
    assert 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory' in str(info.value)
    wait_for(lambda: not shim_processes(env.state_dir), timeout=5, what="no shim left")
    assert env.runc_ids() == []
    container.remove()
    assert not os.path.exists(env.layout.container_dir(container.id))


def test_records_are_private(env):
    container = env.run(env.bundle())
    for path in (env.state_dir, env.layout.container_dir(container.id), container.init.dir):
        assert os.stat(path).st_mode & 0o077 == 0, path
    for name in (L.STATE_FILE,):
        assert os.stat(os.path.join(env.layout.container_dir(container.id), name)).st_mode & 0o077 == 0
    with open(env.layout.state_file(container.id)) as handle:
        record = json.load(handle)
    assert record["configDigest"].startswith("sha256:")


def _slow_prestart_hook(config):
    config.setdefault("hooks", {})["prestart"] = [{"path": "/bin/sleep", "args": ["sleep", "1.5"]}]


def _live_processes_mentioning(word):
    return [(pid, argv) for pid, argv in processes()
            if any(word in arg for arg in argv) and process_start_time(pid) is not None]


def test_start_timeout_leaves_nothing_behind(env):
    container = env.register(env.bundle(edit=_slow_prestart_hook))
    started = time.monotonic()
    with pytest.raises(ContainerStartTimeoutError) as info:
        container.create(0.3)
    assert time.monotonic() - started < 5
    assert "0.3 seconds" in str(info.value)
    wait_for(lambda: not shim_processes(env.state_dir), timeout=5, what="no shim left")
    # once the hook would have finished, runc must not have created the container after all
    time.sleep(2)
    assert env.runc_ids() == []
    assert _live_processes_mentioning(container.id) == []
    assert container.status() == core.STOPPED
