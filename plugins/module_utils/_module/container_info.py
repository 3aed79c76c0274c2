# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading containers without changing anything: their records, status, processes, checkpoints,
live cgroup limits and usage.

No lock is taken and nothing is created (not even the state dir): every read is of files that
writers replace atomically, and the runtime is asked ``state`` once per container at most.
Nothing here calls ``fail_json``: core errors propagate to the module's ``main()``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._runtime import checkpoint as ckpt
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import resources as res
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import check_labels
from ansible_collections.oci.runtime.plugins.module_utils._module.common import damaged_records_hint

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime

# Statuses in which the init process has a cgroup to read.
LIVE_STATUSES = (core.RUNNING, core.PAUSED, core.CREATED)

# The container_info module's own options (the common ones come from common.argument_spec), and
# the rules between them (AnsibleModule's keyword arguments of the same names).
CONTAINER_INFO_OPTIONS: dict[str, dict[str, Any]] = dict(
    name=dict(type="str"),
    labels=dict(type="dict"),
    checkpoint_root=dict(type="path", default=ckpt.DEFAULT_CHECKPOINT_ROOT),
    checkpoint_dir=dict(type="path"),
)
CONTAINER_INFO_RULES = dict(required_by={"checkpoint_dir": "name"})


def validate_params(params: Mapping[str, Any]) -> None:
    """Raise a core error for input that cannot be right."""
    if params.get("name") is not None:
        L.validate_id(params["name"], "container name")
    check_labels(params.get("labels"))
    if params.get("checkpoint_dir") and not params.get("name"):
        raise ValueError("checkpoint_dir is the checkpoint directory of one container: give name "
                         "with it, or use checkpoint_root for all containers")


def labels_match(labels: Mapping[str, str], wanted: Mapping[str, object]) -> bool:
    """True when every wanted label is there with the same value (values compared as text)."""
    return all(key in labels and labels[key] == str(value) for key, value in wanted.items())


class ContainerInfo(object):
    """``run()`` returns the module result: ``containers``, a list, sorted by id. It only reads, so
    check mode (``check_mode``) changes nothing in what it does."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 runtime: OciRuntime | None = None, cgroup_root: str = "/sys/fs/cgroup") -> None:
        validate_params(params)
        self.params = params
        self.check_mode = check_mode
        self.layout = L.Layout(params["state_dir"])
        self.wanted_labels = check_labels(params.get("labels"))
        self._runtime = runtime  # tests: one runtime object for every container
        self.cgroup_root = cgroup_root

    def run(self) -> dict[str, Any]:
        name = self.params.get("name")
        ids = [name] if name else self.layout.container_ids()
        containers = []
        for container_id in ids:
            with damaged_records_hint(self.layout, container_id):
                container = core.Container.load(self.layout, container_id, runtime=self._runtime)
                if container is None or not labels_match(container.record.labels, self.wanted_labels):
                    continue
                containers.append(self.describe(container))
        return {"changed": False, "containers": containers}

    def checkpoint_dir(self, container_id: str) -> str:
        if self.params.get("checkpoint_dir"):
            return self.params["checkpoint_dir"]
        root = self.params.get("checkpoint_root") or ckpt.DEFAULT_CHECKPOINT_ROOT
        return os.path.join(root, container_id)

    def describe(self, container: core.Container) -> dict[str, Any]:
        info = container.describe()  # the one runtime `state` call
        info["runtime_root"] = container.record.runtime_root
        info["checkpoints"] = ckpt.CheckpointStore(self.checkpoint_dir(container.id)).list()
        info["resources"], info["stats"] = self.cgroup_view(info)
        return info

    def cgroup_view(self, info: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        """(limits, usage) of the init process's cgroup; both empty when it does not run."""
        if info["status"] not in LIVE_STATUSES or not info.get("pid"):
            return {}, {}
        try:
            files = res.CgroupFiles.of_pid(info["pid"], self.cgroup_root)
        except res.ResourceError:
            return {}, {}  # it ended between the runtime's answer and this read
        return res.read_kernel(files), res.read_stats(files)
