# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-disk layout of the runtime core: names, paths, id rules, atomic writes and locks.

::

    <state_dir>/<container-id>/state.json          the container's record (record.py)
    <state_dir>/<container-id>/<process-id>/        process.json, pid, starttime, exitStatus,
                                                    exit and control fifos, shim.pid, logs
    <state_dir>/.locks/<container-id>.lock          per-container flock (outside the container
                                                    dir; removed by its holder once that is gone)
    <state_dir>/.shim/shim-<digest>.py               the shim program the shims run from
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from typing import TYPE_CHECKING

from .errors import InvalidIdError, LockTimeoutError, StateError

if TYPE_CHECKING:
    from collections.abc import Container
    from typing import Any, Literal

    from .errors import RuntimeCoreError

# File names in a container's and a process's directory (shim.py keeps copies of the process ones).
EXIT_FILE = "exit"
EXIT_STATUS_FILE = "exitStatus"
STATE_FILE = "state.json"
CONTROL_FILE = "control"
INIT_PROCESS_ID = "init"
PROCESS_FILE = "process.json"
PID_FILE = "pid"
START_TIME_FILE = "starttime"
SHIM_PID_FILE = "shim.pid"
RUNTIME_LOG_FILE = "runtime.log"
LAUNCH_FILE = "launch.json"

LOCKS_DIR = ".locks"
SHIM_DIR = ".shim"

SCHEMA_VERSION = 1
MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH \
        and _ID_RE.fullmatch(value) is not None


def validate_id(value: object, what: str = "container id") -> str:
    """Return ``value`` if it is a safe id (what runc accepts, no path tricks), else raise."""
    if not isinstance(value, str) or value == "":
        raise InvalidIdError("%s must be a non-empty string" % what)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError("%s %r is %d characters long; at most %d are allowed"
                             % (what, value[:20] + "...", len(value), MAX_ID_LENGTH))
    if not _ID_RE.fullmatch(value):
        raise InvalidIdError(
            "%s %r is not valid: use letters, digits, '_', '.' and '-', starting with a letter "
            "or digit (pattern %s)" % (what, value, _ID_RE.pattern))
    return value


class Layout(object):
    """Paths under one state directory. Creates nothing until asked."""

    def __init__(self, state_dir: str) -> None:
        if not state_dir or not os.path.isabs(state_dir):
            raise StateError("state_dir must be an absolute path, got %r" % (state_dir,))
        self.state_dir = os.path.normpath(state_dir)

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.state_dir, validate_id(container_id))

    def state_file(self, container_id: str) -> str:
        return os.path.join(self.container_dir(container_id), STATE_FILE)

    def process_dir(self, container_id: str, process_id: str) -> str:
        return os.path.join(self.container_dir(container_id),
                            validate_id(process_id, "process id"))

    def lock_file(self, container_id: str) -> str:
        return os.path.join(self.state_dir, LOCKS_DIR, validate_id(container_id) + ".lock")

    def shim_dir(self) -> str:
        return os.path.join(self.state_dir, SHIM_DIR)

    def ensure_state_dir(self) -> None:
        make_private_dir(self.state_dir)

    def container_ids(self) -> list[str]:
        """Ids of the containers recorded here (directories holding a state.json)."""
        try:
            names = os.listdir(self.state_dir)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return []
            raise StateError("cannot list state_dir %s: %s" % (self.state_dir, exc.strerror))
        return sorted(n for n in names if is_valid_id(n)
                      and not os.path.islink(os.path.join(self.state_dir, n))
                      and os.path.isfile(os.path.join(self.state_dir, n, STATE_FILE)))


