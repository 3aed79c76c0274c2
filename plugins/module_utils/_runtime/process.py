# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container process on disk: its records, its shim, its exit status.

The process directory ``<state_dir>/<container>/<process>/`` holds ``process.json`` (the OCI process
spec and how it was started), ``launch.json`` (what the shim runs), ``pid`` and ``starttime`` (so a
reused pid is not mistaken for ours), ``shim.pid``, ``exitStatus``, the ``exit`` and ``control``
fifos and the default stdio logs. Starting its shim is ``launch.py``'s.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import stat
import time
from typing import TYPE_CHECKING

from . import layout as L
from . import oom
from .errors import InvalidPidError, StateError
from .shim import process_start_time

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"

SHIM_EXIT_GRACE = 1.0

# Process statuses. "exited" with a null exit status means nobody saw it end (its shim died).
RUNNING = "running"
EXITED = "exited"
ABSENT = "absent"


def pid_alive(pid: int | None, start_time: int | None) -> bool:
    """True when ``pid`` runs and is the same process that was recorded (same start time)."""
    if not pid:
        return False
    current = process_start_time(pid)
    if current is None:
        return False
    return start_time is None or current == start_time


def descendants(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (from /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                text = handle.read()
        except (IOError, OSError):
            continue
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def find_shims(layout: L.Layout, container_id: str, process_id: str) -> list[int]:
    """Pids of live shims started for this state dir, container and process (from their
    command lines: ``python -I -S <state_dir>/.shim/shim-*.py <state_dir> <id> <process> <fd>``)."""
    prefix = os.path.join(layout.state_dir, L.SHIM_DIR) + os.sep
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = _cmdline(int(name))
        for index, arg in enumerate(argv):
            if arg.startswith(prefix) and argv[index + 1:index + 4] == [
                    layout.state_dir, container_id, process_id]:
                if process_start_time(int(name)) is not None:
                    found.append(int(name))
                break
    return sorted(found)


PF_KTHREAD = 0x00200000  # the flags field of /proc/<pid>/stat: a kernel thread


def _cmdline(pid: int, timeout: float = 0.5) -> list[str]:
    """``pid``'s argv ([] when it is gone). A process caught in execve reads an empty command line
    for a moment (a standalone shim re-executes itself as its monitor right after it reports):
    a live process that is not a kernel thread is read again until its argv is there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                data = handle.read()
        except (IOError, OSError):
            return []
        if data or time.monotonic() >= deadline or not _may_show_argv(pid):
            return data.decode("utf-8", "replace").split("\0") if data else []
        time.sleep(0.002)


def _may_show_argv(pid: int) -> bool:
    """Whether an empty command line of ``pid`` is passing: false for kernel threads, zombies and
    pids that are gone, which never show one."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            text = handle.read()
    except (IOError, OSError):
        return False
    fields = text[text.rfind(b")") + 2:].split()
    try:
        return fields[0] not in (b"Z", b"X") and not int(fields[6]) & PF_KTHREAD
    except (IndexError, ValueError):
        return False


class ProcessRecord(object):
    """Read-side view of one process directory; every property reads the disk afresh."""

    def __init__(self, layout: L.Layout, container_id: str, process_id: str) -> None:
        self.layout = layout
        self.container_id = container_id
        self.id = process_id
        self.dir = layout.process_dir(container_id, process_id)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    @property
    def pid(self) -> int | None:
        pid = L.read_int(self.path(L.PID_FILE))
        if pid is not None and pid <= 0:
            raise InvalidPidError(self.path(L.PID_FILE), str(pid))
        return pid

    @property
    def start_time(self) -> int | None:
        text = L.read_text(self.path(L.START_TIME_FILE))
        try:
            return int(text.strip()) if text and text.strip() != "None" else None
        except ValueError:
            raise StateError("%s does not hold a start time: %r" % (self.path(L.START_TIME_FILE),
                                                                    (text or "")[:40]),
                             path=self.path(L.START_TIME_FILE))

    @property
    def exit_status(self) -> int | None:
        return L.read_int(self.path(L.EXIT_STATUS_FILE))

    def shim(self) -> tuple[int | None, bool]:
        """(pid, alive) of the shim, (None, False) if it never wrote its pid."""
        text = L.read_text(self.path(L.SHIM_PID_FILE))
        if not text:
            return None, False
        words = text.split()
        try:
            pid = int(words[0])
            start = int(words[1]) if len(words) > 1 and words[1] != "None" else None
        except ValueError:
            return None, False
        return pid, pid_alive(pid, start)

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)

    def spec(self) -> dict[str, Any]:
        return L.read_json(self.path(L.PROCESS_FILE), {})

    def status(self) -> str:
        """running, exited or absent; waits briefly for a shim that is still recording the exit."""
        if not self.exists():
            return ABSENT
        if self.exit_status is not None:
            return EXITED
        if self.alive():
            return RUNNING
        if self.shim()[1]:
            self.wait_exit(2.0)
        return EXITED

    def init_record(self) -> ProcessRecord:
        """The record of the container's init process (whose cgroup every process shares)."""
        return ProcessRecord(self.layout, self.container_id, L.INIT_PROCESS_ID)

    def describe(self) -> dict[str, Any]:
        status = self.status()
        exit_status = self.exit_status if status == EXITED else None
        return {
            "id": self.id,
            "pid": self.pid if status == RUNNING else None,
            "status": status,
            "exit_status": exit_status,
            "oom_killed": oom.oom_killed(self, self.init_record(), exit_status),
        }

    def signal(self, signal_number: int) -> bool:
        """Deliver a signal to the process itself, if it is still the process we started."""
        pid = self.pid
        if pid is None or not pid_alive(pid, self.start_time):
            return False
        try:
            os.kill(pid, signal_number)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return False
            raise StateError("cannot signal process %r (pid %d) of container %r: %s"
                             % (self.id, pid, self.container_id, exc.strerror))
        return True

    def _wait_shim_gone(self, timeout: float) -> None:
        """After writing exitStatus the shim only closes its fifos and exits: wait for that, so
        that what is reported next (shim_pid) is already true."""
        deadline = time.monotonic() + timeout
        while self.shim()[1] and time.monotonic() < deadline:
            time.sleep(0.0005)

    def kill_shim(self, group: bool = False) -> None:
        """SIGKILL the shim; with ``group``, first everything it started, CRIU's restorers
        included (they leave its process group, so a killpg would miss them)."""
        shim_pid, alive = self.shim()
        if shim_pid is None or not alive:
            return
        victims = descendants(shim_pid) if group else []
        for pid in victims + [shim_pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def wait_exit(self, timeout: float) -> bool:
        """Wait until the process has gone and its shim has recorded the exit; True if it did."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        exit_fd = self._open_exit_fifo()
        try:
            while True:
                if os.path.exists(self.path(L.EXIT_STATUS_FILE)):
                    self._wait_shim_gone(SHIM_EXIT_GRACE)
                    return True
                if not self.alive() and not self.shim()[1]:
                    return True  # no shim left to write it: the status stays unknown
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if exit_fd is not None and _fifo_closed(exit_fd, min(delay, remaining)):
                    os.close(exit_fd)  # the shim is done: look again now, then poll
                    exit_fd = None
                elif exit_fd is None:
                    time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.05)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)

    def _open_exit_fifo(self) -> int | None:
        """The ``exit`` fifo for reading: the shim holds it open until it has recorded the exit,
        so its EOF wakes a waiter at once (polling alone costs up to 50 ms per stop and exec).
        None when there is none (a record without a shim): then wait_exit only polls."""
        try:
            fd = os.open(self.path(L.EXIT_FILE), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd


def _fifo_closed(fd: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for EOF on a fifo opened for reading; True once every writer is gone.
    Linux reports that only for a writer that closed *after* our open: if the shim closed it before,
    this sleeps the whole timeout, so callers only use it with short timeouts, between checks."""
    try:
        if not select.select([fd], [], [], timeout)[0]:
            return False
        return not os.read(fd, 4096)
    except (OSError, select.error) as exc:
        if getattr(exc, "errno", None) == errno.EINTR:
            return False
        return True


def prepare_process_dir(record: ProcessRecord, spec: Mapping[str, Any], stdin: str | None,
                        stdout: str | None, stderr: str | None,
                        fresh: bool = True) -> dict[str, str]:
    """Create the process directory with process.json and the fifos; return stdio paths. ``fresh``
    empties it first (else the caller has cleared it, keeping what it wants)."""
    if fresh:
        L.remove_tree(record.dir)
    L.make_private_dir(record.dir)
    stdio = {
        "stdin": stdin or os.devnull,
        "stdout": stdout or record.path(STDOUT_LOG),
        "stderr": stderr or record.path(STDERR_LOG),
    }
    document = dict(spec)
    document.update({
        "containerdStdin": stdio["stdin"],
        "containerdStdout": stdio["stdout"],
        "containerdStderr": stdio["stderr"],
    })
    L.atomic_write_json(record.path(L.PROCESS_FILE), document)
    L.make_fifo(record.path(L.EXIT_FILE))
    L.make_fifo(record.path(L.CONTROL_FILE))
    return stdio
