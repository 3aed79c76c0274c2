# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""layout.py: id rules, atomic writes, state-file readers, the per-container lock."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    LockTimeoutError,
    StateError,
)


# --- validate_id ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "a",
    "web",
    "Web-01",
    "a.b_c-d",
    "a..b",          # dots inside are fine: it is no path component of its own
    "0",
    "9abc",
    "a" * 128,
])
def test_validate_id_accepts(value):
    assert L.validate_id(value) == value
    assert L.is_valid_id(value)


@pytest.mark.parametrize("value", [
    "",
    "..",
    ".",
    ".hidden",
    "-a",
    "_a",
    "a/b",
    "../etc",
    "/abs",
    "a b",
    " a",
    "a\tb",
    "a\x00b",
    "é",
    "caf\u00e9",
    "\u0430bc",     # Cyrillic a
    "a" * 129,
    "a:b",
    "a*",
])
def test_validate_id_rejects(value):
    with pytest.raises(InvalidIdError):
        L.validate_id(value)
    assert not L.is_valid_id(value)


@pytest.mark.parametrize("value", ["abc\n", "abc\r\n", "a\nb"])
def test_validate_id_rejects_newlines(value):
    """A trailing newline must not pass (a regex ``$`` matches before a final newline)."""
    with pytest.raises(InvalidIdError):
        L.validate_id(value)
    assert not L.is_valid_id(value)


@pytest.mark.parametrize("value", [None, 12, b"abc", ["a"]])
def test_validate_id_rejects_non_strings(value):
    with pytest.raises(InvalidIdError):
        L.validate_id(value)
    assert not L.is_valid_id(value)


def test_validate_id_message_names_what_and_limit():
    with pytest.raises(InvalidIdError) as info:
        L.validate_id("b" * 129, "process id")
    assert "process id" in str(info.value)
    assert "129" in str(info.value) and "128" in str(info.value)
    with pytest.raises(InvalidIdError) as info:
        L.validate_id("a/b", "container name")
    assert "container name" in str(info.value) and "'a/b'" in str(info.value)


def test_layout_paths(tmp_path):
    layout = L.Layout(str(tmp_path) + "/state/")
    assert layout.state_dir == str(tmp_path / "state")
    assert layout.container_dir("c1") == str(tmp_path / "state" / "c1")
    assert layout.state_file("c1") == str(tmp_path / "state" / "c1" / "state.json")
    assert layout.process_dir("c1", "init") == str(tmp_path / "state" / "c1" / "init")
    assert layout.lock_file("c1") == str(tmp_path / "state" / ".locks" / "c1.lock")
    with pytest.raises(InvalidIdError):
        layout.container_dir("../x")
    with pytest.raises(InvalidIdError):
        layout.process_dir("c1", "../x")
    assert not (tmp_path / "state").exists()  # creates nothing until asked


@pytest.mark.parametrize("value", ["", None, "relative/dir"])
def test_layout_needs_absolute_state_dir(value):
    with pytest.raises(StateError):
        L.Layout(value)


