# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the functional suite: the runtime core against the real runc, no mocks.

Every test gets its own state dir and runc ``--root`` under ``tmp_path`` and container ids that are
unique on the host (runc's cgroups are named after the id, and tests run in parallel with ``-n``).
The finalizer removes every container the test made (``runc delete --force``) and kills every shim
still watching one. A missing runc or busybox, or not being root, fails the tests: they never skip.

``ansible_collections.oci.runtime`` is resolved to this checkout by tests/utils/collection_path.py:
from a collection copy (``.../ansible_collections/oci/runtime``) its own collections root is used,
otherwise a temporary collections root linking to the checkout is put on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE_TOOL = os.path.join(REPO, "tests", "utils", "make_busybox_bundle.py")


def _timings_file():
    """build/functional-timings.json of the checkout, also when running from its collection copy
    (``<checkout>/build/collections/ansible_collections/oci/runtime``, which the test runner resyncs)."""
    marker = os.sep + os.path.join("build", "collections", "ansible_collections", "oci", "runtime")
    checkout = REPO[:-len(marker)] if REPO.endswith(marker) else REPO
    return os.environ.get("OCI_RUNTIME_TIMINGS_FILE") or os.path.join(checkout, "build", "functional-timings.json")


TIMINGS_FILE = _timings_file()


def load_util(name):
    """A module of tests/utils (they are scripts, not a package)."""
    path = os.path.join(REPO, "tests", "utils", name + ".py")
    if not os.path.isfile(path):
        raise RuntimeError("%s is missing" % path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COLLECTIONS_ROOT = load_util("collection_path").make_importable(REPO)

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import Container  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.shim import process_start_time  # noqa: E402


def _load_bundle_tool():
    return load_util("make_busybox_bundle")


# --- preconditions: fail, never skip ------------------------------------------------------------------

def _preconditions():
    problems = []
    if os.geteuid() != 0:
        problems.append("the functional tests run real containers and need root")
    runc = shutil.which("runc") or ("/usr/sbin/runc" if os.access("/usr/sbin/runc", os.X_OK) else None)
    if not runc:
        problems.append("runc is not installed (apt-get install runc, or make setup)")
    else:
        try:
            subprocess.run([runc, "--version"], check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            problems.append("%s --version failed: %s" % (runc, exc))
    if not os.access("/bin/busybox", os.X_OK):
        problems.append("/bin/busybox is missing (apt-get install busybox-static, or make setup)")
    try:
        tool = _load_bundle_tool()
        tool._check_static(tool.BUSYBOX)  # pylint: disable=protected-access
    except Exception as exc:  # pylint: disable=broad-except
        problems.append("cannot build busybox bundles: %s" % exc)
        tool = None
    return runc, tool, problems


RUNC, BUNDLE_TOOL_MODULE, PROBLEMS = _preconditions()


@pytest.fixture(autouse=True)
def _require_runc_and_busybox():
    if PROBLEMS:
        pytest.fail("functional tests cannot run: " + "; ".join(PROBLEMS), pytrace=False)


# --- helpers -------------------------------------------------------------------------------------

_COUNTER = itertools.count()


def unique_id(label):
    """A container id no other test (or xdist worker) on this host uses."""
    return "ft-%d-%d-%s" % (os.getpid(), next(_COUNTER), label)


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# ``read_cmdline(pid)``: argv, None when gone; never the empty read of a process caught in execve
# (tests/utils/proc_state.py). Every reader of another process's command line goes through it;
# ``processes()``: (pid, argv) of every process that has a command line, read the same way.
_PROC_STATE = load_util("proc_state")
read_cmdline, processes = _PROC_STATE.read_cmdline, _PROC_STATE.processes


def wait_exec(pid, timeout=10.0):
    """Wait until ``pid`` has left ``runc init``: `runc start` returns once the process *may* exec,
    and until it does it still holds runc's own fds (the exec fifo, log and sync pipes)."""
    def execed():
        argv = read_cmdline(pid)
        # runc re-executes itself as "<path it was run by> init": compare the program's base name.
        in_runc_init = not argv or (os.path.basename(argv[0]) in ("runc", "crun") and argv[1:2] == ["init"])
        return not in_runc_init and argv

    return wait_for(execed, timeout=timeout, what="pid %d to exec its process" % pid)


def shim_processes(state_dir, container_id=None):
    """Pids of live (non-zombie) shims started for ``state_dir`` (and ``container_id``)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = read_cmdline(int(name))
        if not argv or len(argv) < 5:
            continue
        script = [a for a in argv if os.path.basename(a).startswith("shim-") and a.endswith(".py")]
        if not script or state_dir not in argv:
            continue
        if container_id is not None and container_id not in argv:
            continue
        if process_start_time(int(name)) is None:
            continue  # a zombie waiting for pid 1
        found.append(int(name))
    return sorted(found)


def shim_hosts(state_dir):
    """Pids of live shim hosts serving ``state_dir`` (``... shim-*.py --host=<state_dir> --pad=...``)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            argv = read_cmdline(int(name)) or []
            if "--host=" + state_dir in argv and process_start_time(int(name)) is not None:
                found.append(int(name))
    return sorted(found)


def open_fds():
    return sorted(os.listdir("/proc/self/fd"))


class Env(object):
    """One test's state dir, runc root, bundles and containers."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.state_dir = str(tmp_path / "state")
        self.runtime_root = str(tmp_path / "runc-root")
        self.layout = L.Layout(self.state_dir)
        self.runtime = OciRuntime(RUNC, root=self.runtime_root)
        self.ids = []
        self._bundles = itertools.count()

    # bundles
    def bundle(self, *args, edit=None):
        """A busybox bundle running ``args`` (default: sleep 3600); ``edit(config)`` changes config.json."""
        dest = str(self.tmp_path / ("bundle-%d" % next(self._bundles)))
        BUNDLE_TOOL_MODULE.build_bundle(dest, args=list(args) if args else None)
        if edit is not None:
            path = os.path.join(dest, "config.json")
            with open(path) as handle:
                config = json.load(handle)
            edit(config)
            with open(path, "w") as handle:
                json.dump(config, handle, indent="\t")
        return dest

    # containers
    def new_id(self, label="c"):
        container_id = unique_id(label)
        self.ids.append(container_id)
        return container_id

    def register(self, bundle, label="c", **kwargs):
        return Container.register(self.layout, self.runtime, self.new_id(label), bundle, **kwargs)

    def run(self, bundle, label="c", timeout=30, **kwargs):
        container = self.register(bundle, label, **kwargs)
        container.create(timeout)
        container.start()
        return container

    def load(self, container_id):
        return Container.load(self.layout, container_id)

    def runc(self, *args, check=True):
        return subprocess.run([RUNC, "--root", self.runtime_root] + list(args), capture_output=True,
                              text=True, timeout=60, check=check)

    def runc_state(self, container_id):
        proc = self.runc("state", container_id, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def runc_ids(self):
        proc = self.runc("list", "--format", "json", check=False)
        return sorted(c["id"] for c in (json.loads(proc.stdout or "null") or []))

    def params(self, name, bundle=None, **overrides):
        """Parameters of the container module for ContainerConverger."""
        params = {
            "name": name, "bundle": bundle, "state": "running", "state_dir": self.state_dir,
            "runtime": RUNC, "runtime_root": self.runtime_root, "runtime_args": [], "labels": None,
            "stdin": None, "stdout": None, "stderr": None, "no_pivot_root": False,
            "start_timeout": 30.0, "stop_timeout": 5.0, "stop_signal": "SIGTERM", "force_recreate": False,
        }
        params.update(overrides)
        return params

    def cleanup(self):
        """Delete every runc container under our root and kill every shim of our state dir."""
        problems = []
        for container_id in set(self.runc_ids()) | set(self.ids):
            proc = self.runc("delete", "--force", container_id, check=False)
            if proc.returncode != 0 and "does not exist" not in (proc.stderr + proc.stdout):
                problems.append("runc delete --force %s: %s" % (container_id, proc.stderr.strip()))
        for pid in shim_processes(self.state_dir) + shim_hosts(self.state_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return problems


@pytest.fixture
def env(tmp_path):
    environment = Env(tmp_path)
    yield environment
    problems = environment.cleanup()
    assert not problems, problems


# --- timings: written by the benchmark test, shown in the terminal summary -----------------------------

_SESSION_START = time.time()


def pytest_terminal_summary(terminalreporter):
    try:
        if os.stat(TIMINGS_FILE).st_mtime < _SESSION_START:
            return
        with open(TIMINGS_FILE) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return
    terminalreporter.section("create+start timings (medians of %d runs)" % data["repetitions"])
    for line in data["lines"]:
        terminalreporter.write_line(line)
    terminalreporter.write_line("(also in %s)" % TIMINGS_FILE)
