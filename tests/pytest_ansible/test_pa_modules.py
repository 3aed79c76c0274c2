# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The happy path of each oci.runtime module, run through pytest-ansible's ``localhost`` fixture.

``localhost`` is a host manager for the one host ``localhost`` with the local connection. A module is
called as an attribute named by its FQCN (``getattr(localhost, "oci.runtime.container")``) with the
module's arguments as keywords; the result is keyed by host (``result["localhost"]``), a dict with
pytest-ansible's helpers (``is_changed``, ``is_successful``, ...). Every test checks the real world
too (runc, the kernel's cgroup files), not only what the module says.
"""

from __future__ import annotations

import os
import time

import pytest

# The collection these tests belong to (tests/pytest_ansible/ is two levels below its root).
COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A shell that exits on SIGTERM (as PID 1 it would ignore it otherwise), picks a random token when it
# starts and counts in /tmp/count: a restored checkpoint keeps the token and goes on counting, a
# restarted process would have a new token.
COUNTER = ('trap "exit 0" TERM; t=$(cat /proc/sys/kernel/random/uuid); i=0; '
           'while :; do i=$((i+1)); echo "$t $i" >/tmp/count; sleep 0.1; done')


def call(host, module, **args):
    """Run ``module`` on ``host`` (a pytest-ansible host manager) and return localhost's result."""
    return getattr(host, module)(**args)["localhost"]


@pytest.fixture
def bundle(localhost, work):
    """A bundle built with oci.runtime.bundle from the busybox root filesystem (writable, so that the
    counter can write /tmp/count); built by the first test, unchanged for the others."""
    path = os.path.join(work["root"], "bundles", "counter")
    result = call(localhost, "oci.runtime.bundle", path=path,
                  rootfs_dir=os.path.join(work["busybox"], "rootfs"),
                  args=["sh", "-c", COUNTER], readonly_rootfs=False)
    assert result.is_successful, result
    return path


@pytest.fixture
def container(localhost, work, oci, bundle, runc_state, request):
    """A running container (named after the test), removed with the module afterwards."""
    name = work["prefix"] + request.node.name.replace("_", "-")[5:40].strip("-")
    result = call(localhost, "oci.runtime.container", name=name, bundle=bundle, **oci)
    assert result.is_successful and result.is_changed, result
    yield name
    result = call(localhost, "oci.runtime.container", name=name, state="absent", stop_timeout=5, **oci)
    assert result.is_successful, result
    assert runc_state(name) is None


def count(localhost, oci, name):
    """(token, count) of a running container's counter, read with oci.runtime.process."""
    result = call(localhost, "oci.runtime.process", container=name, id="read-count-%d" % time.monotonic_ns(),
                  args=["cat", "/tmp/count"], **oci)
    assert result.is_successful, result
    token, number = result["stdout"].split()
    return token, int(number)


def cgroup_file(pid, controller, v1_name, v2_name):
    """The content of a cgroup file of process ``pid``: ``v1_name`` in its ``controller`` hierarchy
    (cgroup v1), or ``v2_name`` in its unified cgroup (v2)."""
    with open("/proc/%d/cgroup" % pid) as handle:
        lines = [line.rstrip("\n").split(":", 2) for line in handle]
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path = "/sys/fs/cgroup%s/%s" % (next(p for h, c, p in lines if h == "0"), v2_name)
    else:
        path = "/sys/fs/cgroup/%s%s/%s" % (controller, next(p for h, c, p in lines
                                                            if controller in c.split(",")), v1_name)
    with open(path) as handle:
        return handle.read().strip()


def test_bundle_is_built_once(localhost, work, bundle, module_path_of):
    # The module that ran is this collection's, not a copy elsewhere on the collections path.
    assert module_path_of("oci.runtime.bundle").startswith(os.path.realpath(COLLECTION) + os.sep)
    assert os.path.isfile(os.path.join(bundle, "config.json"))
    assert os.path.isfile(os.path.join(bundle, "rootfs", "bin", "busybox"))
    again = call(localhost, "oci.runtime.bundle", path=bundle,
                 rootfs_dir=os.path.join(work["busybox"], "rootfs"),
                 args=["sh", "-c", COUNTER], readonly_rootfs=False)
    assert again.is_ok, again


def test_container_runs_and_converges_once(localhost, work, oci, bundle, runc_state):
    name = work["prefix"] + "run"
    first = call(localhost, "oci.runtime.container", name=name, bundle=bundle, labels={"app": "pa"}, **oci)
    assert first.is_changed, first
    assert first["container"]["status"] == "running"
    state = runc_state(name)
    assert state["status"] == "running" and state["pid"] == first["container"]["pid"]

    again = call(localhost, "oci.runtime.container", name=name, bundle=bundle, labels={"app": "pa"}, **oci)
    assert again.is_ok, again
    assert again["container"]["pid"] == first["container"]["pid"]

    gone = call(localhost, "oci.runtime.container", name=name, state="absent", stop_timeout=5, **oci)
    assert gone.is_changed, gone
    assert runc_state(name) is None


def test_process_runs_inside_the_container(localhost, oci, container):
    result = call(localhost, "oci.runtime.process", container=container, id="hello",
                  args=["sh", "-c", "echo hello from $(hostname); exit 0"], **oci)
    assert result.is_changed, result
    assert result["exit_status"] == 0
    assert result["stdout"].startswith("hello from ")
    # An exited process is not run again.
    again = call(localhost, "oci.runtime.process", container=container, id="hello",
                 args=["sh", "-c", "echo hello from $(hostname); exit 0"], **oci)
    assert again.is_ok, again


def test_resource_update_sets_the_cgroup(localhost, oci, container, runc_state):
    result = call(localhost, "oci.runtime.resource_update", container=container, memory="64m",
                  pids_limit=32, **oci)
    assert result.is_changed, result
    # The kernel's own files, found through the init's /proc/<pid>/cgroup (cgroup v1 or v2).
    pid = runc_state(container)["pid"]
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max") == "67108864"
    assert cgroup_file(pid, "pids", "pids.max", "pids.max") == "32"
    again = call(localhost, "oci.runtime.resource_update", container=container, memory="64m",
                 pids_limit=32, **oci)
    assert again.is_ok, again


def test_container_info_reads_it_back(localhost, oci, container, runc_state):
    result = call(localhost, "oci.runtime.container_info", name=container, **oci)
    assert result.is_ok, result
    [info] = result["containers"]
    assert info["id"] == container
    assert info["status"] == "running"
    assert info["pid"] == runc_state(container)["pid"]


def test_checkpoint_stops_and_restores_the_container(localhost, work, oci, container, runc_state):
    args = dict(container=container, name="warm", checkpoint_dir=os.path.join(work["checkpoint_dir"], container),
                **oci)
    token, before = count(localhost, oci, container)
    taken = call(localhost, "oci.runtime.checkpoint", exit=True, **args)
    assert taken.is_changed, taken
    assert taken["checkpoint"]["name"] == "warm"
    assert taken["container"]["status"] == "stopped"
    assert (runc_state(container) or {}).get("status") != "running"

    restored = call(localhost, "oci.runtime.checkpoint", state="restored", **args)
    assert restored.is_changed, restored
    assert runc_state(container)["status"] == "running"
    # Same token, and the count goes on: the process was restored, not restarted.
    token_after, after = count(localhost, oci, container)
    assert token_after == token and after >= before

    dropped = call(localhost, "oci.runtime.checkpoint", state="absent", **args)
    assert dropped.is_changed, dropped
    assert dropped["checkpoints"] == []
