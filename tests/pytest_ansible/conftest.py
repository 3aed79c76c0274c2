# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the pytest-ansible examples: real containers, driven through Ansible.

The modules run through pytest-ansible's fixtures (``localhost``, ``ansible_module``), so every call
goes through Ansible as a playbook task would: argument spec, AnsiballZ, the local connection. Each
test session gets its own work directory (state dir, runc ``--root``, bundles, checkpoints) and
container ids that start with ``pa-<pid>-`` (runc names cgroups after the id, so ids must be unique on
the host). The finalizer removes whatever the tests left, with runc itself, so that a broken module
cannot leave containers behind.

Nothing here skips: a missing runc, busybox or interpreter setting fails the session.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.dirname(os.path.dirname(HERE))
BUNDLE_TOOL = os.path.join(COLLECTION, "tests", "utils", "make_busybox_bundle.py")


def _load_proc_state():
    """tests/utils/proc_state.py: command lines read once there is one (not mid-execve)."""
    spec = importlib.util.spec_from_file_location(
        "proc_state", os.path.join(COLLECTION, "tests", "utils", "proc_state.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROC_STATE = _load_proc_state()


def _check_setup():
    problems = []
    if os.geteuid() != 0:
        problems.append("the examples run real containers: run them as root")
    if shutil.which("runc") is None:
        problems.append("runc is missing: run 'make setup'")
    interpreter = os.environ.get("ANSIBLE_PYTHON_INTERPRETER", "")
    if not (os.path.isabs(interpreter) and os.access(interpreter, os.X_OK)):
        # Interpreter discovery trips on this image's broken python3.13 shim (ENVIRONMENT.md).
        problems.append("set ANSIBLE_PYTHON_INTERPRETER to the venv's python (got %r)" % interpreter)
    if problems:
        pytest.exit("pytest-ansible examples cannot run: " + "; ".join(problems), returncode=2)


def _shims_under(root, hosts=False):
    """Pids of the shims that run from a state dir under ``root`` (their argv names it); with
    ``hosts``, of the shim hosts instead (``--host=<state_dir>``: idle ones linger 10 s, by design)."""
    pids = []
    for pid, argv in PROC_STATE.processes():
        if any(arg.startswith(root + os.sep) and "/.shim/shim-" in arg for arg in argv[1:6]):
            if any(arg.startswith("--host=") for arg in argv) == hosts:
                pids.append(pid)
    return pids


def _remove_leftovers(root):
    """Delete every container of the runc roots under ``root`` and kill the shims; what was left."""
    left = []
    for runtime_root in glob.glob(os.path.join(root, "runc")) + glob.glob(os.path.join(root, "*", "runc")):
        proc = subprocess.run(["runc", "--root", runtime_root, "list", "--quiet"],
                              capture_output=True, text=True, check=False)
        for name in proc.stdout.split():
            left.append(name)
            subprocess.run(["runc", "--root", runtime_root, "delete", "--force", name],
                           capture_output=True, check=False)
    for pid in _shims_under(root):
        left.append("shim %d" % pid)
        os.kill(pid, signal.SIGKILL)
    for pid in _shims_under(root, hosts=True):
        os.kill(pid, signal.SIGTERM)  # not a leftover: stopped rather than waited for
    return left


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    """The session's paths and id prefix, and a busybox bundle to build from; removes every
    container and shim of the session at the end.

    The inventory's hosts (inventory.ini) find their own directories under ``$OCI_PA_ROOT``, which
    is set here: ``<root>/<inventory_hostname>/{state,runc}``."""
    _check_setup()
    root = str(tmp_path_factory.mktemp("oci-pa"))
    paths = {
        "root": root,
        "state_dir": os.path.join(root, "state"),
        "runtime_root": os.path.join(root, "runc"),
        "checkpoint_dir": os.path.join(root, "checkpoints"),
        "busybox": os.path.join(root, "busybox"),
        "prefix": "pa-%d-" % os.getpid(),
    }
    os.environ["OCI_PA_ROOT"] = root
    subprocess.run([sys.executable, BUNDLE_TOOL, paths["busybox"]], check=True,
                   stdout=subprocess.DEVNULL)
    yield paths
    left = _remove_leftovers(root)
    if left:
        pytest.fail("the tests left containers behind (now removed): %s" % ", ".join(left))


@pytest.fixture(scope="session")
def runc_state(work):
    """``runc_state(name)``: ``runc state`` of a container of this session (a dict), or None when
    runc does not know it. Tests check the real world with it, not only the module's word."""
    def state(name):
        proc = subprocess.run(["runc", "--root", work["runtime_root"], "state", name],
                              capture_output=True, text=True, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    return state


@pytest.fixture(scope="session")
def oci(work):
    """The module arguments every oci.runtime module of this session takes."""
    return {"state_dir": work["state_dir"], "runtime_root": work["runtime_root"]}


@pytest.fixture
def module_path_of():
    """Where Ansible finds a module, so a test can prove that it runs this collection's copy (a copy
    in ~/.ansible/collections must not shadow it)."""
    from ansible.plugins.loader import module_loader

    def find(fqcn):
        found = module_loader.find_plugin_with_context(fqcn)
        return os.path.realpath(found.plugin_resolved_path) if found.resolved else None
    return find
