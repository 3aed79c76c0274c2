# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoints: CRIU images of a container, with their metadata, created and restored through
the runtime (``checkpoint`` / ``restore --detach`` under a shim).

::

    <checkpoint_dir>/<name>/                 CRIU images + checkpoint.json (name, created, the
                                             options, the bundle, config digest, container id)
    <checkpoint_dir>/.work/<name>-<verb>/    CRIU's work dir and log of the last dump/restore
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import TYPE_CHECKING

from . import layout as L
from .errors import NotImplementedByRuntimeError, RuntimeCommandError, RuntimeCoreError
from .oci import SYSTEM_BIN_DIRS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .container import Container
    from .oci import OciRuntime

META_FILE = "checkpoint.json"
WORK_DIR = ".work"
DEFAULT_CHECKPOINT_ROOT = "/var/lib/oci-runtime/checkpoints"

# The checkpoint options: the name the modules and this file use (snake_case), the name in
# checkpoint.json (camelCase), and the type a value is kept as.
OPTIONS: tuple[tuple[str, str, type], ...] = (
    ("tcp", "tcp", bool),
    ("unix_sockets", "unixSockets", bool),
    ("shell", "shell", bool),
    ("exit", "exit", bool),
    ("empty_ns", "emptyNS", list),
)


def checkpoint_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint options in ``values`` (a task's parameters), by their snake_case names."""
    return {name: kind(values.get(name) or kind()) for name, dummy, kind in OPTIONS}


def _options_to_meta(options: Mapping[str, Any]) -> dict[str, Any]:
    return {field: kind(options.get(name) or kind()) for name, field, kind in OPTIONS}


def _options_of_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {name: kind(meta.get(field) or kind()) for name, field, kind in OPTIONS}


# CRIU prints this on every run in containers where it may not raise its own fd limit; it is not
# why anything failed.
_BENIGN_CRIU_ERRORS = ("Can't setup RLIMIT_NOFILE for self",)


class CheckpointError(RuntimeCoreError):
    """A checkpoint is missing, already there, or CRIU failed (the message quotes CRIU's log)."""


def find_criu(criu_path: str | None = None) -> str:
    """Absolute path of the CRIU binary; CheckpointError with a fix when there is none."""
    if criu_path:
        if os.path.isfile(criu_path) and os.access(criu_path, os.X_OK):
            return os.path.abspath(criu_path)
        raise CheckpointError("criu_path %s does not exist or is not executable" % criu_path)
    directories = [d for d in (os.environ.get("PATH") or "").split(os.pathsep) if d]
    # /usr/local first: that is where a newer CRIU goes when the distribution's is too old.
    for directory in ("/usr/local/sbin", "/usr/local/bin") + tuple(directories) + SYSTEM_BIN_DIRS:
        candidate = os.path.join(directory, "criu")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CheckpointError(
        "CRIU is not installed: checkpoint and restore need criu 4.0 or newer that passes "
        "'criu check' (Debian 13: apt-get install criu iptables; Debian 12's criu 3.17 fails on "
        "current kernels, see the collection's scripts/setup-criu.sh), or set criu_path")


def criu_check_hint(criu: str) -> str:
    """'criu check' output when CRIU itself does not work here, else ''."""
    try:
        proc = subprocess.run([criu, "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "; 'criu check' could not run: %s" % exc
    if proc.returncode == 0:
        return ""
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()[-2:]
    return "; 'criu check' fails on this host (%s): install a CRIU that works here" % " ".join(lines)


def criu_errors(log_path: str, limit: int = 3) -> str:
    """The error lines of a CRIU log, most telling last; '' when there is no log."""
    try:
        with open(log_path, errors="replace") as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        return ""
    errors = [line.split(": ", 1)[-1].strip() for line in lines
              if "Error (" in line and not any(b in line for b in _BENIGN_CRIU_ERRORS)]
    if not errors and lines:
        # Some failures (a missing image) are only said in CRIU's last words.
        return "%s (last line of %s)" % (lines[-1].split(": ", 1)[-1].strip(), log_path)
    return "; ".join(errors[:limit])


def failure_text(exc: RuntimeCommandError, log_path: str, criu: str) -> str:
    """The runtime's message, CRIU's own error lines, and a hint when CRIU does not work here."""
    text = exc.runtime_message or str(exc)
    detail = criu_errors(log_path)
    if detail:
        text += "; CRIU: " + detail
    return text + criu_check_hint(criu)


def option_args(options: Mapping[str, Any], runtime: OciRuntime) -> list[str]:
    """The runtime flags for the checkpoint options (by their snake_case names; ``exit`` is the
    caller's: it decides ``--leave-running``)."""
    args: list[str] = []
    if options.get("tcp"):
        args.append("--tcp-established")
    if options.get("unix_sockets"):
        args.append("--ext-unix-sk")
    if options.get("shell"):
        args.append("--shell-job")
    for namespace in options.get("empty_ns") or []:
        if runtime.flavor == "crun":
            raise NotImplementedByRuntimeError("crun has no --empty-ns for checkpoints")
        args += ["--empty-ns", namespace]
    return args


def dir_size(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class CheckpointStore(object):
    """The checkpoints of one container, in one directory (kept across reboots, not in /run)."""

    def __init__(self, directory: str) -> None:
        if not directory or not os.path.isabs(directory):
            raise CheckpointError("checkpoint_dir must be an absolute path, got %r" % (directory,))
        self.directory = os.path.normpath(directory)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, L.validate_id(name, "checkpoint name"))

    def work_dir(self, name: str, verb: str) -> str:
        return os.path.join(self.directory, WORK_DIR, "%s-%s" % (L.validate_id(name, "checkpoint name"), verb))

    def get(self, name: str) -> dict[str, Any] | None:
        """The checkpoint as modules return it, or None when there is none of that name."""
        path = self.path(name)
        meta = L.read_json(os.path.join(path, META_FILE))
        if meta is None:
            return None
        if not isinstance(meta, dict):
            raise CheckpointError("%s is not checkpoint metadata" % os.path.join(path, META_FILE))
        return {
            "name": meta.get("name", name),
            "path": path,
            "created": meta.get("created"),
            "size_bytes": dir_size(path),
            "container": meta.get("container"),
            "bundle": meta.get("bundle"),
            "config_digest": meta.get("configDigest"),
            "options": _options_of_meta(meta),
        }

    def list(self) -> list[dict[str, Any]]:
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        found = []
        for name in names:
            if L.is_valid_id(name) and os.path.isfile(os.path.join(self.directory, name, META_FILE)):
                checkpoint = self.get(name)
                if checkpoint is not None:  # not removed meanwhile
                    found.append(checkpoint)
        return found

    def create(self, container: Container, name: str, options: Mapping[str, Any], criu: str,
               force: bool = False) -> dict[str, Any] | None:
        """Checkpoint ``container`` into ``<dir>/<name>``; never overwrites an
        existing checkpoint unless ``force``. ``options`` are checkpoint_options(); with
        ``options['exit']`` the container stops."""
        final = self.path(name)
        if os.path.exists(final) and not force:
            raise CheckpointError("checkpoint %r already exists at %s (use force to replace it)"
                                  % (name, final))
        L.make_private_dir(self.directory)
        staging = os.path.join(self.directory, ".%s.tmp-%d" % (name, os.getpid()))
        work = self.work_dir(name, "dump")
        L.remove_tree(staging)
        L.remove_tree(work)
        L.make_private_dir(staging)
        L.make_private_dir(work)
        args = ["--image-path", staging, "--work-path", work]
        if not options.get("exit"):
            args.append("--leave-running")
        args += option_args(options, container.runtime)
        try:
            container.runtime.run("checkpoint", args + [container.id], criu=criu)
        except RuntimeCommandError as exc:
            L.remove_tree(staging)
            raise CheckpointError("checkpoint of container %r failed: %s" % (
                container.id, failure_text(exc, os.path.join(work, "dump.log"), criu)))
        L.make_tree_private(staging)  # CRIU writes its images (memory pages too) 0644
        L.make_tree_private(work)
        meta = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "name": name,
        }
        meta.update(_options_to_meta(options))
        meta.update({
            "container": container.id,
            "bundle": container.record.bundle,
            "configDigest": container.record.config_digest,
        })
        L.atomic_write(os.path.join(staging, META_FILE), json.dumps(meta, indent=2) + "\n")
        if os.path.exists(final):
            old = final + ".old-%d" % os.getpid()
            os.rename(final, old)
            os.rename(staging, final)
            L.remove_tree(old)
        else:
            os.rename(staging, final)
        return self.get(name)

    def remove(self, name: str) -> None:
        L.remove_tree(self.path(name))
        L.remove_tree(self.work_dir(name, "dump"))
        L.remove_tree(self.work_dir(name, "restore"))
