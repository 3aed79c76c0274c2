# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shim: a small program that outlives the module and watches one container process.

This file is self-contained on purpose (standard library only, no package imports): the module
copies its source to ``<state_dir>/.shim/shim-<digest>.py`` (``launch.install_shim``; the digest
names the version, so an upgrade never replaces a running shim's program) and runs it from there
with ``python -I -S``, because the module's own temporary directory is deleted when the task ends.
The file names below are layout.py's, kept here as copies (a unit test ties them).

Modes, by command line (``<script>`` is the copy; the module's side is ``launch.py``):

``<script> <state_dir> <container_id> <process_id> <report_fd>``
    A standalone shim for one process (or the same through START_LOADER, see below). It
    1. forks and lets the parent exit, so the module's ``Popen`` returns at once; starts a new
       session; becomes the child subreaper; writes ``shim.pid`` (``<pid> <start time>``);
    2. reads ``launch.json`` from the process directory (``argv`` of the runtime verb: ``create``,
       ``exec -d`` or ``restore -d``; ``stdin``, ``stdout``, ``stderr``, ``pid_file``,
       ``log_file``) and runs the verb with stdio pipes that it owns and copies to and from those
       paths (pipes, because CRIU can checkpoint and restore a pipe but not a host file outside the
       container's mounts);
    3. reads the pid file, writes ``starttime`` and reports on ``report_fd``;
    4. re-executes itself as the monitor (same pid, session and subreaper flag: execve keeps all
       three), handing over only the fds it needs.

``python -I -S -c MONITOR_LOADER <script> <state_dir> <container_id> <process_id> <memfd>``
    The monitor of step 4, a fresh interpreter that imports only os, errno, select and _signal.
    The memfd holds this file's marshalled code (its length in 8 bytes, then the code: the state
    dir may be gone by then), then the handover (see ``Shim._handover_state``). It copies output
    and serves the ``control`` fifo until the container process is reaped, drains the pipes (a
    reader that sees the exit status has seen all the output), writes ``exitStatus`` (the exit
    code, or 128 + signal number), closes the ``exit`` fifo and exits.

``<script> --host=<state_dir> --pad=<dots> <report_fd>``
    The shim host: one long-lived process per state dir, script and Python. It reports
    ``{"ok": true}`` once it listens on ``<script>.<cache tag>.sock`` (``{"ok": false, "busy":
    true}`` when another host answers there already), then forks a monitor per request and exits
    once it has had no monitor for HOST_IDLE_EXIT seconds. It keeps no fd under the state dir and
    its cwd is /.

a monitor forked by the host
    Answers ``forked``, rewrites its own command line (into the room ``--pad`` keeps) to
    ``<script> <state_dir> <container_id> <process_id> <fd>``, so it is found like a standalone
    shim, becomes the subreaper and forks a child that does steps 2-3 and hands the monitoring
    back over a socketpair (fds by SCM_RIGHTS): what the start allocated dies with that child.
    ``shim.pid`` holds the monitor's pid.

The protocol:

- the report: one JSON line on ``report_fd`` (or the host's connection), then EOF:
  ``{"ok": true, "pid": N}``, or ``{"ok": false, "rc": N or null, "error": "..."}`` with the
  runtime's own message from its JSON log (else the tail of its stderr);
- the host's socket (0600, in the 0700 ``.shim`` dir; the host also checks the peer's uid) takes
  one line ``<container_id> <process_id>``; the host checks both ids and that ``launch.json`` is
  there, and the forked monitor answers ``forked`` (HOST_ACK) then the report. Anything short of
  ``forked`` means nothing was started, and the module starts a standalone shim instead;
- the process directory: the shim writes ``shim.pid``, ``starttime`` and ``exitStatus``; it holds
  the ``exit`` fifo open until it is done (a waiter sees EOF then); a line ``0 0 0`` on the
  ``control`` fifo closes the process's stdin;
- ``<script>.<cache tag>.code``: the marshalled code, written once (by the host, or by the first
  monitor), read by START_LOADER and shipped to the monitor.

Memory: one shim runs per container process, so what the long-running part holds is paid per
container: 1.04 MiB PSS per forked monitor at 100 containers with Python 3.11, against 3.0 MiB for a
standalone shim (docs/performance.md). Steps 1-3 need JSON and prctl, and use the C halves ``_json``
and ``_ctypes`` rather than the ``json`` package (it imports ``re`` and ``enum``) and ``ctypes``:
faster to start, and the start is on the path of every create.
"""

from __future__ import annotations

import errno
import os
import select
import sys

# Nothing is imported for the annotations (they stay strings): only type checkers, for which
# TYPE_CHECKING is true, read the imports below it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Sequence
    from typing import IO, Any, NoReturn, Tuple, TypeVar

    from _socket import socket as Socket

    # (prctl, get_errno)
    Prctl = Tuple[Callable[..., int], Callable[[], int]]
    T = TypeVar("T")
else:
    try:
        # The C half of the signal module: ``signal`` itself imports enum (and with it functools,
        # collections, ...), about 0.9 MiB per shim on Python 3.11.
        import _signal as signal
    except ImportError:  # pragma: no cover - other Pythons
        import signal

PR_SET_CHILD_SUBREAPER = 36
EXIT_UNKNOWN = None

# File names in a process directory: layout.py's, copied (this file imports nothing of the package).
LAUNCH_FILE = "launch.json"
START_TIME_FILE = "starttime"
SHIM_PID_FILE = "shim.pid"
EXIT_STATUS_FILE = "exitStatus"
EXIT_FILE = "exit"
CONTROL_FILE = "control"

# The monitor runs this file's code object, marshalled once per shim digest and Python next to the
# script: compiling the source would leave the parser's ~1.4 MiB of freed heap behind in every shim.
# The start runs it too when it is there (``python -I -S -c START_LOADER <script> <args>``, see
# launch.start_argv), else the source: compiling this file costs 5-12 ms, on the path of every create.
START_LOADER = ("import marshal,sys;sys.argv=sys.argv[1:]\n"
                "try:\n"
                " f=open('%s.%s.code'%(sys.argv[0],sys.implementation.cache_tag),'rb')\n"
                " c=marshal.loads(f.read());f.close();del f\n"
                "except Exception:\n"
                " f=open(sys.argv[0],'rb');c=compile(f.read(),sys.argv[0],'exec',dont_inherit=True);f.close();del f\n"
                "exec(c,{'__name__':'__main__','__file__':sys.argv[0]})")
MONITOR_LOADER = ("import marshal,os,sys;sys.argv=sys.argv[1:];f=os.fdopen(int(sys.argv[4]),'rb');"
                  "c=marshal.loads(f.read(int.from_bytes(f.read(8),'big')));"
                  "exec(c,{'__name__':'__main__','__file__':sys.argv[0],'_SHIM_HANDOVER':f})")


class _JsonContext(object):
    """What ``_json.make_scanner`` reads from a decoder: plain JSON, no hooks."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo = None


def json_loads(text: str) -> Any:
    """``json.loads`` through the C scanner of ``_json`` (the ``json`` package imports re and enum:
    slower to start, and the shim's start is on the path of every create); ValueError if not JSON."""
    try:
        import _json
    except ImportError:  # pragma: no cover - Pythons without the accelerator
        import json
        return json.loads(text)
    text = text.strip()
    try:
        # typeshed wants a JSONDecoder; the C scanner reads only the attributes _JsonContext has.
        value, end = _json.make_scanner(_JsonContext())(text, 0)  # type: ignore[arg-type]
    except StopIteration:
        raise ValueError("not JSON: %r" % text[:40])
    if end != len(text):
        raise ValueError("extra data after JSON: %r" % text[end:end + 40])
    return value


def json_string(text: str) -> str:
    try:
        from _json import encode_basestring_ascii
    except ImportError:  # pragma: no cover
        from json import dumps as encode_basestring_ascii
    return encode_basestring_ascii(text)


def json_dumps(payload: dict[str, object]) -> str:
    """One flat JSON object (str keys; str, int, bool or None values) as the report line needs."""
    parts = []
    for key, value in payload.items():
        if value is None or isinstance(value, bool):
            text = {None: "null", True: "true", False: "false"}[value]
        elif isinstance(value, int):
            text = "%d" % value
        else:
            text = json_string(str(value))
        parts.append("%s: %s" % (json_string(key), text))
    return "{" + ", ".join(parts) + "}"


def _write_file(path: str, text: str | bytes, durable: bool = True) -> None:
    """Atomic small-file write (temp + rename), mode 0600. ``durable=False`` skips the fsync, for
    records of live processes (shim.pid, starttime) that no crash can leave meaningful: it is on
    the path of every create."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        data = text.encode("utf-8") if isinstance(text, str) else text
        while data:
            data = data[os.write(fd, data):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _read_file(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot); None when the pid is gone or a zombie."""
    text = _read_file("/proc/%d/stat" % pid)
    if not text:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    try:
        if fields[0] in ("Z", "X"):
            return None  # exited, not yet reaped: as good as gone
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _prctl_function() -> Prctl:
    """libc's prctl through the C half of ctypes: the ``ctypes`` package costs about 5 ms of start-up
    (on the path of every create) for what these few lines do. Falls back to ``ctypes``."""
    try:
        import _ctypes

        class CInt(_ctypes._SimpleCData):  # what ctypes.c_int is
            _type_ = "i"

        class Prctl(_ctypes.CFuncPtr):  # what ctypes.CDLL(None, use_errno=True).prctl is
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt
        # dlopen(None) is dlopen(NULL), the program itself (typeshed wants a path).
        return Prctl(_ctypes.dlsym(_ctypes.dlopen(None), "prctl")), _ctypes.get_errno  # type: ignore[arg-type]
    except (ImportError, AttributeError, OSError, TypeError):
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl, ctypes.get_errno


_PRCTL: list[Prctl] = []  # made once: the shim host makes it before it forks monitors


def _prctl() -> Prctl:
    if not _PRCTL:
        _PRCTL.append(_prctl_function())
    return _PRCTL[0]


def _become_subreaper() -> None:
    prctl, get_errno = _prctl()
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _spawn(argv: list[str], stdio: Sequence[int], cwd: str) -> int:
    """fork + exec without subprocess (keeps the shim's memory small); returns the child pid."""
    pid = os.fork()
    if pid == 0:
        try:
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            os.closerange(3, 65536)
            os.chdir(cwd)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execv(argv[0], argv)
        except BaseException as exc:  # pylint: disable=broad-except
            try:
                os.write(2, ("shim: cannot exec %s: %s\n" % (argv[0], exc)).encode())
            finally:
                os._exit(127)
    return pid


def _monitor_code(script: str) -> bytes | None:
    """This script's marshalled code, from ``<script>.<cache tag>.code`` (written the first time);
    None when it cannot be had (then the shim monitors without re-executing)."""
    path = "%s.%s.code" % (script, sys.implementation.cache_tag)
    try:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            import marshal
            with open(script, "rb") as handle:
                data = marshal.dumps(compile(handle.read(), script, "exec", dont_inherit=True))
            _write_file(path, data, durable=False)  # a torn file only costs a compile
            return data
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    except (OSError, SyntaxError, ValueError):
        return None


def _exit_code(status: int) -> int | None:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return EXIT_UNKNOWN


def _runtime_error(log_file: str, stderr_file: str) -> str:
    """The runtime's error messages from its JSON log (fallback: the tail of stderr)."""
    messages: list[str] = []
    for line in (_read_file(log_file) or "").splitlines():
        for chunk in line.replace("}{", "}\n{").splitlines():
            try:
                entry = json_loads(chunk)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
                msg = str(entry.get("msg", "")).strip()
                if msg and msg not in messages:
                    messages.append(msg)
    if messages:
        return "; ".join(messages)
    tail = (_read_file(stderr_file) or "").strip().splitlines()[-3:]
    return " ".join(tail)


class Pump(object):
    """Copies one source fd to one destination fd as data comes, without ever blocking the shim."""

    def __init__(self, src: int, dst: int) -> None:
        self.src = src
        self.dst = dst
        self.pending = b""

    def fill(self) -> bool:
        """Read what is there; False at EOF."""
        try:
            data = os.read(self.src, 65536)
        except OSError as exc:
            return exc.errno in (errno.EAGAIN, errno.EINTR)
        if not data:
            return False
        self.pending += data
        return True

    def flush(self) -> bool:
        """Write what is pending; False when the destination is gone."""
        while self.pending:
            try:
                written = os.write(self.dst, self.pending)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    return True
                self.pending = b""
                return False
            self.pending = self.pending[written:]
        return True

    def close(self) -> None:
        for fd in (self.src, self.dst):
            try:
                os.close(fd)
            except OSError:
                pass


class Shim(object):
    """One container process: its stdio pipes, its runtime verb, its exit."""

    def __init__(self, state_dir: str, container_id: str, process_id: str,
                 report_fd: int | None) -> None:
        self.state_dir = state_dir
        self.container_id = container_id
        self.process_id = process_id
        self.process_dir = os.path.join(state_dir, container_id, process_id)
        self.report_fd = report_fd
        self.launch: dict[str, Any] = {}  # launch.json, read by start()
        self.control_fd: int | None = None
        self.container_pid: int | None = None
        self.outputs: list[Pump] = []  # container stdout/stderr pipe -> log file
        self.stdin: Pump | None = None  # stdin file -> container stdin pipe (None once done)
        self.wake_fd: int | None = None  # read end of the SIGCHLD wake-up pipe

    def report(self, payload: dict[str, object]) -> None:
        if self.report_fd is None:
            return
        try:
            os.write(self.report_fd, (json_dumps(payload) + "\n").encode("utf-8"))
        except OSError:
            pass  # the module stopped waiting; the records on disk still tell the truth
        os.close(self.report_fd)
        self.report_fd = None

    def _stdio_pipes(self) -> list[int]:
        """The container's stdio are pipes the shim owns (CRIU can checkpoint and restore pipes,
        not host files); the shim copies them to and from the paths in launch.json."""
        launch = self.launch
        in_r, in_w = os.pipe()
        source = launch.get("stdin") or os.devnull
        if source == os.devnull:
            os.close(in_w)  # the process reads EOF at once
        else:
            src = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(in_w, False)
            self.stdin = Pump(src, in_w)
        child = [in_r]
        for name in ("stdout", "stderr"):
            out_r, out_w = os.pipe()
            os.set_blocking(out_r, False)
            log = os.open(launch[name], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.outputs.append(Pump(out_r, log))
            child.append(out_w)
        return child

    def start(self) -> int | None:
        """Run the runtime verb; return the container pid or None (after reporting the error)."""
        launch = self.launch = json_loads(_read_file(os.path.join(self.process_dir, LAUNCH_FILE))
                                          or "")
        self._watch_children()
        child_stdio = self._stdio_pipes()
        runtime_pid = _spawn(launch["argv"], child_stdio, self.process_dir)
        for fd in child_stdio:
            os.close(fd)
        status = self._wait_for(runtime_pid)
        if status != 0:
            self.drain()
            self.report({"ok": False, "rc": status,
                         "error": _runtime_error(launch["log_file"], launch["stderr"])})
            return None
        text = (_read_file(launch["pid_file"]) or "").strip()
        try:
            pid = int(text)
        except ValueError:
            self.report({"ok": False, "rc": 0, "error": "runtime wrote no valid pid file at %s: %r"
                         % (launch["pid_file"], text[:40])})
            return None
        start_time = process_start_time(pid)
        _write_file(os.path.join(self.process_dir, START_TIME_FILE), "%s\n" % start_time, durable=False)
        self.container_pid = pid
        return pid

    def _wait_for(self, pid: int) -> int | None:
        """waitpid for the runtime verb, copying output meanwhile so that it can never block."""
        while True:
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return EXIT_UNKNOWN
            if got == pid:
                return _exit_code(status)
            self._wait_wake(1.0)

    def reap(self) -> int | str | None:
        """Reap every exited child; the container's exit code once it is among them."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                if exc.errno == errno.ECHILD:
                    # Not our child (no subreaper): fall back to noticing that it is gone.
                    if self.container_pid is None or process_start_time(self.container_pid) is None:
                        return "gone"
                return None
            if pid == 0:
                return None
            if pid == self.container_pid:
                return _exit_code(status)

    def pump(self, timeout: float, extra: Sequence[int] = ()) -> list[int]:
        """Wait up to ``timeout`` for output, input room or one of ``extra``; copy what is there.
        Returns the ready fds among ``extra``."""
        readers = [p.src for p in self.outputs] + list(extra)
        writers: list[int] = []
        if self.stdin is not None:
            if self.stdin.pending:
                writers.append(self.stdin.dst)
            else:
                readers.append(self.stdin.src)
        try:
            ready_r, ready_w, _x = select.select(readers, writers, [], timeout)
        except (OSError, select.error):
            return []
        for out in list(self.outputs):
            if out.src in ready_r:
                alive = out.fill()
                out.flush()
                if not alive:
                    out.close()
                    self.outputs.remove(out)
        if self.stdin is not None and (self.stdin.src in ready_r or self.stdin.dst in ready_w):
            more = self.stdin.fill() if self.stdin.src in ready_r else True
            if not self.stdin.flush() or (not more and not self.stdin.pending):
                self.close_stdin()
        return [fd for fd in extra if fd in ready_r]

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None

    def drain(self) -> None:
        """Copy what the pipes still hold, without waiting for writers that may never close."""
        for out in self.outputs:
            while out.fill() and out.pending:
                out.flush()
            out.flush()

    def control(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        for line in data.decode("utf-8", "replace").splitlines():
            words = line.split()
            if words and words[0] == "0":
                self.close_stdin()

    def _watch_children(self) -> None:
        """SIGCHLD wakes the select loop through a pipe (set up before any child is started)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.wake_fd = wake_r

    def _wait_wake(self, timeout: float, extra: Sequence[int] = ()) -> list[int]:
        """Copy stdio until a child exits (or ``timeout``); the ready fds among ``extra``."""
        wake = () if self.wake_fd is None else (self.wake_fd,)
        ready = self.pump(timeout, wake + tuple(extra))
        if self.wake_fd in ready:
            try:
                os.read(self.wake_fd, 4096)
            except OSError:
                pass
        return ready

    def exec_monitor(self, exit_fd: int) -> None:
        """Replace this interpreter, which imported what the start needed, by a fresh one running only
        the monitor (same pid and session; the subreaper flag and ignored signals survive execve).
        Everything it needs goes through one memfd (see MONITOR_LOADER), so that its command line
        stays ``... <script> <state_dir> <id> <process> <fd>``: the module and the tests read
        shims' command lines. Returns only when no exec happened (nothing has changed then): the
        caller monitors from here."""
        if self.container_pid is None:
            return  # nothing was started
        try:
            if os.waitid(os.P_PID, self.container_pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return  # it has exited already (a short exec): finish here, sooner than a new interpreter
        except (OSError, AttributeError):
            pass
        script = os.path.abspath(__file__)
        code = _monitor_code(script)
        if code is None or not hasattr(os, "memfd_create"):
            return  # nothing to hand over (the state dir went away?): monitor from here
        line, fds, pending = self._handover_state(exit_fd)
        blob = b"".join([len(code).to_bytes(8, "big"), code, line] + pending)
        handover = None
        try:
            handover = os.memfd_create("oci-runtime-shim-handover", 0)
            view = memoryview(blob)
            while view:
                view = view[os.write(handover, view):]
            os.lseek(handover, 0, os.SEEK_SET)
            for fd in fds:
                os.set_inheritable(fd, True)
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", MONITOR_LOADER, script,
                                      self.state_dir, self.container_id, self.process_id, str(handover)])
        except (OSError, ValueError):
            for fd in fds:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
            if handover is not None:
                os.close(handover)

    def _handover_state(self, exit_fd: int) -> tuple[bytes, list[int], list[bytes]]:
        """What the monitor needs, as (line, fds, pending): the line ``<container pid> <exit fd>
        <control fd> [o=src,dst,n ...] [i=src,dst,n]``, every fd in it, and each pump's bytes not
        copied yet."""
        pid, control_fd = self.container_pid, self.control_fd
        if pid is None or control_fd is None:  # start() and open_control() set them first
            raise OSError(errno.ESRCH, "no started process to hand over")
        words = ["%d %d %d" % (pid, exit_fd, control_fd)]
        fds = [exit_fd, control_fd]
        pending = []
        for kind, pumps in (("o", self.outputs), ("i", [self.stdin] if self.stdin is not None else [])):
            for pump in pumps:
                words.append("%s=%d,%d,%d" % (kind, pump.src, pump.dst, len(pump.pending)))
                fds += [pump.src, pump.dst]
                pending.append(pump.pending)
        return (" ".join(words) + "\n").encode("ascii"), fds, pending

    def hand_over(self, sock: Socket, exit_fd: int) -> None:
        """Pass the monitoring to the parent (a monitor forked by the shim host, see
        run_split_shim): the handover line with its fds (SCM_RIGHTS), then the pending bytes."""
        import _socket
        line, fds, pending = self._handover_state(exit_fd)
        rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
        sock.sendmsg([line], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        for data in pending:
            if data:
                sock.sendall(data)
        sock.close()

    @classmethod
    def from_handover(cls, state_dir: str, container_id: str, process_id: str, handover: IO[bytes],
                      received: list[int] | None = None) -> tuple[Shim, int]:
        """The Shim that exec_monitor (or hand_over) handed over, from the rest of the memfd (after
        the code): the line of _handover_state then each pump's bytes not copied yet. ``received``:
        the fds as they arrived by SCM_RIGHTS, in the line's order, standing for its numbers.
        Returns (shim, exit_fd)."""
        arrived = None if received is None else iter(received)

        def fd(word: str | int) -> int:
            return int(word) if arrived is None else next(arrived)
        shim = cls(state_dir, container_id, process_id, None)
        words = handover.readline().decode("ascii").split()
        shim.container_pid, exit_fd, shim.control_fd = int(words[0]), fd(words[1]), fd(words[2])
        for word in words[3:]:
            kind, dummy, numbers = word.partition("=")
            src, dst, size = (int(n) for n in numbers.split(","))
            src, dst = fd(src), fd(dst)
            pump = Pump(src, dst)
            pump.pending = handover.read(size) if size else b""
            if kind == "o":
                shim.outputs.append(pump)
            else:
                shim.stdin = pump
        handover.close()
        for pump in shim.outputs + ([shim.stdin] if shim.stdin is not None else []):
            os.set_inheritable(pump.src, False)
            os.set_inheritable(pump.dst, False)
        os.set_inheritable(exit_fd, False)
        os.set_inheritable(shim.control_fd, False)
        return shim, exit_fd

    def open_control(self) -> None:
        """Open the control fifo before reporting: the records may be wiped once the module has
        its answer, and the shim must go on regardless."""
        self.control_fd = os.open(os.path.join(self.process_dir, CONTROL_FILE), os.O_RDWR | os.O_NONBLOCK)

    def monitor(self) -> None:
        control_fd = self.control_fd
        watched = () if control_fd is None else (control_fd,)
        while True:
            code = self.reap()
            if code is not None:
                break
            ready = self._wait_wake(1.0, watched)
            if control_fd is not None and control_fd in ready:
                self.control(control_fd)
        self.drain()
        if isinstance(code, int):  # not "gone"
            _write_file(os.path.join(self.process_dir, EXIT_STATUS_FILE), "%d\n" % code)
        if control_fd is not None:
            os.close(control_fd)


def monitor_main(state_dir: str, container_id: str, process_id: str, handover: IO[bytes]) -> int:
    """The long-running half, in the interpreter that exec_monitor started."""
    _ignore_job_signals()
    shim, exit_fd = Shim.from_handover(state_dir, container_id, process_id, handover)
    shim._watch_children()
    shim.monitor()
    os.close(exit_fd)
    return 0


# The shim host (see the modes at the top).
HOST_FLAG = "--host="
HOST_PAD_FLAG = "--pad="
# Room in the host's command line for what a monitor writes there (see _show_as_shim): its argv then
# reads ``<script> <state_dir> <container id> <process id> <fd>``, like a standalone shim's.
_MAX_ID_LENGTH = 128  # layout.MAX_ID_LENGTH: this file imports nothing of the package
HOST_PAD = HOST_PAD_FLAG + "." * (2 * (_MAX_ID_LENGTH + 1) + 8)
HOST_IDLE_EXIT = 10.0  # seconds; OCI_RUNTIME_SHIM_HOST_IDLE in the environment overrides it (tests)
HOST_ACK = b"forked\n"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def host_socket_path(script: str) -> str:
    """The socket of the host for ``script`` and this Python."""
    return "%s.%s.sock" % (script, sys.implementation.cache_tag)


def socket_address(path: str, dir_fd: int) -> str:
    """A name for ``path`` that fits sun_path (108 bytes): the path itself when short enough, else
    through ``dir_fd``, an open fd of its directory (``/proc/self/fd/N/<name>``)."""
    if len(path.encode("utf-8")) < 100:
        return path
    return "/proc/self/fd/%d/%s" % (dir_fd, os.path.basename(path))


def at_socket(path: str, action: Callable[[str], T]) -> T:
    """``action(address)`` for the unix socket at ``path`` (connect, bind, stat, unlink), with an fd
    of its directory open for as long as a long path needs it (see socket_address)."""
    dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return action(socket_address(path, dir_fd))
    finally:
        os.close(dir_fd)


def _valid_id(value: str) -> bool:
    """layout.is_valid_id, without ``re`` (the host's imports are every monitor's)."""
    return 0 < len(value) <= _MAX_ID_LENGTH and value[0] not in "._-" and set(value) <= _ID_CHARS


def _show_as_shim(script: str, args: list[str]) -> bool:
    """Rewrite this process's command line (the memory /proc/<pid>/cmdline reads) so that the words
    after ``script`` are ``args``: a monitor forked by the host is then found like any shim (by
    find_shims, ps, the tests). False when it cannot (no room, or /proc/self/mem not writable)."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        arg_start, arg_end = int(fields[45]), int(fields[46])
        with open("/proc/self/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
        target = script.encode("utf-8")
        offset = 0
        for word in words:
            offset += len(word) + 1
            if word == target:
                break
        else:
            return False
        data = b"".join(a.encode("utf-8") + b"\0" for a in args)
        room = arg_end - arg_start - offset
        if len(data) > room:
            return False
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            os.pwrite(fd, data + b"\0" * (room - len(data)), arg_start + offset)
        finally:
            os.close(fd)
        return True
    except (OSError, ValueError, IndexError):
        return False


class ShimHost(object):
    """The host's loop: accept a request, fork a monitor for it, reap monitors, exit when idle."""

    def __init__(self, state_dir: str, script: str, listener: Socket,
                 idle_exit: float = HOST_IDLE_EXIT) -> None:
        self.idle_exit = idle_exit
        self.state_dir = state_dir
        self.script = script
        self.listener = listener
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def reap(self) -> None:
        while self.children:
            try:
                pid, dummy = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            self.children.discard(pid)

    def serve(self) -> None:
        idle_since = _monotonic()
        listen_fd = self.listener.fileno()
        while True:
            try:
                ready = select.select([listen_fd, self.wake_r], [], [], min(1.0, self.idle_exit))[0]
            except InterruptedError:
                ready = []
            if self.wake_r in ready:
                try:
                    os.read(self.wake_r, 4096)
                except OSError:
                    pass
            self.reap()
            if listen_fd in ready:
                self.accept()
            if self.children:
                idle_since = _monotonic()
            elif _monotonic() - idle_since > self.idle_exit:
                return  # a client that connects now reads EOF, not "forked": it starts its own shim

    def accept(self) -> None:
        try:
            # _socket.socket's accept (socket.socket wraps it; typeshed lists only the wrapper).
            fd = self.listener._accept()[0]  # type: ignore[attr-defined]
        except OSError:
            return
        try:
            request = self._read_request(fd)
            if request is not None:
                pid = os.fork()
                if pid == 0:
                    self._monitor(fd, request)  # never returns
                self.children.add(pid)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _read_request(self, fd: int) -> tuple[str, str] | None:
        """(container id, process id) of a well-formed request from our own uid, else None."""
        import _socket
        conn = _socket.socket(fileno=os.dup(fd))
        try:
            conn.settimeout(2.0)
            cred = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
            if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
                return None
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = conn.recv(1024)
                if not chunk:
                    return None
                data += chunk
        except OSError:
            return None
        finally:
            conn.close()
        words = data.split(b"\n", 1)[0].decode("ascii", "replace").split()
        if len(words) != 2 or not all(_valid_id(w) for w in words):
            return None
        if not os.path.isfile(os.path.join(self.state_dir, words[0], words[1], LAUNCH_FILE)):
            return None
        return words[0], words[1]

    def _monitor(self, fd: int, request: tuple[str, str]) -> NoReturn:
        """In the forked child: become the shim for ``request``; never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for own in (self.listener.detach(), self.wake_r, self.wake_w):
                try:
                    os.close(own)
                except OSError:
                    pass
            os.setsid()
            os.set_blocking(fd, True)
            os.write(fd, HOST_ACK)
            _show_as_shim(self.script, [self.state_dir, request[0], request[1], str(fd)])
            code = run_split_shim(self.state_dir, request[0], request[1], fd)
        finally:
            os._exit(code)


def _monotonic() -> float:
    import time
    return time.monotonic()


def host_main(state_dir: str, report_fd: int) -> int:
    """Start the shim host for ``state_dir``: report ``{"ok": true}`` once it listens (or
    ``{"ok": false, "busy": true}`` when another host answers on the socket already), then serve.
    It holds no fd under the state dir (only its listening socket), and its cwd is /."""
    import _socket
    import gc
    if os.fork():
        os._exit(0)  # as a shim: the module's Popen returns at once
    os.setsid()
    _ignore_job_signals()
    os.chdir("/")
    script = os.path.abspath(__file__)
    sock_path = host_socket_path(script)
    try:
        if _host_answers(sock_path):
            os.write(report_fd, b'{"ok": false, "busy": true}\n')
            return 0
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        bound = at_socket(sock_path, lambda address: _bind_private(listener, address))
        listener.listen(128)
        host = ShimHost(state_dir, script, listener,
                        float(os.environ.get("OCI_RUNTIME_SHIM_HOST_IDLE") or HOST_IDLE_EXIT))
    except Exception as exc:  # pylint: disable=broad-except
        try:
            os.write(report_fd, (json_dumps({"ok": False, "error": "shim host: %s" % exc}) + "\n").encode())
        except OSError:
            pass
        return 1
    _prctl()  # made here, once, not in every monitor
    json_loads('{"warm": [1]}')  # imports _json here, once, not in every monitor
    os.write(report_fd, b'{"ok": true}\n')
    os.close(report_fd)
    _monitor_code(script)  # leaves the marshalled code for the next start (START_LOADER), once
    gc.collect()
    gc.freeze()  # the monitors' collections then leave the shared pages alone
    try:
        host.serve()
    finally:
        _unlink_if_bound(sock_path, bound)
        listener.close()
    return 0


def _bind_private(listener: Socket, address: str) -> int:
    """Bind ``listener`` to ``address`` as a 0600 socket file; its inode."""
    try:
        os.unlink(address)  # left by a host that died (a live one answered _host_answers)
    except FileNotFoundError:
        pass
    old_umask = os.umask(0o177)
    try:
        listener.bind(address)
    finally:
        os.umask(old_umask)
    return os.stat(address).st_ino


def _host_answers(sock_path: str) -> bool:
    """True when a host already listens on ``sock_path`` (two modules may start one at once)."""
    import _socket
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.settimeout(2.0)
        at_socket(sock_path, probe.connect)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _unlink_if_bound(sock_path: str, inode: int) -> None:
    """Remove our socket file, unless a newer host has replaced it meanwhile."""
    def unlink_ours(address: str) -> None:
        if os.stat(address).st_ino == inode:
            os.unlink(address)
    try:
        at_socket(sock_path, unlink_ours)
    except OSError:
        pass


def run_split_shim(state_dir: str, container_id: str, process_id: str, report_fd: int) -> int:
    """A monitor forked by the host: it becomes the subreaper, then forks a child that does the
    start (steps 2-3: launch.json, pipes, the runtime verb, the report) and hands it the monitoring
    back. The start's allocations and imports die with that child, so the monitor keeps sharing
    most of its pages with the host."""
    import _io
    import _socket
    _become_subreaper()
    mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    starter = os.fork()
    if starter == 0:
        code = 1
        try:
            mine.close()
            code = run_shim(state_dir, container_id, process_id, report_fd, handover=theirs)
        finally:
            os._exit(code)
    theirs.close()
    os.close(report_fd)
    room = _socket.CMSG_SPACE(4 * 16)
    data, ancillary, dummy, dummy = mine.recvmsg(4096, room, _socket.MSG_CMSG_CLOEXEC)
    received: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            received += [int.from_bytes(payload[i:i + 4], sys.byteorder) for i in range(0, len(payload) - 3, 4)]
    while data:
        chunk = mine.recv(4096)
        if not chunk:
            break
        data += chunk
    mine.close()
    if not data or not received:
        return 1  # the start failed (and reported why) or died: nothing to monitor
    shim, exit_fd = Shim.from_handover(state_dir, container_id, process_id, _io.BytesIO(data),
                                       received=received)
    shim._watch_children()
    shim.monitor()
    os.close(exit_fd)
    return 0


def run_shim(state_dir: str, container_id: str, process_id: str, report_fd: int,
             handover: Socket | None = None) -> int:
    """Steps 2-4 for one process, in a process that is already in its own session; the exit code.
    With ``handover`` (a socket to the parent, see run_split_shim) it stops after the report and
    hands the monitoring over; the parent is the subreaper and the pid recorded in shim.pid."""
    shim = None
    try:
        shim = Shim(state_dir, container_id, process_id, report_fd)
        # Hold the exit fifo open from the start: a waiter sees EOF only once the shim is done.
        exit_fd = os.open(os.path.join(shim.process_dir, EXIT_FILE), os.O_RDWR)
        shim.open_control()
        monitor_pid = os.getpid() if handover is None else os.getppid()
        if handover is None:
            _become_subreaper()
        _write_file(os.path.join(shim.process_dir, SHIM_PID_FILE),
                    "%d %s\n" % (monitor_pid, process_start_time(monitor_pid)), durable=False)
        pid = shim.start()
        if pid is None:
            return 1
        shim.report({"ok": True, "pid": pid})
        if handover is not None:
            shim.hand_over(handover, exit_fd)
            return 0
        shim.exec_monitor(exit_fd)  # returns only if the exec failed: then monitor from here
        shim.monitor()
        os.close(exit_fd)
        return 0
    except Exception as exc:  # pylint: disable=broad-except
        message = "shim failed: %s: %s" % (type(exc).__name__, exc)
        if shim is not None and shim.report_fd is not None:
            shim.report({"ok": False, "rc": None, "error": message})
        elif shim is None:
            try:
                os.write(report_fd, (json_dumps({"ok": False, "error": message}) + "\n").encode())
            except OSError:
                pass
        return 1


def _ignore_job_signals() -> None:
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    handover = globals().get("_SHIM_HANDOVER")  # set by MONITOR_LOADER: this is the monitor
    if handover is not None and len(args) == 4:
        return monitor_main(args[0], args[1], args[2], handover)
    if len(args) == 3 and args[0].startswith(HOST_FLAG) and args[1].startswith(HOST_PAD_FLAG):
        return host_main(args[0][len(HOST_FLAG):], int(args[2]))
    if len(args) != 4:
        sys.stderr.write("usage: shim <state_dir> <container_id> <process_id> <report_fd>\n"
                         "       shim --host=<state_dir> --pad=... <report_fd>\n")
        return 2
    state_dir, container_id, process_id, report_fd = args[0], args[1], args[2], int(args[3])
    if os.fork():
        os._exit(0)  # the module reaps this parent at once; the shim lives on in the child
    os.setsid()
    _ignore_job_signals()
    return run_shim(state_dir, container_id, process_id, report_fd)


if __name__ == "__main__":
    raise SystemExit(main())
