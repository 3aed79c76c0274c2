# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shim host (issue 10): one process per state dir forks the monitors; a standalone shim stands
in whenever the host cannot take a request. Real runc, real containers."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from conftest import read_cmdline, shim_hosts, shim_processes, wait_exec, wait_for

from ansible_collections.oci.runtime.plugins.module_utils._runtime import launch as LA
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as P
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import host_socket_path


def _parent(pid):
    with open("/proc/%d/stat" % pid) as handle:
        text = handle.read()
    return int(text[text.rfind(")") + 2:].split()[1])


def _host_socket(env):
    return host_socket_path(LA.install_shim(env.layout))


def test_monitors_are_forked_by_one_host_and_look_like_shims(env):
    first = env.run(env.bundle())
    second = env.run(env.bundle())
    hosts = shim_hosts(env.state_dir)
    assert len(hosts) == 1, hosts
    for container in (first, second):
        monitor = container.describe()["shim_pid"]
        assert _parent(monitor) == hosts[0]  # forked by the host
        assert _parent(wait_exec(container.init.pid) and container.init.pid) == monitor  # the subreaper
        argv = read_cmdline(monitor)
        # what find_shims, ps and the targets look for: <script> <state_dir> <id> <process>
        assert argv[-4:-1] == [env.state_dir, container.id, "init"] and argv[-1].isdigit(), argv
        assert P.find_shims(env.layout, container.id, "init") == [monitor]
        assert os.getsid(monitor) == monitor
    assert sorted(shim_processes(env.state_dir)) == sorted(c.describe()["shim_pid"] for c in (first, second))
    mode = os.stat(_host_socket(env)).st_mode & 0o777
    assert mode == 0o600, oct(mode)


def test_exit_status_recorded_and_output_copied_by_a_forked_monitor(env):
    container = env.run(env.bundle("sh", "-c", "echo out; echo err >&2; exit 7"))
    assert container.init.wait_exit(10)
    assert container.exit_status() == 7
    with open(container.init.path("stdout.log")) as handle:
        assert handle.read() == "out\n"
    with open(container.init.path("stderr.log")) as handle:
        assert handle.read() == "err\n"


def test_host_exits_once_idle_and_a_new_one_starts_on_demand(env, monkeypatch):
    monkeypatch.setenv("OCI_RUNTIME_SHIM_HOST_IDLE", "0.3")
    container = env.run(env.bundle("sh", "-c", "exit 0"))
    assert container.init.wait_exit(10)
    wait_for(lambda: not shim_hosts(env.state_dir), timeout=10, what="the idle host to exit")
    assert not os.path.exists(_host_socket(env))
    again = env.run(env.bundle())
    assert len(shim_hosts(env.state_dir)) == 1
    assert _parent(again.describe()["shim_pid"]) == shim_hosts(env.state_dir)[0]


def test_killed_host_leaves_its_monitors_working(env):
    container = env.run(env.bundle("sleep", "3600"))
    monitor = container.describe()["shim_pid"]
    host = shim_hosts(env.state_dir)[0]
    os.kill(host, signal.SIGKILL)
    wait_for(lambda: not shim_hosts(env.state_dir), timeout=5, what="the host to die")
    # the next launch finds a dead socket and starts a new host
    other = env.run(env.bundle())
    assert len(shim_hosts(env.state_dir)) == 1 and shim_hosts(env.state_dir) != [host]
    assert _parent(other.describe()["shim_pid"]) == shim_hosts(env.state_dir)[0]
    # the orphaned monitor still records its container's exit
    os.kill(wait_exec(container.init.pid) and container.init.pid, signal.SIGKILL)
    assert container.init.wait_exit(10)
    assert container.exit_status() == 137
    wait_for(lambda: monitor not in shim_processes(env.state_dir), timeout=5, what="the monitor to go")


def test_disabled_host_means_standalone_shims(env, monkeypatch):
    monkeypatch.setenv(LA.SHIM_HOST_ENV, "0")
    container = env.run(env.bundle())
    assert shim_hosts(env.state_dir) == []
    argv = read_cmdline(container.describe()["shim_pid"])
    assert argv[-4:-1] == [env.state_dir, container.id, "init"] and argv[-1].isdigit(), argv


def test_host_that_cannot_start_falls_back_to_a_standalone_shim(env, monkeypatch):
    # a directory where the socket would be: the host cannot bind, reports so, and the module
    # starts a standalone shim instead
    os.makedirs(_host_socket(env))
    container = env.run(env.bundle())
    assert container.status() == "running"
    assert shim_hosts(env.state_dir) == []
    assert read_cmdline(container.describe()["shim_pid"])[-1].isdigit()


@pytest.mark.parametrize("request_line", [
    b"../../etc init\n",         # escapes the state dir
    b"nosuch init\n",            # no launch.json there
    b"a b c\n",                  # three words
    b"\xff\xfe init\n",          # not ascii
    b"x" * 2000,                 # no newline, too long
])
def test_host_refuses_bad_requests_and_keeps_serving(env, request_line):
    env.run(env.bundle())
    host = shim_hosts(env.state_dir)[0]
    path = _host_socket(env)
    dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect("/proc/self/fd/%d/%s" % (dir_fd, os.path.basename(path)))
            try:
                conn.sendall(request_line)
                answer = conn.recv(64)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
    finally:
        os.close(dir_fd)
    assert answer == b""  # closed without "forked": nothing was started
    assert shim_hosts(env.state_dir) == [host]
    env.run(env.bundle())  # and it still serves
    assert shim_hosts(env.state_dir) == [host]


def test_concurrent_first_launches_start_one_host(env):
    bundles = [env.bundle() for dummy in range(6)]
    containers = [env.register(bundle) for bundle in bundles]
    errors = []

    def create(container):
        try:
            container.create(30)
            container.start()
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    threads = [threading.Thread(target=create, args=(c,)) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert all(c.status() == "running" for c in containers)
    hosts = shim_hosts(env.state_dir)
    assert len(hosts) == 1, hosts
    assert all(_parent(c.describe()["shim_pid"]) == hosts[0] for c in containers)


def test_long_state_dir_path_uses_the_dir_fd_address(tmp_path):
    from conftest import Env
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    env = Env(deep)
    try:
        container = env.run(env.bundle())
        assert len(_host_socket(env)) > 108
        assert len(shim_hosts(env.state_dir)) == 1
        assert _parent(container.describe()["shim_pid"]) == shim_hosts(env.state_dir)[0]
    finally:
        assert env.cleanup() == []


def test_host_keeps_nothing_open_under_the_state_dir(env):
    """A check for leftovers after removing every container (the integration targets make one)
    must not find the host that lingers: its cwd is / and its only fds are /dev/null, pipes and
    sockets."""
    container = env.run(env.bundle())
    host = shim_hosts(env.state_dir)[0]
    assert os.readlink("/proc/%d/cwd" % host) == "/"
    for name in os.listdir("/proc/%d/fd" % host):
        target = os.readlink("/proc/%d/fd/%s" % (host, name))
        assert not target.startswith(env.state_dir), target
    container.stop("KILL", 5)
    container.remove()
    assert shim_hosts(env.state_dir) == [host]  # it lingers, idle
