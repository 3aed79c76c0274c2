# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launching a shim, the module's side: install the shim program under the state dir, write
``launch.json``, ask the state dir's shim host to fork a shim (starting the host when none answers)
or start a standalone one, and read the shim's report.

The shim's side, and the protocol both sides speak, are described at the top of ``shim.py``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pkgutil
import select
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from . import layout as L
from .errors import ContainerNotStartedError, ContainerStartTimeoutError, StateError
from .shim import HOST_ACK, HOST_FLAG, HOST_PAD, START_LOADER, at_socket, host_socket_path

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

    from .process import ProcessRecord

    Report = Dict[str, Any]  # the shim's one JSON line: {"ok": true, "pid": N} or the error

# Set to "0" in the environment to start a standalone shim per process instead of asking the state
# dir's shim host: for debugging, or where /proc/self/mem cannot be written.
SHIM_HOST_ENV = "OCI_RUNTIME_SHIM_HOST"
HOST_START_TIMEOUT = 5.0


def shim_source() -> bytes:
    """The shim program's source, whether module_utils is on disk or inside Ansible's zip."""
    data = None
    try:
        data = pkgutil.get_data(__package__, "shim.py")
    except (IOError, OSError, ValueError):
        data = None
    if data is None:
        from . import shim as shim_module  # pylint: disable=import-outside-toplevel
        with open(shim_module.__file__, "rb") as handle:
            data = handle.read()
    return data


def install_shim(layout: L.Layout) -> str:
    """Copy the shim to ``<state_dir>/.shim/shim-<digest>.py`` once; the path to run. The name
    carries the digest of the source, so an upgraded collection starts new shims from the new
    program while the running ones keep theirs."""
    source = shim_source()
    digest = hashlib.sha256(source).hexdigest()[:16]
    directory = L.make_private_dir(layout.shim_dir())
    path = os.path.join(directory, "shim-%s.py" % digest)
    if not os.path.isfile(path):
        L.atomic_write(path, source, mode=0o600)
    return path


def start_argv(python: str, script: str, args: List[str]) -> List[str]:
    """The command line that starts a shim: ``python -I -S <script> <args>``, or through the shim's
    START_LOADER when the marshalled code of the script for this Python is there (no compile on the
    create's path). Either way the script's path comes right before ``args``, as find_shims and the
    tests look for it."""
    tag = getattr(getattr(sys, "implementation", None), "cache_tag", None)
    if tag and os.path.isfile("%s.%s.code" % (script, tag)):
        return [python, "-I", "-S", "-c", START_LOADER, script] + list(args)
    return [python, "-I", "-S", script] + list(args)


def launch(layout: L.Layout, record: ProcessRecord, argv: List[str], stdio: Dict[str, str],
           timeout: float) -> int:
    """Start the shim for ``record`` running ``argv``; return the container process pid.

    Raises ContainerNotStartedError with the runtime's own message when the runtime verb fails,
    ContainerStartTimeoutError when the shim does not report within ``timeout`` seconds.
    """
    script = install_shim(layout)
    _create_private_file(record.path(L.RUNTIME_LOG_FILE))  # the runtime appends with its umask
    L.atomic_write_json(record.path(L.LAUNCH_FILE), {
        "argv": argv,
        "stdin": stdio["stdin"],
        "stdout": stdio["stdout"],
        "stderr": stdio["stderr"],
        "pid_file": record.path(L.PID_FILE),
        "log_file": record.path(L.RUNTIME_LOG_FILE),
    })
    taken, report = False, None
    if os.environ.get(SHIM_HOST_ENV, "1") != "0":
        taken, report = _launch_through_host(layout, script, record, timeout)
    if not taken:
        report = _launch_standalone(layout, script, record, timeout)
    if report is None:
        raise ContainerStartTimeoutError(record.container_id, timeout)
    if not report.get("ok"):
        raise ContainerNotStartedError(record.container_id,
                                       report.get("error") or "the shim gave no reason")
    _make_private(record.path(L.PID_FILE))  # the runtime writes it 0644
    return int(report["pid"])