def make_private_dir(path: str) -> str:
    """mkdir -p with mode 0700 for every directory it creates (os.makedirs would give the missing
    parents the umask's mode); refuses a symlink where the directory should be."""
    missing = []
    current = os.path.normpath(path)
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise StateError("cannot create directory %s: %s" % (directory, exc.strerror))
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise StateError("cannot create directory %s: %s" % (path, exc.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise StateError("%s exists and is not a directory%s; refusing to use it"
                         % (path, " (a symlink)" if stat.S_ISLNK(st.st_mode) else ""))
    return path


def make_tree_private(path: str) -> None:
    """Directories 0700 and files 0600 below ``path`` (what CRIU and runc create follows the
    umask); symlinks are left alone, never followed."""
    for root, dirs, files in os.walk(path):
        for name, mode in [(d, 0o700) for d in dirs] + [(f, 0o600) for f in files]:
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
                if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                    os.chmod(full, mode)
            except OSError:
                pass


def atomic_write(path: str, data: str | bytes, mode: int = 0o600) -> None:
    """Write bytes or text to ``path`` via a temp file in the same dir, fsync and rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    except OSError as exc:
        raise StateError("cannot write %s: %s" % (path, exc.strerror))
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise StateError("cannot write %s: %s" % (path, exc.strerror))


def atomic_write_json(path: str, obj: object) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_text(path: str, default: str | None = None) -> str | None:
    """The file's text, or ``default`` when it does not exist. Never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return default
        if exc.errno == errno.ELOOP:
            raise StateError("%s is a symlink; refusing to follow it" % path)
        raise StateError("cannot read %s: %s" % (path, exc.strerror))
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def read_json(path: str, default: Any = None) -> Any:
    """Parsed JSON of a state file, or ``default`` when it does not exist."""
    text = read_text(path)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StateError("%s is not valid JSON (%s)" % (path, exc), path=path)


def read_int(path: str) -> int | None:
    """An integer file (pid, exitStatus), None when absent; StateError when it is garbage."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        raise StateError("%s does not hold an integer: %r" % (path, text[:40]), path=path)


def make_fifo(path: str) -> None:
    try:
        os.mkfifo(path, 0o600)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise StateError("cannot create fifo %s: %s" % (path, exc.strerror))


def _real_dir_or_unlink(path: str) -> bool:
    """True when ``path`` is a directory itself (not a symlink to one). Anything else there (a file,
    a symlink planted in its place) is unlinked; nothing there is fine."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        _unlink_quietly(path)
        return False
    return True


def remove_tree(path: str) -> None:
    """rm -rf that never follows symlinks out of the tree."""
    if not _real_dir_or_unlink(path):
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            _unlink_quietly(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            if os.path.islink(full):
                _unlink_quietly(full)
            else:
                try:
                    os.rmdir(full)
                except OSError:
                    pass
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise StateError("cannot remove %s: %s" % (path, exc.strerror))


def clear_dir(path: str, keep: Container[str] = ()) -> None:
    """Remove everything in ``path`` except the entries named in ``keep`` (no symlink followed: a
    symlink in place of ``path`` is removed, not listed, and kept entries must be regular files)."""
    if not _real_dir_or_unlink(path):
        return
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        full = os.path.join(path, name)
        if name not in keep or not os.path.isfile(full) or os.path.islink(full):
            remove_tree(full)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def flock_within(fd: int, path: str, timeout: float, error_class: type[RuntimeCoreError],
                 busy_message: str, max_delay: float = 0.1) -> None:
    """Take an exclusive flock on ``fd`` (open on ``path``) within ``timeout`` seconds, or close
    ``fd`` and raise: ``error_class`` when locking itself fails, LockTimeoutError(``busy_message``)
    when another holder keeps it."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise error_class("cannot lock %s: %s" % (path, exc.strerror))
        if time.monotonic() >= deadline:
            os.close(fd)
            raise LockTimeoutError(busy_message)
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


class ContainerLock(object):
    """An exclusive flock per container id, so concurrent runs cannot interleave.

    The lock file lives in ``<state_dir>/.locks``, outside the container dir. Its holder removes it
    on release when the container is gone (no ``<state_dir>/<id>`` left), so names used once leave
    nothing behind. A run that opened the file just before that holder unlinked it would lock a file
    no one else can reach: so every run, once it has the flock, checks that the file it holds is
    still the one at the path (same device and inode) and starts over if it is not. Only a holder
    unlinks, so the file at the path is always the one whose flock counts.
    """

    def __init__(self, layout: Layout, container_id: str, timeout: float = 120.0) -> None:
        self.path = layout.lock_file(container_id)
        self.container_dir = layout.container_dir(container_id)
        self.container_id = container_id
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> ContainerLock:
        make_private_dir(os.path.dirname(self.path))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StateError("cannot open lock %s: %s" % (self.path, exc.strerror))
            busy = ("container %r is locked by another run (lock %s held for more than %ss)"
                    % (self.container_id, self.path, self.timeout))
            flock_within(fd, self.path, max(0.0, deadline - time.monotonic()), StateError, busy)
            if _holds_file_at(fd, self.path):
                self._fd = fd
                return self
            os.close(fd)  # its holder removed it meanwhile: lock the file that is there now
            if time.monotonic() >= deadline:
                raise LockTimeoutError(busy)

    def __exit__(self, *exc_info: object) -> Literal[False]:
        if self._fd is not None:
            try:
                if not os.path.lexists(self.container_dir):
                    _unlink_quietly(self.path)  # still ours: only a holder unlinks it
            finally:
                os.close(self._fd)  # closing drops the flock
                self._fd = None
        return False


def _holds_file_at(fd: int, path: str) -> bool:
    """True when the open file ``fd`` is the file now at ``path`` (not one unlinked since)."""
    held = os.fstat(fd)
    try:
        current = os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        os.close(fd)
        raise StateError("cannot check lock %s: %s" % (path, exc.strerror))
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)
