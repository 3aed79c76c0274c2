# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent runs as Ansible makes them: separate Python interpreters (not forks of the test), one
converge each, started together. (test_converge.py has the same counts with forked workers.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import COLLECTIONS_ROOT, shim_processes, wait_for
from faults_helpers import leftovers, rel_id

from ansible_collections.oci.runtime.plugins.module_utils._module.container_info import ContainerInfo
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError

# One converge in a fresh interpreter: waits for the start signal (a file), prints one JSON line.
WORKER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
params, go = json.loads(sys.argv[2]), sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.002)
try:
    print(json.dumps({"ok": True, "result": ContainerConverger(params).run()}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}))
"""


def run_in_interpreters(all_params, go_file, while_running=None):
    """Start one interpreter per params, release them at once, return their results; calls
    ``while_running()`` repeatedly until all have finished."""
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, COLLECTIONS_ROOT, json.dumps(p), go_file],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in all_params]
    time.sleep(0.3)  # let them import and reach the barrier
    with open(go_file, "w"):
        pass
    while while_running is not None and any(p.poll() is None for p in procs):
        while_running()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip(), (proc.returncode, out, err)
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    errors = [o["error"] for o in outputs if not o["ok"]]
    assert not errors, errors
    return [o["result"] for o in outputs]


def test_eight_interpreters_converge_one_container(env, tmp_path):
    bundle = env.bundle()
    name = rel_id(env, "one")
    reads = []

    def read_meanwhile():
        # container_info takes no lock: it must never fail on records being written
        try:
            reads.append(ContainerInfo({"state_dir": env.state_dir, "name": name}).run())
        except RuntimeCoreError as exc:
            raise AssertionError("container_info failed during the converges: %s" % exc)

    results = run_in_interpreters([env.params(name, bundle) for dummy in range(8)],
                                  str(tmp_path / "go"), read_meanwhile)
    assert len(results) == 8
    changed = [r for r in results if r["changed"]]
    assert len(changed) == 1, [r["actions"] for r in results]
    assert [a.split(":")[0] for a in changed[0]["actions"]] == ["register", "create", "start"]
    assert len(set(r["container"]["pid"] for r in results)) == 1
    assert all(r["container"]["status"] == "running" for r in results)
    assert env.runc_ids() == [name]
    assert shim_processes(env.state_dir, name) == [changed[0]["container"]["shim_pid"]]
    assert reads, "container_info never ran while the converges did"


def test_eight_interpreters_converge_eight_containers(env, tmp_path):
    bundle = env.bundle()
    names = [rel_id(env, "many%d" % i) for i in range(8)]
    results = run_in_interpreters([env.params(n, bundle) for n in names], str(tmp_path / "go"))
    assert all(r["changed"] and r["container"]["status"] == "running" for r in results)
    assert sorted(r["container"]["id"] for r in results) == sorted(names)
    assert env.runc_ids() == sorted(names)
    assert len(shim_processes(env.state_dir)) == 8
    results = run_in_interpreters([env.params(n, state="absent", stop_signal="KILL") for n in names],
                                  str(tmp_path / "go2"))
    assert all(r["changed"] and r["container"] == {} for r in results)
    for name in names:
        wait_for(lambda: not leftovers(env, name), timeout=5, what="nothing left of %s" % name)


def test_racing_running_and_absent_end_consistent(env, tmp_path):
    """Four runs want it running, four want it gone, all at once: every run succeeds, and what is
    left is exactly one of the two declared outcomes, with nothing half made."""
    bundle = env.bundle()
    name = rel_id(env, "mix")
    params = [env.params(name, bundle, state="running" if i % 2 else "absent", stop_signal="KILL")
              for i in range(8)]
    results = run_in_interpreters(params, str(tmp_path / "go"))
    for wanted, result in zip(params, results):
        if wanted["state"] == "absent":
            assert result["container"] == {}
        else:
            assert result["container"]["status"] == "running"
    if env.runc_ids():
        view = ContainerInfo({"state_dir": env.state_dir, "name": name}).run()["containers"]
        assert [c["status"] for c in view] == ["running"]
        assert shim_processes(env.state_dir, name) == [view[0]["shim_pid"]]
    else:
        assert not os.path.exists(os.path.join(env.state_dir, name))
        assert shim_processes(env.state_dir, name) == []