def _start_detached(argv: List[str], cwd: str, deadline: float) -> Optional[Report]:
    """Run a shim command line that forks and reports one JSON line on the fd given as its last
    argument; the report (None when ``deadline`` passes first)."""
    read_fd, write_fd = os.pipe()
    try:
        try:
            first = subprocess.Popen(
                argv + [str(write_fd)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(write_fd,), close_fds=True, cwd=cwd)
        finally:
            os.close(write_fd)
        first.wait()  # the shim forks and its first half exits at once
        return _read_report(read_fd, deadline)
    finally:
        os.close(read_fd)


def _launch_standalone(layout: L.Layout, script: str, record: ProcessRecord,
                       timeout: float) -> Optional[Report]:
    try:
        return _start_detached(start_argv(sys.executable, script, [layout.state_dir, record.container_id,
                                                                   record.id]), record.dir,
                               time.monotonic() + timeout)
    except OSError as exc:
        raise ContainerNotStartedError(record.container_id, "cannot start the shim: %s" % exc.strerror)


def _connect_host(script: str) -> Optional[socket.socket]:
    """A connected socket to the running shim host for ``script``, or None."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(HOST_START_TIMEOUT)
        at_socket(host_socket_path(script), conn.connect)
        return conn
    except OSError:
        conn.close()
        return None


def _host_connection(layout: L.Layout, script: str) -> Optional[socket.socket]:
    """Connect to the host, starting it first if none answers; None (or OSError) when that fails."""
    conn = _connect_host(script)
    if conn is not None:
        return conn
    started = _start_detached(start_argv(sys.executable, script, [HOST_FLAG + layout.state_dir, HOST_PAD]),
                              os.path.dirname(script), time.monotonic() + HOST_START_TIMEOUT)
    if not started or not (started.get("ok") or started.get("busy")):
        return None
    deadline = time.monotonic() + HOST_START_TIMEOUT
    while True:  # "busy": another module started one a moment ago, and it may not listen yet
        conn = _connect_host(script)
        if conn is not None or time.monotonic() > deadline:
            return conn
        time.sleep(0.005)


def _launch_through_host(layout: L.Layout, script: str, record: ProcessRecord,
                         timeout: float) -> Tuple[bool, Optional[Report]]:
    """Ask the state dir's shim host to fork the shim for ``record``: (taken, the shim's report or
    None on timeout). Not taken means that no host forked a shim: nothing was started."""
    try:
        conn = _host_connection(layout, script)
    except OSError:
        return False, None
    if conn is None:
        return False, None
    deadline = time.monotonic() + timeout
    with conn:
        try:
            conn.settimeout(None)
            conn.sendall(("%s %s\n" % (record.container_id, record.id)).encode("ascii"))
            # Wait for the ack as long as for the report: a late ack must not race a standalone shim.
            ack, rest = _read_line(conn.fileno(), deadline)
        except OSError:
            return False, None
        if ack is None:
            return True, None
        if ack != HOST_ACK:
            return False, None  # the host exited or refused before forking: nothing runs
        return True, _read_report(conn.fileno(), deadline, rest)


def _create_private_file(path: str) -> None:
    """An empty 0600 file at ``path`` unless a regular file is there; a symlink is replaced."""
    if os.path.islink(path):
        os.unlink(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise StateError("cannot create %s: %s" % (path, exc.strerror))
    _make_private(path)


def _make_private(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _read_line(fd: int, deadline: float, data: bytes = b"") -> Tuple[Optional[bytes], bytes]:
    """(the first line, what came after it) from ``fd``, ``data`` being what was read before;
    (None, data) on timeout; (b"", data) at EOF before a newline."""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, data
        try:
            ready = select.select([fd], [], [], remaining)[0]
        except (OSError, select.error) as exc:
            if getattr(exc, "errno", None) == errno.EINTR:
                continue
            raise
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return b"", data
        data += chunk
    line, rest = data.split(b"\n", 1)
    return line + b"\n", rest


def _read_report(fd: int, deadline: float, data: bytes = b"") -> Optional[Report]:
    """One JSON line from the shim; None on timeout; an error dict if the shim died silently."""
    line, data = _read_line(fd, deadline, data)
    if line is None:
        return None
    line = (line or data).split(b"\n", 1)[0].strip()
    if not line:
        return {"ok": False, "error": "the shim exited without reporting"}
    try:
        report = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        report = None
    if not isinstance(report, dict):
        return {"ok": False, "error": "the shim reported garbage: %r" % line[:200]}
    return report