def test_container_ids(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    assert layout.container_ids() == []
    layout.ensure_state_dir()
    assert stat.S_IMODE(os.stat(layout.state_dir).st_mode) == 0o700
    for name in ("b", "a", "no-state", ".locks", "c\n"):
        os.makedirs(os.path.join(layout.state_dir, name))
    for name in ("a", "b", "c\n"):  # a dir whose name is no valid id is not a container
        L.atomic_write_json(os.path.join(layout.state_dir, name, L.STATE_FILE), {"bundle": "/x"})
    os.makedirs(os.path.join(layout.state_dir, ".locks", "x"))
    assert layout.container_ids() == ["a", "b"]


# --- make_private_dir / remove_tree ---------------------------------------------------------------

def test_make_private_dir_refuses_symlink(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(StateError):
        L.make_private_dir(str(link))


def test_make_private_dir_refuses_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(StateError):
        L.make_private_dir(str(path))


def test_remove_tree_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    (tree / "link-dir").symlink_to(outside)
    (tree / "sub" / "link-file").symlink_to(outside / "keep")
    L.make_fifo(str(tree / "fifo"))
    L.remove_tree(str(tree))
    assert not tree.exists()
    assert (outside / "keep").read_text() == "keep"
    L.remove_tree(str(tree))  # absent: no error


# --- atomic_write ---------------------------------------------------------------------------------

def test_atomic_write_mode_and_content(tmp_path):
    path = tmp_path / "f"
    L.atomic_write(str(path), "héllo")
    assert path.read_bytes() == "héllo".encode("utf-8")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    L.atomic_write(str(path), b"\x00\x01", mode=0o640)
    assert path.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_atomic_write_mode_ignores_umask(tmp_path):
    old = os.umask(0o077)
    try:
        L.atomic_write(str(tmp_path / "f"), "x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644


def test_atomic_write_replaces_symlink_instead_of_following(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("original")
    link = tmp_path / "f"
    link.symlink_to(victim)
    L.atomic_write(str(link), "new")
    assert victim.read_text() == "original"
    assert not link.is_symlink() and link.read_text() == "new"


def test_atomic_write_missing_dir(tmp_path):
    path = tmp_path / "missing" / "f"
    with pytest.raises(StateError) as info:
        L.atomic_write(str(path), "x")
    assert str(path) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_leaves_no_temp(tmp_path):
    # The rename fails (the target is a non-empty directory): the temp file must be gone.
    target = tmp_path / "f"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(StateError) as info:
        L.atomic_write(str(target), "data")
    assert str(target) in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["f"]
    assert os.listdir(target) == ["inside"]


def test_atomic_write_json_round_trip(tmp_path):
    path = str(tmp_path / "state.json")
    L.atomic_write_json(path, {"b": 1, "a": [1, "x"]})
    assert L.read_json(path) == {"b": 1, "a": [1, "x"]}
    assert open(path).read().endswith("\n")


# --- readers --------------------------------------------------------------------------------------

def test_read_text_default_when_missing(tmp_path):
    assert L.read_text(str(tmp_path / "nope")) is None
    assert L.read_text(str(tmp_path / "nope"), "d") == "d"


def test_read_text_refuses_symlink(tmp_path):
    real = tmp_path / "real"
    real.write_text("secret")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(StateError) as info:
        L.read_text(str(link))
    assert "symlink" in str(info.value) and str(link) in str(info.value)


def test_read_text_refuses_dangling_symlink(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(StateError):
        L.read_text(str(link))


def test_read_text_invalid_utf8_is_replaced(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"ok\xff")
    assert L.read_text(str(path)) == "ok\ufffd"


def test_read_json_invalid_names_path(tmp_path):
    path = tmp_path / "c1" / "state.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(StateError) as info:
        L.read_json(str(path))
    assert str(path) in str(info.value)
    assert str(path.parent) in str(info.value)  # tells the user what to remove


def test_read_json_missing_and_default(tmp_path):
    assert L.read_json(str(tmp_path / "x")) is None
    assert L.read_json(str(tmp_path / "x"), {}) == {}


@pytest.mark.parametrize("text,expected", [
    ("42\n", 42),
    ("  7 ", 7),
    ("0", 0),
    ("-3", -3),
    ("12 345\n", 12),   # shim.pid: "<pid> <starttime>"
])
def test_read_int(tmp_path, text, expected):
    path = tmp_path / "n"
    path.write_text(text)
    assert L.read_int(str(path)) == expected


@pytest.mark.parametrize("text", ["", "\n", "abc", "4x2", "1.5", "None"])
def test_read_int_garbage(tmp_path, text):
    path = tmp_path / "n"
    path.write_text(text)
    with pytest.raises(StateError) as info:
        L.read_int(str(path))
    assert str(path) in str(info.value)


def test_read_int_missing(tmp_path):
    assert L.read_int(str(tmp_path / "n")) is None


def test_make_fifo(tmp_path):
    path = str(tmp_path / "fifo")
    L.make_fifo(path)
    L.make_fifo(path)  # exists: fine
    st = os.lstat(path)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077 == 0
    with pytest.raises(StateError):
        L.make_fifo(str(tmp_path / "missing" / "fifo"))


# --- ContainerLock --------------------------------------------------------------------------------

def _hold_lock(state_dir, container_id, ready, release):
    layout = L.Layout(state_dir)
    with L.ContainerLock(layout, container_id, timeout=5):
        ready.set()
        release.wait(30)


@pytest.fixture
def lock_holder(tmp_path):
    """Start a separate process holding the lock of container 'c1' until the test ends."""
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), "c1", ready, release))
    proc.start()
    try:
        assert ready.wait(10), "the lock holder did not get the lock"
        yield release
    finally:
        release.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_lock_second_holder_times_out(tmp_path, lock_holder):
    layout = L.Layout(str(tmp_path))
    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as info:
        with L.ContainerLock(layout, "c1", timeout=0.2):
            pytest.fail("got a lock that another process holds")
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 5
    assert "c1" in str(info.value)
    # Another container's lock is independent.
    with L.ContainerLock(layout, "c2", timeout=0.2):
        pass


def test_lock_is_free_after_holder_releases(tmp_path, lock_holder):
    layout = L.Layout(str(tmp_path))
    lock_holder.set()
    with L.ContainerLock(layout, "c1", timeout=10):
        pass


def test_lock_reentry_and_file_kept_while_container_exists(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    os.makedirs(layout.container_dir("c1"))
    lock = L.ContainerLock(layout, "c1", timeout=0.1)
    with lock:
        # The same container locked again from a second open file (a second run) must wait.
        with pytest.raises(LockTimeoutError):
            with L.ContainerLock(layout, "c1", timeout=0.05):
                pass
    with lock:
        pass
    assert os.path.exists(layout.lock_file("c1"))
    assert stat.S_IMODE(os.stat(os.path.dirname(layout.lock_file("c1"))).st_mode) == 0o700


def test_lock_file_removed_when_container_is_gone(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    with L.ContainerLock(layout, "c1", timeout=1):
        os.makedirs(layout.container_dir("c1"))  # created under the lock: the file stays
    assert os.path.exists(layout.lock_file("c1"))
    with L.ContainerLock(layout, "c1", timeout=1):
        os.rmdir(layout.container_dir("c1"))  # removed under the lock: so does the file
    assert os.listdir(os.path.dirname(layout.lock_file("c1"))) == []
    with L.ContainerLock(layout, "c1", timeout=1):
        pass  # never created (a refused create, an absent container): nothing left either
    assert os.listdir(os.path.dirname(layout.lock_file("c1"))) == []


def test_lock_file_removed_even_when_the_block_raises(tmp_path):
    layout = L.Layout(str(tmp_path / "state"))
    with pytest.raises(ValueError):
        with L.ContainerLock(layout, "c1", timeout=1):
            raise ValueError("refused")
    assert os.listdir(os.path.dirname(layout.lock_file("c1"))) == []


def test_lock_retries_when_its_file_was_unlinked_while_waiting(tmp_path, monkeypatch):
    """A run that opened the file just before its holder unlinked it must not stay on that file."""
    layout = L.Layout(str(tmp_path / "state"))
    path = layout.lock_file("c1")
    real_flock_within = L.flock_within
    calls = []

    def flock_then_holder_unlinks(fd, *args, **kwargs):
        real_flock_within(fd, *args, **kwargs)
        calls.append(os.fstat(fd).st_ino)
        if len(calls) == 1:
            os.unlink(path)  # what the previous holder did between our open and our flock
            # and a third run already opened and locked the new file at the path
            holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            L.fcntl.flock(holder, L.fcntl.LOCK_EX)
            os.close(holder)

    monkeypatch.setattr(L, "flock_within", flock_then_holder_unlinks)
    with L.ContainerLock(layout, "c1", timeout=1) as lock:
        held = os.fstat(lock._fd)
        current = os.stat(path)
        assert (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)
    assert len(calls) == 2 and calls[0] != calls[1]


def test_lock_retry_keeps_one_deadline(tmp_path, monkeypatch):
    """The file keeps being swapped under the waiting run: it gives up after ``timeout`` in all."""
    layout = L.Layout(str(tmp_path / "state"))
    path = layout.lock_file("c1")
    real_flock_within = L.flock_within
    timeouts = []

    def flock_then_swap(fd, path_, timeout, *args, **kwargs):
        timeouts.append(timeout)
        real_flock_within(fd, path_, timeout, *args, **kwargs)
        os.unlink(path)
        time.sleep(0.01)

    monkeypatch.setattr(L, "flock_within", flock_then_swap)
    started = time.monotonic()
    with pytest.raises(LockTimeoutError):
        with L.ContainerLock(layout, "c1", timeout=0.2):
            pytest.fail("held a lock file that is no longer at its path")
    assert time.monotonic() - started < 2
    assert len(timeouts) > 1 and timeouts == sorted(timeouts, reverse=True)


def _converge_and_remove(state_dir, rounds, holders, overlaps):
    layout = L.Layout(state_dir)
    for i in range(rounds):
        with L.ContainerLock(layout, "c1", timeout=30):
            with holders.get_lock():
                holders.value += 1
                if holders.value != 1:
                    overlaps.value += 1
            os.makedirs(layout.container_dir("c1"), exist_ok=True)  # converged
            if i % 2 == 0:
                os.rmdir(layout.container_dir("c1"))  # removed: the lock file goes on release
            with holders.get_lock():
                holders.value -= 1


def test_lock_never_has_two_holders_while_files_come_and_go(tmp_path):
    ctx = multiprocessing.get_context("fork")
    holders, overlaps = ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [ctx.Process(target=_converge_and_remove, args=(str(tmp_path), 150, holders, overlaps))
             for dummy in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert overlaps.value == 0
    # the last holder leaves the container existing or not; the lock file exists exactly when it does
    assert os.path.exists(L.Layout(str(tmp_path)).lock_file("c1")) \
        == os.path.isdir(os.path.join(str(tmp_path), "c1"))


def test_lock_validates_id(tmp_path):
    with pytest.raises(InvalidIdError):
        L.ContainerLock(L.Layout(str(tmp_path)), "../evil")
