# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only place that runs the OCI runtime binary (runc, crun): argv in, parsed result or error out.

Commands run without a shell, with ``--log-format json`` so the runtime's own error message can be
quoted. Verbs that leave a process behind (create, exec, restore) are not run from here but by the
shim, which owns their stdio; this module only builds their argv.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

from .errors import RuntimeCommandError, RuntimeNotFoundError

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping
    from typing import Any

DEFAULT_RUNTIME = "runc"
DEFAULT_TIMEOUT = 120
SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def resolve_binary(runtime: str) -> str:
    """Absolute path of the runtime: a path is taken as is, a name is looked up on PATH."""
    if not runtime:
        raise RuntimeNotFoundError("no OCI runtime given")
    if "/" in runtime:
        candidates = [runtime]
    else:
        # Ansible may run modules with a minimal PATH: also look where runtimes are installed.
        directories = (os.environ.get("PATH") or "").split(os.pathsep) + list(SYSTEM_BIN_DIRS)
        candidates = [os.path.join(d, runtime) for d in directories if d]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise RuntimeNotFoundError(
        "OCI runtime %r not found%s; install it (e.g. apt-get install runc) or set runtime to the "
        "path of the binary" % (runtime, "" if "/" in runtime else " on PATH"))


def default_runtime_root(runtime: str) -> str:
    """Where a runtime (a name or a path) keeps its state when no --root is given (as root)."""
    return "/run/crun" if "crun" in os.path.basename(runtime or "") else "/run/runc"


def parse_runtime_log(text: str) -> str:
    """The error messages in a runtime's JSON log output (plain lines are kept as they are)."""
    messages: list[str] = []
    decoder = json.JSONDecoder()
    for line in text.splitlines():
        line = line.strip()
        while line:
            if not line.startswith("{"):
                messages.append(line)
                break
            try:
                entry, end = decoder.raw_decode(line)
            except ValueError:
                messages.append(line)
                break
            line = line[end:].strip()
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
                msg = str(entry.get("msg", "")).strip()
                if msg and msg not in messages:
                    messages.append(msg)
    return "; ".join(messages)


class OciRuntime(object):
    """One runtime binary with its root directory and extra global arguments."""

    def __init__(self, runtime: str = DEFAULT_RUNTIME, root: str | None = None,
                 runtime_args: Iterable[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name = runtime
        self.binary = resolve_binary(runtime)
        self.root = root
        self.runtime_args = list(runtime_args or [])
        self.timeout = timeout
        self.calls = 0  # how often the binary ran: benchmarks and tests count no-op cost with it

    @property
    def state_root(self) -> str:
        """The directory the runtime keeps its containers' state in: --root, else its default."""
        return self.root or default_runtime_root(self.name)

    @property
    def flavor(self) -> str:
        """'runc' or 'crun' (what the binary is called), for the few places their CLIs differ."""
        base = os.path.basename(self.binary)
        return "crun" if "crun" in base else "runc"

    def global_args(self, log_file: str | None = None, criu: str | None = None) -> list[str]:
        argv = [self.binary]
        if criu and self.flavor == "runc":
            argv += ["--criu", criu]  # crun links libcriu and has no such option
        if self.root:
            argv += ["--root", self.root]
        if log_file:
            argv += ["--log", log_file]
        argv += ["--log-format", "json"]
        argv += self.runtime_args
        return argv

    def run(self, verb: str, args: Iterable[str] = (), stdin_data: str | bytes | None = None,
            ok_codes: Container[int] = (0,), criu: str | None = None) -> str:
        """Run ``<runtime> <globals> verb args``; stdout on success, RuntimeCommandError else."""
        argv = self.global_args(criu=criu) + [verb] + list(args)
        self.calls += 1
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data is not None
                                    else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            raise RuntimeNotFoundError("cannot run %s: %s" % (self.binary, exc.strerror))
        try:
            raw_out, raw_err = proc.communicate(
                stdin_data.encode("utf-8") if isinstance(stdin_data, str) else stdin_data,
                timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeCommandError(argv, verb, -9, "timed out after %ss" % self.timeout)
        out = raw_out.decode("utf-8", "replace")
        err = raw_err.decode("utf-8", "replace")
        if proc.returncode not in ok_codes:
            raise RuntimeCommandError(argv, verb, proc.returncode,
                                      parse_runtime_log(err) or out.strip(), err)
        return out

    # --- verbs -------------------------------------------------------------------------------

    def state(self, container_id: str) -> dict[str, Any] | None:
        """The runtime's state of a container as a dict, or None when the runtime has none."""
        try:
            out = self.run("state", [container_id])
        except RuntimeCommandError as exc:
            if _means_not_found(exc.runtime_message):
                return None
            raise
        try:
            return json.loads(out)
        except ValueError:
            raise RuntimeCommandError([self.binary], "state", 0,
                                      "output is not JSON: %r" % out[:200])

    def start(self, container_id: str) -> None:
        self.run("start", [container_id])

    def pause(self, container_id: str) -> None:
        self.run("pause", [container_id])

    def resume(self, container_id: str) -> None:
        self.run("resume", [container_id])

    def kill(self, container_id: str, signal: int | str, all_processes: bool = False) -> None:
        args = ["--all"] if all_processes else []
        self.run("kill", args + [container_id, str(signal)])

    def delete(self, container_id: str, force: bool = False) -> bool:
        """Delete the runtime's container; True if it existed."""
        try:
            self.run("delete", (["--force"] if force else []) + [container_id])
        except RuntimeCommandError as exc:
            if _means_not_found(exc.runtime_message):
                return False
            raise
        return True

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """``update -r -`` with an OCI LinuxResources document (only the fields to change)."""
        self.run("update", ["--resources", "-", container_id], stdin_data=json.dumps(resources))

    # --- argv for the shim ------------------------------------------------------------------

    def create_argv(self, container_id: str, bundle: str, pid_file: str, log_file: str,
                    no_pivot_root: bool = False) -> list[str]:
        argv = self.global_args(log_file) + ["create", "--bundle", bundle, "--pid-file", pid_file]
        if no_pivot_root:
            argv.append("--no-pivot")
        return argv + [container_id]

    def restore_argv(self, container_id: str, bundle: str, image_path: str, work_path: str,
                     pid_file: str, log_file: str, criu: str | None, extra_args: Iterable[str] = (),
                     no_pivot_root: bool = False) -> list[str]:
        argv = self.global_args(log_file, criu) + [
            "restore", "--detach", "--image-path", image_path, "--work-path", work_path,
            "--bundle", bundle, "--pid-file", pid_file]
        if no_pivot_root:
            argv.append("--no-pivot")
        return argv + list(extra_args) + [container_id]

    def exec_argv(self, container_id: str, process_file: str, pid_file: str,
                  log_file: str) -> list[str]:
        return self.global_args(log_file) + ["exec", "--detach", "--pid-file", pid_file,
                                             "--process", process_file, container_id]


def _means_not_found(message: str | None) -> bool:
    text = (message or "").lower()
    return "does not exist" in text or "not found" in text or "no such file" in text
