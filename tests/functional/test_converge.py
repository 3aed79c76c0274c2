# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ContainerConverger (the module's logic without Ansible) against the real runc."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time

from conftest import RUNC, shim_processes, unique_id, wait_exec, wait_for

from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time


def _tree(path, skip=()):
    found = []
    for root, dirs, files in os.walk(str(path)):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        found += [os.path.join(root, n) for n in dirs + files]
    return sorted(found)


def _counting_runtime(tmp_path):
    """A runc wrapper that logs every call: the runtime cost of a converge, counted."""
    log = tmp_path / "runc-calls.log"
    wrapper = tmp_path / "runc-counting"
    wrapper.write_text('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (log, RUNC))
    wrapper.chmod(0o755)
    return str(wrapper), log


def _verbs(log):
    if not log.exists():
        return []
    verbs = []
    for line in log.read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("/")]
        verbs.append([w for w in words if w not in ("--root", "--log", "--log-format", "json")][0])
    return verbs


def test_converge_lifecycle(env, tmp_path):
    runtime, log = _counting_runtime(tmp_path)
    bundle = env.bundle()
    name = env.new_id("conv")
    params = env.params(name, bundle, runtime=runtime, labels={"app": "web"})

    result = ContainerConverger(dict(params)).run()
    assert result["changed"] is True
    assert result["actions"] == ["register: record container %r for bundle %s" % (name, bundle),
                                 "create", "start"]
    first = result["container"]
    assert first["status"] == "running" and first["labels"] == {"app": "web"}
    assert first["pid"] == env.runc_state(name)["pid"] and first["shim_pid"]
    assert result["diff"]["before"] == {"status": "absent"}

    # idempotent, and it asks the runtime once (one `state`)
    log.write_text("")
    result = ContainerConverger(dict(params)).run()
    assert result == {"changed": False, "actions": [], "container": first}
    assert _verbs(log) == ["state"]

    # paused and back
    result = ContainerConverger(dict(params, state="paused")).run()
    assert result["actions"] == ["pause"] and result["container"]["status"] == "paused"
    assert env.runc_state(name)["status"] == "paused"
    assert ContainerConverger(dict(params, state="paused")).run()["changed"] is False
    result = ContainerConverger(dict(params)).run()
    assert result["actions"] == ["resume"] and result["container"]["status"] == "running"

    # labels change in place: same process
    result = ContainerConverger(dict(params, labels={"app": "db"})).run()
    assert result["actions"] == ["update labels"]
    assert result["container"]["pid"] == first["pid"]
    assert result["diff"] == {"before": dict(result["diff"]["before"], labels={"app": "web"}),
                              "after": dict(result["diff"]["after"], labels={"app": "db"})}

    # a changed config.json recreates it
    env_bundle = env.bundle("sleep", "3601")
    os.rename(os.path.join(env_bundle, "config.json"), os.path.join(bundle, "config.json"))
    result = ContainerConverger(dict(params, labels={"app": "db"})).run()
    assert result["actions"][0].startswith("recreate: because config_digest changed")
    assert result["actions"][1:] == ["stop", "remove", "register: record container %r for bundle %s"
                                     % (name, bundle), "create", "start"]
    second = result["container"]
    assert second["pid"] != first["pid"] and second["labels"] == {"app": "db"}
    # `runc start` returns once the container may exec: its pid may still show `runc init` a moment
    assert wait_exec(second["pid"]) == ["sleep", "3601"]
    assert shim_processes(env.state_dir, name) == [second["shim_pid"]]

    # stopped keeps the exit status; absent removes everything
    params["labels"] = {"app": "db"}
    result = ContainerConverger(dict(params, state="stopped", stop_timeout=0.3)).run()
    assert result["actions"] == ["stop"]
    assert result["container"]["status"] == "stopped" and result["container"]["exit_status"] == 137
    result = ContainerConverger(dict(params, state="absent")).run()
    assert result["actions"] == ["remove"] and result["container"] == {}
    assert env.runc_ids() == []
    assert not os.path.exists(os.path.join(env.state_dir, name))
    wait_for(lambda: not shim_processes(env.state_dir), what="no shim left")
    assert ContainerConverger(dict(params, state="absent")).run()["changed"] is False


def test_check_mode_creates_nothing(env, tmp_path):
    bundle = env.bundle()
    name = env.new_id("check")
    before = _tree(tmp_path, skip=(bundle,))
    result = ContainerConverger(env.params(name, bundle), check_mode=True).run()
    assert result["changed"] is True and result["actions"][1:] == ["create", "start"]
    assert result["container"]["status"] == "running"
    assert _tree(tmp_path, skip=(bundle,)) == before
    assert not os.path.exists(env.state_dir)
    assert env.runc_ids() == []
    assert shim_processes(env.state_dir) == []


def test_check_mode_on_running_container(env, tmp_path):
    bundle = env.bundle()
    name = env.new_id("check")
    first = ContainerConverger(env.params(name, bundle)).run()["container"]
    # .shim/ is left out: a running shim caches its compiled code there on its own time
    skip = (bundle, os.path.join(env.state_dir, ".shim"))
    before = _tree(tmp_path, skip=skip)
    for state, actions in (("paused", ["pause"]), ("stopped", ["stop"]), ("absent", ["stop", "remove"])):
        result = ContainerConverger(env.params(name, bundle, state=state), check_mode=True).run()
        assert result["actions"] == actions, state
    result = ContainerConverger(env.params(name, bundle, force_recreate=True), check_mode=True).run()
    assert result["actions"][0] == "recreate: because force_recreate changed"
    assert _tree(tmp_path, skip=skip) == before
    assert env.load(name).describe() == first


