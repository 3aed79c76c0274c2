# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one extra process of a container (the seed's exec / AddProcess).

A process id names one run: once it has run to its end (``state: exited``) it is never run again
while its record exists, whatever the task's ``args`` say now. The container's lock is held only
while starting or removing; waiting for the end happens outside it, so other tasks on the same
container are not held up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._module.actions import ActionLog
from ansible_collections.oci.runtime.plugins.module_utils._module.common import (
    TaskFailedError,
    check_seconds,
    load_container,
    run_locked,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import process as proc
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    InvalidValueError,
    RuntimeCoreError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STATES = ("running", "exited", "absent")

# The process module's own options (the common ones come from common.argument_spec); the plural
# module takes the same ones, but ``container``, for each item of a container's ``processes``.
PROCESS_OPTIONS: dict[str, dict[str, Any]] = dict(
    container=dict(type="str", required=True),
    id=dict(type="str", required=True),
    args=dict(type="list", elements="str"),
    env=dict(type="dict"),
    cwd=dict(type="str"),
    user=dict(type="str"),
    stdin=dict(type="path"),
    stdout=dict(type="path"),
    stderr=dict(type="path"),
    state=dict(type="str", choices=list(STATES), default="exited"),
    timeout=dict(type="float"),
    start_timeout=dict(type="float", default=30),
    signal=dict(type="str"),
)
OUTPUT_LIMIT = 65536  # bytes of stdout/stderr returned (the end of the output)
ABSENT_GRACE = 10.0


class ProcessTimeoutError(RuntimeCoreError):
    """``state: exited`` waited ``timeout`` seconds and the process still runs."""


class ProcessFailedError(TaskFailedError):
    """The process exited non-zero (or its exit was not seen); ``result`` is the module result and
    the detail ``rc`` its exit status, as ``command`` returns it."""

    def __init__(self, msg: str, result: Mapping[str, Any]) -> None:
        super(ProcessFailedError, self).__init__(msg, result, rc=result.get("exit_status"))


def parse_user(value: object) -> dict[str, int]:
    """'uid' or 'uid:gid' as the OCI user object."""
    text = str(value).strip()
    uid, sep, gid = text.partition(":")
    try:
        user = {"uid": int(uid)}
        if sep:
            user["gid"] = int(gid)
    except ValueError:
        raise InvalidIdError("user must be 'uid' or 'uid:gid' with numbers, got %r" % (value,))
    if user["uid"] < 0 or user.get("gid", 0) < 0:
        raise InvalidIdError("user ids must not be negative, got %r" % (value,))
    return user


def read_tail(path: str, limit: int = OUTPUT_LIMIT) -> tuple[str, bool]:
    """(text, truncated): the last ``limit`` bytes of a capture file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except (IOError, OSError):
        return "", False
    return data.decode("utf-8", "replace"), size > limit


class ProcessConverger(object):

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.layout = L.Layout(params["state_dir"])
        self.container_id = L.validate_id(params["container"], "container name")
        self.process_id = L.validate_id(params["id"], "process id")
        if self.process_id == L.INIT_PROCESS_ID:
            raise InvalidIdError("process id %r is reserved for the container's own process; "
                                 "manage it with oci.runtime.container" % self.process_id)
        self.state = params["state"]
        self.signal = core.parse_signal(params["signal"]) if params.get("signal") else None
        check_seconds("timeout", params.get("timeout"))
        check_seconds("start_timeout", params.get("start_timeout"))
        self.user = parse_user(params["user"]) if params.get("user") not in (None, "") else None
        for key in ("stdin", "stdout", "stderr", "cwd"):
            if params.get(key) and not os.path.isabs(params[key]):
                raise InvalidValueError("%s must be an absolute path, got %r" % (key, params[key]))
        self.actions = ActionLog(check_mode)
        self.warnings: list[str] = []

    def run(self) -> dict[str, Any]:
        result = run_locked(self.layout, self.container_id, self.check_mode, self._converge)
        if self.state == "exited" and result["status"] == proc.RUNNING and not self.check_mode:
            result = self._wait_for_exit(result)
        return self._finish(result)

    # --- plan and act under the lock ------------------------------------------------------------

    def _converge(self) -> dict[str, Any]:
        if self.state == "absent":
            return self._absent()
        container = load_container(self.layout, self.container_id)
        record = container.process(self.process_id)
        before = record.describe()
        self._warn_if_args_differ(record, before)

        # Absent, or (for state=running) ended: start it. An ended run of state=exited stays ended.
        if before["status"] == proc.ABSENT or (self.state == "running"
                                               and before["status"] == proc.EXITED):
            self.actions.act("start", container.exec_process, self.process_id,
                             self._overrides(container), self._stdio(), self.params["start_timeout"])
        elif self.signal is not None and before["status"] == proc.RUNNING:
            self.actions.act("signal", record.signal, self.signal, target=self.signal)

        if self.check_mode:
            after = dict(before)
            if self.actions.has("start"):
                after.update({"id": self.process_id, "status": proc.RUNNING, "pid": None,
                              "exit_status": None, "oom_killed": False})
        else:
            after = record.describe()
        return self._result(before, after)

    def _absent(self) -> dict[str, Any]:
        container = core.Container.load(self.layout, self.container_id)
        gone = {"id": self.process_id, "status": proc.ABSENT, "pid": None, "exit_status": None,
                "oom_killed": False}
        if container is None:
            return self._result(gone, gone)
        record = container.process(self.process_id)
        before = record.describe()
        if before["status"] != proc.ABSENT:
            self.actions.act("remove", container.remove_process, record, ABSENT_GRACE)
        return self._result(before, gone)

    def _overrides(self, container: core.Container) -> dict[str, Any]:
        """Fields of the init process spec that this task replaces."""
        overrides: dict[str, Any] = {}
        if self.params.get("args"):
            overrides["args"] = list(self.params["args"])
        elif self.state != "absent":
            raise InvalidValueError("args is required to start process %r" % self.process_id)
        base_env = container.init.spec().get("env") or []
        env = dict(item.partition("=")[::2] for item in base_env)
        for key, value in (self.params.get("env") or {}).items():
            env[str(key)] = str(value)
        overrides["env"] = ["%s=%s" % item for item in env.items()]
        if self.params.get("cwd"):
            overrides["cwd"] = self.params["cwd"]
        if self.user is not None:
            overrides["user"] = self.user
        return overrides

    def _stdio(self) -> dict[str, str | None]:
        return {key: self.params.get(key) for key in ("stdin", "stdout", "stderr")}

    def _warn_if_args_differ(self, record: proc.ProcessRecord, before: Mapping[str, Any]) -> None:
        if before["status"] == proc.ABSENT or not self.params.get("args"):
            return
        recorded = record.spec().get("args")
        if recorded != list(self.params["args"]):
            self.warnings.append(
                "process %r of container %r was started with other args than this task's; it "
                "is not started again while its record exists (remove it with state=absent "
                "first)" % (self.process_id, self.container_id))

    # --- waiting and reporting ------------------------------------------------------------------

    def _wait_for_exit(self, result: dict[str, Any]) -> dict[str, Any]:
        record = proc.ProcessRecord(self.layout, self.container_id, self.process_id)
        timeout = self.params.get("timeout")
        if not record.wait_exit(timeout if timeout is not None else 1e9):
            raise ProcessTimeoutError(
                "process %r of container %r still runs after %s seconds; it keeps running and stays "
                "tracked (run this task again to wait more, or use state=absent to stop it)"
                % (self.process_id, self.container_id, timeout))
        after = record.describe()
        result.update({"process": after, "status": after["status"], "pid": after["pid"],
                       "exit_status": after["exit_status"]})
        if result.get("diff"):
            result["diff"]["after"] = {"status": after["status"]}
        return result

    def _finish(self, result: dict[str, Any]) -> dict[str, Any]:
        """Add the captured output of an ended process; fail like ``command`` on a non-zero exit."""
        if result["status"] != proc.EXITED:
            return result
        record = proc.ProcessRecord(self.layout, self.container_id, self.process_id)
        spec = record.spec()
        stdout, out_cut = read_tail(spec.get("containerdStdout") or record.path(proc.STDOUT_LOG))
        stderr, err_cut = read_tail(spec.get("containerdStderr") or record.path(proc.STDERR_LOG))
        result.update({"stdout": stdout, "stderr": stderr, "stdout_truncated": out_cut,
                       "stderr_truncated": err_cut})
        if self.state != "exited":
            return result
        code = result["exit_status"]
        if code is None:
            raise ProcessFailedError(
                "process %r of container %r ended, but its exit status was not recorded (its shim "
                "died)" % (self.process_id, self.container_id), result)
        if code != 0:
            raise ProcessFailedError("killed by the kernel's OOM killer (the container's memory "
                                     "limit)" if (result.get("process") or {}).get("oom_killed")
                                     else "non-zero return code", result)
        return result

    def _result(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "changed": bool(self.actions),
            "actions": self.actions.rendered(),
            "process": after,
            "exit_status": after.get("exit_status"),
            "pid": after.get("pid"),
            "status": after.get("status"),
        }
        if self.warnings:
            result["warnings"] = list(self.warnings)
        if result["changed"]:
            result["diff"] = {"before": {"status": before.get("status")},
                              "after": {"status": after.get("status")}}
        return result
