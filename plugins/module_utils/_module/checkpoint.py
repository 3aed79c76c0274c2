# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one named checkpoint of a container: present, absent, or restored from."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._module.actions import ActionLog
from ansible_collections.oci.runtime.plugins.module_utils._module.common import (
    build_runtime,
    check_seconds,
    run_locked,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime import checkpoint as ckpt
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    NoSuchContainerError,
    RuntimeCoreError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STATES = ("present", "absent", "restored")
CHECKPOINTABLE = (core.RUNNING, core.PAUSED)

# The checkpoint module's own options (the common ones come from common.argument_spec).
CHECKPOINT_OPTIONS: dict[str, dict[str, Any]] = dict(
    container=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=list(STATES), default="present"),
    checkpoint_dir=dict(type="path"),
    exit=dict(type="bool", default=False),
    tcp=dict(type="bool", default=False),
    unix_sockets=dict(type="bool", default=False),
    shell=dict(type="bool", default=False),
    empty_ns=dict(type="list", elements="str", default=[]),
    bundle=dict(type="path"),
    criu_path=dict(type="path"),
    force=dict(type="bool", default=False),
    start_timeout=dict(type="float", default=60),
)


class CheckpointConverger(object):

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.layout = L.Layout(params["state_dir"])
        self.container_id = L.validate_id(params["container"], "container name")
        self.name = L.validate_id(params["name"], "checkpoint name")
        directory = params.get("checkpoint_dir") or os.path.join(ckpt.DEFAULT_CHECKPOINT_ROOT,
                                                                 self.container_id)
        self.store = ckpt.CheckpointStore(directory)
        self.state = params["state"]
        check_seconds("start_timeout", params.get("start_timeout"))
        self.actions = ActionLog(check_mode)

    def run(self) -> dict[str, Any]:
        return run_locked(self.layout, self.container_id, self.check_mode, self._converge)

    def _converge(self) -> dict[str, Any]:
        before = self.store.get(self.name)
        container = core.Container.load(self.layout, self.container_id)
        status_before = container.status() if container is not None else "absent"
        if self.state == "present":
            checkpoint = self._present(before, container)
        elif self.state == "absent":
            checkpoint = self._absent(before)
        else:
            checkpoint = before
            container = self._restored(before, container)
        result: dict[str, Any] = {
            "changed": bool(self.actions),
            "actions": self.actions.rendered(),
            "checkpoint": checkpoint or {},
            "checkpoints": self.store.list(),
        }
        if container is not None and not self.check_mode:
            container.forget_runtime_state()
            result["container"] = container.describe()
        if self.actions and self.state == "restored":
            status_after = result.get("container", {}).get("status", "running")
            result["diff"] = {"before": {"container_status": status_before},
                              "after": {"container_status": status_after}}
        elif self.actions:
            result["diff"] = {"before": _summary(before), "after": _summary(checkpoint)}
        return result

    # --- present / absent -----------------------------------------------------------------------

    def _present(self, before: dict[str, Any] | None,
                 container: core.Container | None) -> dict[str, Any] | None:
        if before is not None and not self.params.get("force"):
            return before
        if container is None:
            raise NoSuchContainerError(self.container_id, self.layout.state_dir,
                                       "nothing to checkpoint")
        status = container.status()
        if status not in CHECKPOINTABLE:
            raise ckpt.CheckpointError("container %r is %s: only a running or paused container can "
                                       "be checkpointed" % (self.container_id, status))
        criu = ckpt.find_criu(self.params.get("criu_path"))
        options = ckpt.checkpoint_options(self.params)
        self.actions.note("checkpoint", "and exit" if options["exit"] else "")
        if self.check_mode:
            return {"name": self.name, "path": self.store.path(self.name), "options": options}
        return self.store.create(container, self.name, options, criu,
                                 force=bool(self.params.get("force")))

    def _absent(self, before: dict[str, Any] | None) -> dict[str, Any] | None:
        if before is None:
            return None
        self.actions.act("remove", self.store.remove, self.name)
        return None

    # --- restored -------------------------------------------------------------------------------

    def _restored(self, checkpoint: dict[str, Any] | None,
                  container: core.Container | None) -> core.Container | None:
        if checkpoint is None:
            raise ckpt.CheckpointError("no checkpoint named %r in %s" % (self.name, self.store.directory))
        if container is not None and container.status() in CHECKPOINTABLE:
            return container  # it runs: nothing to restore
        criu = ckpt.find_criu(self.params.get("criu_path"))
        registered = False
        if container is None:
            bundle = self.params.get("bundle") or checkpoint.get("bundle")
            if not bundle:
                raise NoSuchContainerError(self.container_id, self.layout.state_dir,
                                           "give bundle to restore it from checkpoint %r"
                                           % self.name)
            self.actions.note("register")
            if not self.check_mode:
                runtime = build_runtime(self.params)
                container = core.Container.register(self.layout, runtime, self.container_id, bundle)
                registered = True
        self.actions.note("restore")
        if self.check_mode or container is None:  # None only in check mode: registered above
            return None
        work = self.store.work_dir(self.name, "restore")
        L.remove_tree(work)
        L.make_private_dir(work)
        try:
            container.restore(self.name, checkpoint["path"], work,
                              ckpt.option_args(checkpoint["options"], container.runtime), criu,
                              self.params["start_timeout"])
        except RuntimeCoreError as exc:
            if registered:
                container.remove()
            raise ckpt.CheckpointError("restore of container %r from checkpoint %r failed: %s%s" % (
                self.container_id, self.name, exc.msg,
                _criu_detail(os.path.join(work, "restore.log"), criu)))
        finally:
            L.make_tree_private(work)  # CRIU's log follows the umask
        return container


def _criu_detail(log_path: str, criu: str) -> str:
    detail = ckpt.criu_errors(log_path)
    return ("; CRIU: " + detail if detail else "") + ckpt.criu_check_hint(criu)


def _summary(checkpoint: Mapping[str, Any] | None) -> dict[str, Any]:
    if not checkpoint:
        return {"state": "absent"}
    return {"state": "present", "name": checkpoint.get("name"), "created": checkpoint.get("created")}