# --- concurrency --------------------------------------------------------------------------------------

def _converge_worker(params, barrier, results):
    try:
        barrier.wait(30)
        results.put(("ok", ContainerConverger(params).run()))
    except BaseException as exc:  # pylint: disable=broad-except
        results.put(("error", "%s: %s" % (type(exc).__name__, exc)))


def _run_concurrently(all_params):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(all_params))
    results = ctx.Queue()
    procs = [ctx.Process(target=_converge_worker, args=(p, barrier, results)) for p in all_params]
    for proc in procs:
        proc.start()
    try:
        collected = [results.get(timeout=120) for dummy in procs]
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = [r[1] for r in collected if r[0] != "ok"]
    assert not errors, errors
    return [r[1] for r in collected]


def test_eight_concurrent_converges_of_one_container(env):
    bundle = env.bundle()
    name = env.new_id("race")
    results = _run_concurrently([env.params(name, bundle) for dummy in range(8)])
    changed = [r for r in results if r["changed"]]
    assert len(changed) == 1, [r["actions"] for r in results]
    assert changed[0]["actions"][1:] == ["create", "start"]
    pids = set(r["container"]["pid"] for r in results)
    assert len(pids) == 1 and all(r["container"]["status"] == "running" for r in results)
    assert env.runc_ids() == [name]
    shims = shim_processes(env.state_dir)
    assert len(shims) == 1 and shims == [changed[0]["container"]["shim_pid"]]
    assert process_start_time(pids.pop()) is not None


def test_eight_concurrent_converges_of_different_containers(env):
    bundle = env.bundle()
    names = [env.new_id("many%d" % i) for i in range(8)]
    results = _run_concurrently([env.params(name, bundle) for name in names])
    assert all(r["changed"] and r["container"]["status"] == "running" for r in results)
    assert sorted(r["container"]["id"] for r in results) == sorted(names)
    assert env.runc_ids() == sorted(names)
    assert len(shim_processes(env.state_dir)) == 8
    for name in names:
        assert env.runc_state(name)["status"] == "running"


# --- timing (printed, never asserted) -------------------------------------------------------------------

def _median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def test_measure_converge_vs_runc_run(env):
    from conftest import TIMINGS_FILE
    bundle = env.bundle()
    repetitions = 5
    converge, raw = [], []
    for index in range(repetitions):
        name = unique_id("bench%d" % index)
        env.ids.append(name)
        started = time.perf_counter()
        result = ContainerConverger(env.params(name, bundle)).run()
        converge.append(time.perf_counter() - started)
        assert result["container"]["status"] == "running"
        ContainerConverger(env.params(name, bundle, state="absent", stop_signal="KILL")).run()

        name = unique_id("raw%d" % index)
        env.ids.append(name)
        started = time.perf_counter()
        subprocess.run([RUNC, "--root", env.runtime_root, "run", "-d", "--bundle", bundle, name],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=60)
        raw.append(time.perf_counter() - started)
        env.runc("delete", "--force", name)
    lines = [
        "ContainerConverger create+start: median %.1f ms (runs: %s)"
        % (_median(converge) * 1000, ", ".join("%.1f" % (t * 1000) for t in converge)),
        "runc run -d:                     median %.1f ms (runs: %s)"
        % (_median(raw) * 1000, ", ".join("%.1f" % (t * 1000) for t in raw)),
    ]
    os.makedirs(os.path.dirname(TIMINGS_FILE), exist_ok=True)
    with open(TIMINGS_FILE, "w") as handle:
        json.dump({"repetitions": repetitions, "converge_ms": [t * 1000 for t in converge],
                   "runc_run_ms": [t * 1000 for t in raw], "lines": lines}, handle, indent=2)
    print("\n" + "\n".join(lines))


def test_converge_restarts_an_exited_container(env):
    bundle = env.bundle("sh", "-c", "exit 7")
    name = env.new_id("exited")
    params = env.params(name, bundle)
    ContainerConverger(dict(params)).run()
    container = env.load(name)
    assert container.init.wait_exit(10)
    view = env.load(name).describe()
    assert view["status"] == "stopped" and view["exit_status"] == 7
    # declared stopped: nothing to do, the exit status is kept
    result = ContainerConverger(dict(params, state="stopped")).run()
    assert result["changed"] is False and result["container"]["exit_status"] == 7
    # declared running: started afresh from the bundle
    result = ContainerConverger(dict(params)).run()
    assert result["actions"] == ["create", "start"]


def test_converge_stopped_only_registers(env):
    bundle = env.bundle()
    name = env.new_id("reg")
    result = ContainerConverger(env.params(name, bundle, state="stopped")).run()
    assert result["changed"] is True and len(result["actions"]) == 1
    assert result["actions"][0].startswith("register")
    assert result["container"]["status"] == "stopped" and result["container"]["exit_status"] is None
    assert env.runc_ids() == [] and shim_processes(env.state_dir) == []
    result = ContainerConverger(env.params(name, None)).run()  # the recorded bundle is used
    assert result["actions"] == ["create", "start"] and result["container"]["status"] == "running"
