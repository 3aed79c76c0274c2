# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, property-tested with hypothesis: whatever a task passes, the parsers and convergers
either accept it (and then it is safe) or raise one of the core's own errors with a message;
never another exception (a traceback in Ansible's output). Archive members never land outside the
root filesystem. Example counts are kept small so the file runs in seconds."""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import tarfile
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import CheckpointConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.process import ProcessConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.resource_update import ResourceConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.archive import RootfsWriter
from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import parse_signal
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    InvalidValueError,
    RuntimeCoreError,
)

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
STATE_DIR = "/nonexistent/oci-runtime-properties"  # nothing here touches the disk

# Text that looks like what people (and attackers) put in ids and paths.
PATH_PIECES = st.sampled_from(["..", ".", "", "a", "b-1", "/", "\x00", "é", "\u202e", " ", "-x",
                               "x" * 130, "..\\", "%2e%2e", "\n", "~", "*", "ｃ"])
ID_TEXT = st.one_of(st.text(max_size=140), st.lists(PATH_PIECES, max_size=5).map("/".join),
                    st.lists(PATH_PIECES, max_size=4).map("".join))
# Mostly valid values, so that the checks after the first one are reached too.
GOOD_ID = st.one_of(st.sampled_from(["web", "a", "db-1", "x.y", "A_b"]), ID_TEXT)
GOOD_SIGNAL = st.one_of(st.sampled_from(["SIGTERM", "KILL", "9", "hup"]), st.text(max_size=12),
                        st.integers().map(str))
ANY_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))


def core_error_or(func):
    """Run func(); return (True, value) or (False, error) for a core error; re-raise anything else
    (the property fails with the foreign exception)."""
    try:
        return True, func()
    except RuntimeCoreError as exc:
        assert str(exc).strip(), "a core error without a message"
        return False, exc


# --- ids and names ------------------------------------------------------------------------------------

@SETTINGS
@given(ID_TEXT)
def test_ids_are_accepted_only_when_they_stay_in_the_state_dir(value):
    ok, result = core_error_or(lambda: L.validate_id(value))
    if not ok:
        assert isinstance(result, InvalidIdError)
        return
    assert result == value and value not in (".", "..") and len(value) <= L.MAX_ID_LENGTH
    assert value.isascii() and "/" not in value and "\x00" not in value and not value.startswith("-")
    path = L.Layout(STATE_DIR).container_dir(value)
    assert os.path.dirname(path) == STATE_DIR and os.path.normpath(path) == path


def _container_params(**values):
    params = {
        "name": "c", "bundle": None, "state": "running", "state_dir": STATE_DIR, "runtime": None,
        "runtime_root": None, "runtime_args": None, "labels": None, "stdin": None, "stdout": None,
        "stderr": None, "no_pivot_root": None, "start_timeout": 30.0, "stop_timeout": 10.0,
        "stop_signal": "SIGTERM", "force_recreate": False,
    }
    params.update(values)
    return params


def _one_bad_field(fields):
    """Options with one to three fields drawn from ``fields`` (the others keep good values), so that
    each check is reached with the others passing."""
    return st.lists(st.one_of([st.fixed_dictionaries({k: v}) for k, v in fields.items()]),
                    min_size=1, max_size=3).map(lambda ds: {k: v for d in ds for k, v in d.items()})


CONTAINER_FIELDS = _one_bad_field({
    "name": ID_TEXT, "stop_signal": GOOD_SIGNAL, "start_timeout": st.floats(),
    "stop_timeout": st.floats(), "stdout": ID_TEXT,
    "labels": st.dictionaries(st.text(max_size=8), ANY_SCALAR, max_size=3),
})


@SETTINGS
@given(CONTAINER_FIELDS)
def test_container_options_are_checked_before_anything_runs(values):
    params = _container_params(**values)
    ok, dummy = core_error_or(lambda: ContainerConverger(params))
    if ok:
        L.validate_id(params["name"])
        assert 0 < parse_signal(params["stop_signal"]) < signal.NSIG
        for key in ("start_timeout", "stop_timeout"):
            assert math.isfinite(params[key]) and params[key] >= 0, params
        assert not params["stdout"] or os.path.isabs(params["stdout"])
        for key, value in (params["labels"] or {}).items():
            assert key and "=" not in key and value is not None


@SETTINGS
@given(st.one_of(st.text(max_size=16), st.integers(), st.sampled_from(
    ["TERM", "sigkill", " 9 ", "SIG_DFL", "SIG_IGN", "NSIG", "0", "65", "SIGRTMIN", "Signals",
     "١٥", "SIGTERM\x00", "term\n"])))
def test_signals_parse_to_a_number_or_a_clear_error(value):
    ok, result = core_error_or(lambda: parse_signal(value))
    if ok:
        assert isinstance(result, int) and 0 < result < signal.NSIG
    else:
        assert isinstance(result, InvalidValueError) and isinstance(result, ValueError)


PROCESS_FIELDS = _one_bad_field({
    "container": ID_TEXT, "id": ID_TEXT, "user": st.text(max_size=12), "signal": GOOD_SIGNAL,
    "timeout": st.floats(), "start_timeout": st.floats(), "cwd": ID_TEXT,
})


@SETTINGS
@given(PROCESS_FIELDS)
def test_process_options_are_checked(values):
    params = {
        "state_dir": STATE_DIR, "runtime": None, "runtime_root": None, "container": "web",
        "id": "job", "args": ["true"], "env": None, "cwd": None, "user": None, "stdin": None,
        "stdout": None, "stderr": None, "state": "exited", "timeout": None,
        "start_timeout": 30.0, "signal": None,
    }
    params.update(values)
    ok, dummy = core_error_or(lambda: ProcessConverger(params))
    if ok:
        for key in ("timeout", "start_timeout"):
            assert params[key] is None or (math.isfinite(params[key]) and params[key] >= 0), params
        assert params["id"] != L.INIT_PROCESS_ID
        assert not params["cwd"] or os.path.isabs(params["cwd"])


@SETTINGS
@given(container=GOOD_ID, name=GOOD_ID, directory=st.one_of(st.none(), ID_TEXT),
       start_timeout=st.one_of(st.just(60.0), st.floats()))
def test_checkpoint_names_are_checked(container, name, directory, start_timeout):
    params = {"state_dir": STATE_DIR, "container": container, "name": name,
              "checkpoint_dir": directory, "state": "present", "start_timeout": start_timeout}
    ok, converger = core_error_or(lambda: CheckpointConverger(params))
    if ok:
        assert math.isfinite(start_timeout) and start_timeout >= 0
        path = converger.store.path(name)
        assert os.path.dirname(path) == converger.store.directory


# --- sizes and cpusets ----------------------------------------------------------------------------------

SIZE_TEXT = st.one_of(
    ANY_SCALAR,
    st.text(alphabet="0123456789.-kKmMgGtTpPiIbB e", max_size=12),
    st.integers(min_value=1, max_value=500).map(lambda n: "9" * n + "k"),
    st.sampled_from(["1.5g", "0", "-1", "-2", "512KiB", "1Gi", "1e3", "1.5", "inf", "nan",
                     "٣m", "1_000", "0x10"]))
CPUSET_TEXT = st.one_of(ANY_SCALAR, st.text(alphabet="0123456789,- x", max_size=10),
                        st.sampled_from(["0", "0-1", "1-0", "0,,1", "-1", "0-", "99999999999999"]))


@SETTINGS
@given(memory=SIZE_TEXT, swap=SIZE_TEXT, cpus=CPUSET_TEXT, mems=CPUSET_TEXT,
       shares=st.one_of(st.none(), st.integers(), st.text(max_size=6)))
def test_limits_parse_or_fail_clearly(memory, swap, cpus, mems, shares):
    params = {"state_dir": STATE_DIR, "container": "c", "memory": memory, "memory_swap": swap,
              "cpuset_cpus": cpus, "cpuset_mems": mems, "cpu_shares": shares}
    ok, converger = core_error_or(lambda: ResourceConverger(params))
    if ok:
        for field in ("memory", "memory_swap"):
            value = converger.request.get(field)
            assert value is None or value == -1 or value > 0


# --- archive members --------------------------------------------------------------------------------------

MEMBER_PATH = st.lists(st.sampled_from(["..", ".", "a", "b", "etc", "", "lnk"]), min_size=1,
                       max_size=4).map("/".join)
LINK_TARGET = st.one_of(MEMBER_PATH, MEMBER_PATH.map(lambda p: "/" + p),
                        st.sampled_from(["/", "..", "../..", "/etc", "../outside", "/../outside"]))
MEMBER = st.tuples(st.sampled_from(["file", "dir", "sym", "link", "chr"]), MEMBER_PATH, LINK_TARGET)


def _tarinfo(kind, name, target):
    info = tarfile.TarInfo(name)
    info.mode = 0o755 if kind == "dir" else 0o644
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                 "link": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE}[kind]
    if kind in ("sym", "link"):
        info.linkname = target
    if kind == "file":
        info.size = 4
    if kind == "chr":
        info.devmajor, info.devminor = 1, 3
    return info


def _snapshot(top, skip):
    found = {}
    for root, dirs, files in os.walk(top):
        if root == skip or root.startswith(skip + os.sep):
            continue
        for name in dirs + files:
            path = os.path.join(root, name)
            if path == skip:
                continue  # the rootfs itself: its own mtime changes as entries are written
            st_ = os.lstat(path)
            found[path] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return found


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MEMBER, min_size=1, max_size=6))
def test_archive_members_never_land_outside_the_root(members):
    sandbox = tempfile.mkdtemp(prefix="rel-archive-")
    try:
        root = os.path.join(sandbox, "rootfs")
        outside = os.path.join(sandbox, "outside")
        os.makedirs(os.path.join(root, "etc"))
        os.makedirs(outside)
        with open(os.path.join(outside, "secret"), "w") as handle:
            handle.write("keep")
        os.symlink("../outside", os.path.join(root, "lnk"))  # a hostile link already in the tree
        before = _snapshot(sandbox, root)
        writer = RootfsWriter(root)
        for kind, name, target in members:
            core_error_or(lambda: writer.add(_tarinfo(kind, name, target),
                                             lambda: io.BytesIO(b"data")))
        core_error_or(writer.finish)
        assert _snapshot(sandbox, root) == before, "something was written outside the rootfs"
        with open(os.path.join(outside, "secret")) as handle:
            assert handle.read() == "keep"
        for path in _snapshot(root, os.path.join(root, "\0")):
            mode = os.lstat(path).st_mode
            assert not (mode & 0o170000 in (0o020000, 0o060000)), "device node %s written" % path
    finally:
        shutil.rmtree(sandbox)
