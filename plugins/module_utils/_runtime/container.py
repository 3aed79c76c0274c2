# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container: its record (state.json, see record.py), its init process and its lifecycle verbs.

Callers hold the container's lock (``layout.ContainerLock``) around anything that changes it.
"""

from __future__ import annotations

import os
import signal as signals
from typing import TYPE_CHECKING

from . import layout as L
from . import networking
from . import oom
from .bundle import load_bundle
from .overlay import ensure_mounted as ensure_rootfs_mounted
from .oci import default_runtime_root
from .errors import (
    BundleError,
    ContainerExitedError,
    ContainerNotRunningError,
    InvalidValueError,
    RuntimeCommandError,
    RuntimeCoreError,
    StateError,
)
from .launch import launch
from .mounts import remove_empty_cgroups, unmount_below
from .process import (
    STDERR_LOG,
    STDOUT_LOG,
    ProcessRecord,
    find_shims,
    prepare_process_dir,
)
from .record import ContainerRecord, utc_now
from .shim import process_start_time

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from .oci import OciRuntime

# The container statuses: the runtime's (created: created but never started), and absent.
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
CREATED = "created"
ABSENT = "absent"

# How long to wait for a shim to record an exit the runtime already reports.
EXIT_RECORD_GRACE = 2.0
KILL_WAIT = 10.0


def parse_signal(value: object) -> int:
    """Signal number from 15, '15', 'TERM' or 'SIGTERM'; InvalidValueError (a ValueError) with a
    clear message else."""
    text = str(value).strip().upper()
    if text.isascii() and text.isdigit():
        number = int(text)
        if 0 < number < signals.NSIG:
            return number
        raise InvalidValueError("signal number %s is out of range 1-%d" % (number, signals.NSIG - 1))
    name = text if text.startswith("SIG") else "SIG" + text
    found = getattr(signals, name, None)
    if not isinstance(found, int) or name.startswith("SIG_"):
        raise InvalidValueError("unknown signal %r" % (value,))
    return int(found)


def runtime_may_know(runtime_name: str, root: str | None, container_id: str) -> bool:
    """Whether the runtime has a state directory for ``container_id``: a stat, no runtime call,
    so that creating a new container costs nothing extra."""
    return os.path.isdir(os.path.join(root or default_runtime_root(runtime_name), container_id))


class Container(object):
    """One container recorded under a state dir, bound to the runtime that drives it."""

    def __init__(self, layout: L.Layout, runtime: OciRuntime, container_id: str,
                 record: ContainerRecord) -> None:
        self.layout = layout
        self.runtime = runtime
        self.id = container_id
        self.record = record
        self.init = ProcessRecord(layout, container_id, L.INIT_PROCESS_ID)
        self._runtime_state: dict[str, Any] | None = None
        self._runtime_state_known = False

    # --- loading and registering -------------------------------------------------------------

    @classmethod
    def load(cls, layout: L.Layout, container_id: str,
             runtime: OciRuntime | None = None) -> Container | None:
        """The recorded container, or None if this state dir has no record of it.

        Without ``runtime`` it is driven by the runtime it was created with (from state.json)."""
        if os.path.islink(layout.container_dir(container_id)):
            raise StateError("%s is a symlink; refusing to follow it out of the state dir (remove "
                             "it)" % layout.container_dir(container_id),
                             path=layout.container_dir(container_id))
        record = ContainerRecord.read(layout.state_file(container_id))
        if record is None:
            return None
        return cls(layout, runtime or record.oci_runtime(), container_id, record)

    @classmethod
    def register(cls, layout: L.Layout, runtime: OciRuntime, container_id: str, bundle: str,
                 labels: Mapping[str, str] | None = None, stdio: Mapping[str, str] | None = None,
                 no_pivot_root: bool = False) -> Container:
        """Write state.json for a container that is not running yet (status: stopped)."""
        config = load_bundle(bundle)
        record = ContainerRecord.for_runtime(
            runtime, config.bundle, labels=labels, stdio=stdio, no_pivot_root=no_pivot_root,
            config_digest=config.digest, created=utc_now())
        layout.ensure_state_dir()
        L.make_private_dir(layout.container_dir(container_id))
        container = cls(layout, runtime, container_id, record)
        container.save()
        if not os.path.isdir(container.init.dir):
            # Nothing of ours ever ran under this id: spare the runtime a `state` call. (A runtime
            # container left by someone else under this id makes the create fail, and say so.)
            container._runtime_state, container._runtime_state_known = None, True
        return container

    @classmethod
    def adopt(cls, layout: L.Layout, runtime: OciRuntime, container_id: str) -> Container | None:
        """Rebuild the records of a container the runtime has under ``container_id`` but this
        state dir does not (our state dir was wiped while it ran), from the runtime's ``state``
        and the shim still watching it. None when the runtime has no such container.

        Only a container that one of our shims (started for this state dir and id) still
        watches, or one that no longer runs, is adopted: anything else may belong to someone
        else, and taking it over could kill it, so StateError says what to do instead."""
        if not runtime_may_know(runtime.name, runtime.root, container_id):
            return None
        state = runtime.state(container_id)
        if state is None:
            return None
        status = state.get("status")
        pid = state.get("pid") if status in (RUNNING, PAUSED, CREATED) else None
        shims = find_shims(layout, container_id, L.INIT_PROCESS_ID)
        if pid and not shims:
            root = runtime.state_root
            raise StateError(
                "container %r is %s in the runtime (%s --root %s, pid %s, bundle %s) but %s has no "
                "record of it and no shim of this state_dir watches it: it was made elsewhere, or "
                "both its records and its shim are gone. Remove it (%s --root %s delete --force "
                "%s) and run again, or use another name"
                % (container_id, status, runtime.name, root, pid, state.get("bundle"),
                   layout.state_dir, runtime.name, root, container_id),
                container=container_id)
        bundle = state.get("bundle") or ""
        try:
            config = load_bundle(bundle)
        except BundleError:
            config = None
        record = ContainerRecord.for_runtime(
            runtime, bundle, shim="shim" if shims else "",
            config_digest=config.digest if config is not None else "",
            created=state.get("created") or utc_now(), adopted=utc_now())
        layout.ensure_state_dir()
        L.make_private_dir(layout.container_dir(container_id))
        container = cls(layout, runtime, container_id, record)
        L.make_private_dir(container.init.dir)
        if config is not None:
            spec = dict(config.process)
            spec.update({"exec": False, "runtimeArgs": record.runtime_args, "noPivotRoot": False,
                         "checkpoint": ""})
            L.atomic_write_json(container.init.path(L.PROCESS_FILE), spec)
        if pid:
            # The shim writes exitStatus by path, into this recreated directory, when it ends.
            L.atomic_write(container.init.path(L.PID_FILE), "%d\n" % pid)
            L.atomic_write(container.init.path(L.START_TIME_FILE),
                           "%s\n" % process_start_time(pid))
            L.atomic_write(container.init.path(L.SHIM_PID_FILE),
                           "%d %s\n" % (shims[0], process_start_time(shims[0])))
        L.make_fifo(container.init.path(L.EXIT_FILE))
        L.make_fifo(container.init.path(L.CONTROL_FILE))
        container.save()  # state.json last: a half-adopted container is not seen as recorded
        container._runtime_state, container._runtime_state_known = state, True
        return container

    def save(self) -> None:
        self.record.write(self.layout.state_file(self.id))

    def set_labels(self, labels: Mapping[str, str]) -> None:
        self.record.labels = dict(labels)
        self.save()

    # --- what is true now ---------------------------------------------------------------------

    def runtime_state(self, refresh: bool = False) -> dict[str, Any] | None:
        """The runtime's own view (``runtime state``), asked once per converge unless refreshed."""
        if refresh or not self._runtime_state_known:
            self._runtime_state = self.runtime.state(self.id)
            self._runtime_state_known = True
        return self._runtime_state

    def forget_runtime_state(self) -> None:
        self._runtime_state_known = False

    def status(self) -> str:
        """running, paused, created or stopped, cross-checking the runtime with our records."""
        state = self.runtime_state()
        if state is None:
            return STOPPED
        runtime_status = state.get("status")
        if runtime_status in (RUNNING, PAUSED, CREATED):
            recorded_pid = self.init.pid
            if recorded_pid is None or recorded_pid == state.get("pid"):
                if recorded_pid is None or self.init.alive():
                    return runtime_status
        return STOPPED

    def exit_status(self, status: str | None = None) -> int | None:
        """The init process's exit code; None while it runs or when nobody saw it end."""
        if (status or self.status()) != STOPPED:
            return None
        code = self.init.exit_status
        if code is None and self.init.shim()[1]:
            # The process is gone but its shim is still writing: give it a moment.
            self.init.wait_exit(EXIT_RECORD_GRACE)
            code = self.init.exit_status
        return code

    def exit_status_unknown(self, status: str, exit_status: int | None) -> bool:
        """True when the init process ran and ended but nobody recorded how (its shim died first,
        or its records were rebuilt from the runtime's): exit_status is then null, not an
        invented number. ``status`` and ``exit_status`` as describe() found them."""
        return status == STOPPED and exit_status is None and (
            os.path.exists(self.init.path(L.PID_FILE)) or bool(self.record.adopted))

    def describe(self) -> dict[str, Any]:
        """The container as modules return it."""
        status = self.status()
        pid = self.init.pid if status != STOPPED else None
        shim_pid, shim_alive = self.init.shim()
        exit_status = self.exit_status(status)
        return {
            "id": self.id,
            "status": status,
            "pid": pid,
            "bundle": self.record.bundle,
            "created": self.record.created,
            "labels": dict(self.record.labels),
            "runtime": self.record.runtime,
            "shim_pid": shim_pid if shim_alive else None,
            "exit_status": exit_status,
            "exit_status_unknown": self.exit_status_unknown(status, exit_status),
            "oom_killed": oom.oom_killed(self.init, self.init, exit_status),
            "config_digest": self.record.config_digest,
            "processes": [record.describe() for record in self.process_records()],
            "networks": networking.describe(self.layout, self.id),
        }

    def process_records(self) -> list[ProcessRecord]:
        """The exec'd processes recorded for this container (every process dir but init)."""
        directory = self.layout.container_dir(self.id)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        return [ProcessRecord(self.layout, self.id, name) for name in names
                if name != L.INIT_PROCESS_ID and L.is_valid_id(name)
                and os.path.isfile(os.path.join(directory, name, L.PROCESS_FILE))]

    def process(self, process_id: str) -> ProcessRecord:
        L.validate_id(process_id, "process id")
        if process_id == L.INIT_PROCESS_ID:
            raise StateError("process id %r is reserved for the container's own process"
                             % process_id)
        return ProcessRecord(self.layout, self.id, process_id)

    # --- verbs --------------------------------------------------------------------------------

    def create(self, timeout: float) -> None:
        """Create the init process under a new shim (runtime ``create``); the runtime's status is
        then ``created``. Refreshes the config digest from the bundle as it is now."""
        self._launch_init(timeout, lambda pid_file, log_file: self.runtime.create_argv(
            self.id, self.record.bundle, pid_file, log_file, self.record.no_pivot_root))

    def restore(self, checkpoint_name: str, image_path: str, work_path: str,
                extra_args: Iterable[str], criu: str | None, timeout: float) -> None:
        """Restore the init process from CRIU images under a new shim (runtime ``restore
        --detach``); the container then runs. The images are only read, never changed."""
        try:
            self._launch_init(timeout, lambda pid_file, log_file: self.runtime.restore_argv(
                self.id, self.record.bundle, image_path, work_path, pid_file, log_file, criu,
                extra_args, self.record.no_pivot_root), checkpoint_name)
        except Exception:
            unmount_below([work_path])  # CRIU's cgroup yard, when CRIU was killed mid-restore
            raise
        self._runtime_state_after(RUNNING)  # `restore --detach` returned: it runs

    def _launch_init(self, timeout: float, build_argv: Callable[[str, str], list[str]],
                     checkpoint_name: str = "") -> None:
        ensure_rootfs_mounted(self.record.bundle)  # an image bundle's overlay, after a reboot
        config = load_bundle(self.record.bundle)
        self._reset_init()
        uid, gid = config.root_ids()
        spec = dict(config.process)
        spec.update({
            "exec": False,
            "runtimeArgs": list(self.record.runtime_args),
            "noPivotRoot": self.record.no_pivot_root,
            "checkpoint": checkpoint_name,
            "rootUID": uid,
            "rootGID": gid,
        })
        stdio = prepare_process_dir(self.init, spec, self.record.stdin,
                                    self.record.stdout, self.record.stderr,
                                    fresh=False)
        argv = build_argv(self.init.path(L.PID_FILE), self.init.path(L.RUNTIME_LOG_FILE))
        self.record.config_digest = config.digest
        self.record.created = utc_now()
        self.record.shim = "shim"  # which shim runs it (ours, in .shim/)
        self.save()
        self.forget_runtime_state()
        try:
            # The CNI plugins run while the runtime creates the container (a restore: before).
            with networking.Attachment(self.layout, self.id, config,
                                       previous_addresses=bool(checkpoint_name),
                                       background=not checkpoint_name):
                launch(self.layout, self.init, argv, stdio, timeout)
            oom.remember_cgroup(self.init)  # before the runtime deletes the cgroup, see oom.py
        except Exception as exc:
            self._cleanup_failed_create(exc)
            raise

    def exec_process(self, process_id: str, overrides: Mapping[str, Any],
                     stdio: Mapping[str, str | None], timeout: float) -> ProcessRecord:
        """Start an extra process in the running container under its own shim (runtime
        ``exec --detach``). ``overrides`` replace fields of the init process's spec (args, env,
        cwd, user); the new process record starts afresh. Returns its ProcessRecord."""
        record = self.process(process_id)
        status = self.status()
        if status != RUNNING:
            raise ContainerNotRunningError(self.id, status)
        spec = dict(self.init.spec())
        for key in ("containerdStdin", "containerdStdout", "containerdStderr"):
            spec.pop(key, None)
        spec.update(overrides)
        spec.update({"terminal": False, "exec": True})
        paths = prepare_process_dir(record, spec, stdio.get("stdin"), stdio.get("stdout"),
                                    stdio.get("stderr"))
        argv = self.runtime.exec_argv(self.id, record.path(L.PROCESS_FILE),
                                      record.path(L.PID_FILE), record.path(L.RUNTIME_LOG_FILE))
        oom.remember_start(record, self.init)
        try:
            launch(self.layout, record, argv, paths, timeout)
        except Exception:
            record.kill_shim(group=True)
            L.remove_tree(record.dir)
            raise
        return record

    def remove_process(self, record: ProcessRecord, grace: float) -> None:
        """SIGTERM a live process, SIGKILL after ``grace`` seconds, then drop its record."""
        if record.status() == "running":
            record.signal(signals.SIGTERM)
            if not record.wait_exit(grace):
                record.signal(signals.SIGKILL)
                record.wait_exit(KILL_WAIT)
        record.kill_shim()
        L.remove_tree(record.dir)

    def start(self) -> None:
        self.runtime.start(self.id)
        self._runtime_state_after(RUNNING)

    def pause(self) -> None:
        self.runtime.pause(self.id)
        self._runtime_state_after(PAUSED)

    def resume(self) -> None:
        self.runtime.resume(self.id)
        self._runtime_state_after(RUNNING)

    def _runtime_state_after(self, status: str) -> None:
        """The runtime's state after a verb it accepted: known without asking ``runtime state``
        again (one exec less per converge that starts, pauses or resumes). status() still checks
        the recorded pid in /proc, so a process that exited at once is reported stopped."""
        self._runtime_state = {"id": self.id, "status": status, "pid": self.init.pid}
        self._runtime_state_known = True

    def stop(self, stop_signal: object, timeout: float) -> None:
        """Send ``stop_signal``, wait ``timeout`` seconds, then SIGKILL; keeps the exit status."""
        status = self.status()
        if status == STOPPED:
            raise ContainerExitedError(self.id)
        if status == PAUSED:
            self.runtime.resume(self.id)  # a frozen process cannot act on the signal
        signal_number = parse_signal(stop_signal) if status != CREATED else signals.SIGKILL
        self._kill(signal_number)
        if not self.init.wait_exit(timeout):
            self._kill(signals.SIGKILL)
            if not self.init.wait_exit(KILL_WAIT):
                raise StateError("container %r did not exit %ss after SIGKILL"
                                 % (self.id, KILL_WAIT))
        self.forget_runtime_state()
        networking.detach(self.layout, self.id)  # a stopped container holds no address

    def _kill(self, signal_number: int) -> None:
        try:
            self.runtime.kill(self.id, signal_number)
        except RuntimeCommandError as exc:
            # It may have exited between our look and the kill: that is what we wanted.
            if self.init.alive():
                raise exc

    def remove(self) -> None:
        """Remove the runtime's container and all our records of it (the container is stopped)."""
        self.runtime.delete(self.id, force=True)
        # Exec'd processes die with the container's pid namespace; without one they would not.
        for record in self.process_records():
            record.signal(signals.SIGKILL)
            record.wait_exit(KILL_WAIT)
            record.kill_shim()
        self.init.kill_shim()
        networking.detach(self.layout, self.id)  # fails (and keeps the records) if a plugin does
        L.remove_tree(self.layout.container_dir(self.id))
        self.forget_runtime_state()

    def record_oom_kills(self) -> None:
        """Keep the cgroup's OOM kill counter in every process dir before the runtime deletes the
        container (and its cgroup) for a fresh create; the exec'd processes' records outlive it.
        (remove() needs none: it drops every record.)"""
        oom.record_final([self.init] + self.process_records(), self.init)

    def _reset_init(self) -> None:
        """Drop the runtime's old container and the old init records, to start afresh. The default
        stdout/stderr logs are kept: a restarted or restored container appends to them."""
        if self.runtime_state() is not None:
            self.record_oom_kills()
            self.runtime.delete(self.id, force=True)
        self.init.kill_shim()
        L.clear_dir(self.init.dir, keep=(STDOUT_LOG, STDERR_LOG))
        self.forget_runtime_state()

    def _cleanup_failed_create(self, error: BaseException | None = None) -> None:
        # The shim's whole process group: a runtime verb or CRIU still running under it must not
        # carry on (or loop) after we gave up on it.
        self.init.kill_shim(group=True)
        try:
            networking.detach(self.layout, self.id)
        except RuntimeCoreError:
            pass  # the create's error is the one to report; the record stays for the removal
        if "already exists" in str(error or ""):
            # The id was taken before our create: that container is not ours to delete.
            self.forget_runtime_state()
            return
        try:
            self.runtime.delete(self.id, force=True)
        except RuntimeCommandError:
            pass
        root = self.runtime.state_root
        unmount_below([os.path.join(root, self.id)])
        remove_empty_cgroups(self._cgroups_path())
        self.forget_runtime_state()

    def _cgroups_path(self) -> str:
        """Where runc puts the container's cgroup: linux.cgroupsPath, or /<id> by default."""
        try:
            path = (load_bundle(self.record.bundle).config.get("linux") or {}).get("cgroupsPath")
        except RuntimeCoreError:
            path = None
        return path if path and path.startswith("/") else "/" + self.id
