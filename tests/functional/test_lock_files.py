# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lock files come and go with their containers (real runc): a name that is gone leaves nothing in
``<state_dir>/.locks``, and the lock still has one holder at a time while its file is removed and
made again."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from faults_helpers import leftovers, rel_id

from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError


def lock_files(env):
    try:
        return sorted(os.listdir(os.path.join(env.state_dir, L.LOCKS_DIR)))
    except FileNotFoundError:
        return []


def test_create_remove_cycle_leaves_no_lock_file(env):
    bundle = env.bundle()
    name = rel_id(env, "cycle")
    result = ContainerConverger(env.params(name, bundle)).run()
    assert result["container"]["status"] == "running"
    assert lock_files(env) == [name + ".lock"]  # kept while the container exists
    for state in ("paused", "stopped"):
        ContainerConverger(env.params(name, state=state, stop_signal="KILL")).run()
        assert lock_files(env) == [name + ".lock"]
    result = ContainerConverger(env.params(name, state="absent")).run()
    assert result["changed"] and result["container"] == {}
    assert lock_files(env) == []
    assert leftovers(env, name) == []
    # absent again (nothing to do) leaves nothing either
    assert ContainerConverger(env.params(name, state="absent")).run()["changed"] is False
    assert lock_files(env) == []


def _break_json(path):
    with open(os.path.join(path, "config.json"), "w") as handle:
        handle.write('{"ociVersion": "1.0.2", "process": ')


def test_refused_create_leaves_no_lock_file(env):
    bundle = env.bundle()
    _break_json(bundle)
    name = rel_id(env, "refused")
    with pytest.raises(RuntimeCoreError):
        ContainerConverger(env.params(name, bundle)).run()
    assert lock_files(env) == []
    assert leftovers(env, name) == []


def test_lock_file_stays_with_the_record_of_a_failed_start(env):
    """runc refuses the process: the container stays recorded (stopped), so its lock file stays
    until it is removed."""
    bundle = env.bundle("/no/such/program")
    name = rel_id(env, "nostart")
    with pytest.raises(RuntimeCoreError):
        ContainerConverger(env.params(name, bundle)).run()
    assert lock_files(env) == [name + ".lock"]
    assert ContainerConverger(env.params(name, state="absent")).run()["container"] == {}
    assert lock_files(env) == []
    assert leftovers(env, name) == []


# --- one holder at a time, while the file is removed and made again ------------------------------------

def _count_holders(holders, overlaps):
    """Wrap ContainerLock (in a worker process) so that every holder counts itself while it holds."""
    enter, leave = L.ContainerLock.__enter__, L.ContainerLock.__exit__

    def counted_enter(self):
        enter(self)
        with holders.get_lock():
            holders.value += 1
            if holders.value > 1:
                overlaps.value += 1
        return self

    def counted_exit(self, *exc_info):
        with holders.get_lock():
            holders.value -= 1
        return leave(self, *exc_info)

    L.ContainerLock.__enter__, L.ContainerLock.__exit__ = counted_enter, counted_exit


def _converge_and_remove(params, rounds, holders, overlaps, errors):
    _count_holders(holders, overlaps)
    for i in range(rounds):
        wanted = dict(params, state="absent" if (i + os.getpid()) % 2 else "running")
        try:
            result = ContainerConverger(wanted).run()
            if wanted["state"] == "absent" and result["container"] != {}:
                raise AssertionError("absent, but got %r" % result["container"])
            if wanted["state"] == "running" and result["container"]["status"] != "running":
                raise AssertionError("running, but got %r" % result["container"])
        except Exception as exc:  # pylint: disable=broad-except
            with errors.get_lock():
                errors.value += 1
            print("round %d (%s): %s: %s" % (i, wanted["state"], type(exc).__name__, exc))


def test_lock_has_one_holder_while_its_file_comes_and_goes(env):
    """Six processes alternately converge one name to running and to absent: every absent removes
    the lock file, every running makes it again, and the lock never has two holders at once."""
    bundle = env.bundle()
    name = rel_id(env, "race")
    params = env.params(name, bundle, stop_signal="KILL", stop_timeout=5.0)
    ctx = multiprocessing.get_context("fork")
    holders, overlaps, errors = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)
    workers = [ctx.Process(target=_converge_and_remove, args=(params, 8, holders, overlaps, errors))
               for dummy in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
        assert worker.exitcode == 0
    assert overlaps.value == 0
    assert errors.value == 0
    # the lock file exists exactly when the container does
    assert lock_files(env) == ([name + ".lock"] if os.path.isdir(os.path.join(env.state_dir, name)) else [])
    ContainerConverger(dict(params, state="absent")).run()
    assert lock_files(env) == []
    assert leftovers(env, name) == []
