# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OOM kills on real containers: a memory hog under a 16 MiB limit is reported oom_killed (from the
memory cgroup's counter, kept in the process dir before the runtime deletes the cgroup); a
container killed by a plain SIGKILL is not."""

from __future__ import annotations

import os
import signal

from conftest import wait_for

from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container_info import ContainerInfo
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import oom

LIMIT = 16 * 1024 * 1024
# Doubles a shell variable until the kernel kills the shell at the limit.
HOG = ("sh", "-c", "x=a; while :; do x=$x$x; done")


def _limited(config):
    resources = config.setdefault("linux", {}).setdefault("resources", {})
    resources["memory"] = {"limit": LIMIT, "swap": LIMIT}


def _ended(container, timeout=60):
    assert container.init.wait_exit(timeout), "the container did not end in %ss" % timeout
    container.forget_runtime_state()
    return container.describe()


def test_memory_hog_is_reported_oom_killed(env):
    container = env.run(env.bundle(*HOG, edit=_limited))
    view = _ended(container)
    assert view["status"] == "stopped" and view["exit_status"] == 137
    assert view["oom_killed"] is True
    # as a later task (container_info) reads it: from disk, the cgroup still there
    assert env.load(container.id).describe()["oom_killed"] is True
    # the counter is kept before the runtime deletes the container and its cgroup
    cgroup = oom.CgroupFiles(L.read_text(container.init.path(oom.CGROUP_FILE)) or "")
    memory_dir = os.path.dirname(cgroup.path("memory", "memory.events" if cgroup.version == 2
                                             else "memory.oom_control"))
    container.record_oom_kills()
    env.runtime.delete(container.id, force=True)
    wait_for(lambda: not os.path.isdir(memory_dir), what="the cgroup to go")
    assert L.read_int(container.init.path(oom.OOM_KILLS_FILE)) >= 1
    again = env.load(container.id)
    assert again.status() == core.STOPPED and again.describe()["oom_killed"] is True


def test_plain_sigkill_is_not_oom_killed(env):
    container = env.run(env.bundle(edit=_limited))
    os.kill(container.init.pid, signal.SIGKILL)
    view = _ended(container)
    assert view["exit_status"] == 137 and view["oom_killed"] is False


def test_modules_report_the_kill_and_the_restart_warns(env):
    name = env.new_id("oomconv")
    params = env.params(name, env.bundle(*HOG, edit=_limited))
    result = ContainerConverger(dict(params)).run()
    assert result["changed"] and "restarted_after_oom_kill" not in result
    container = env.load(name)
    _ended(container)
    info = ContainerInfo({"state_dir": env.state_dir, "runtime": None, "runtime_root": None,
                          "name": name, "labels": None, "checkpoint_root": None,
                          "checkpoint_dir": None}).run()
    described = info["containers"][0]
    assert described["exit_status"] == 137 and described["oom_killed"] is True

    result = ContainerConverger(dict(params)).run()  # state: running starts it again
    assert result["restarted_after_oom_kill"] is True
    assert any("OOM killer" in warning for warning in result["warnings"])
    assert result["container"]["status"] == "running" and result["container"]["oom_killed"] is False


def test_exec_process_oom_killed_and_its_neighbour_not(env):
    container = env.run(env.bundle(edit=_limited))
    hog = container.exec_process("hog", {"args": list(HOG)}, {}, 30)
    assert hog.wait_exit(60)
    described = hog.describe()
    assert described["exit_status"] == 137 and described["oom_killed"] is True
    quiet = container.exec_process("quiet", {"args": ["sleep", "3600"]}, {}, 30)
    wait_for(quiet.alive, what="the second process to run")
    quiet.signal(signal.SIGKILL)
    assert quiet.wait_exit(10)
    described = quiet.describe()
    assert described["exit_status"] == 137 and described["oom_killed"] is False
    assert container.describe()["oom_killed"] is False  # the init process still runs
