# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging a running container's live cgroup limits: read the kernel, send only what differs,
read the kernel again and fail if it did not take what was sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._module.common import (
    load_container,
    run_locked,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime import resources as res

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

UPDATABLE_STATUSES = (core.RUNNING, core.PAUSED)

# The resource_update module's own options (the common ones come from common.argument_spec); the
# plural module takes the same ones, but ``container``, as each container's ``resources``.
RESOURCE_OPTIONS: dict[str, dict[str, Any]] = dict(
    container=dict(type="str", required=True),
    cpu_shares=dict(type="int"),
    blkio_weight=dict(type="int"),
    cpu_period=dict(type="int"),
    cpu_quota=dict(type="int"),
    cpuset_cpus=dict(type="str"),
    cpuset_mems=dict(type="str"),
    kernel_memory=dict(type="raw"),
    kernel_tcp_memory=dict(type="raw"),
    memory=dict(type="raw"),
    memory_reservation=dict(type="raw"),
    memory_swap=dict(type="raw"),
    pids_limit=dict(type="int"),
)


class ResourceConverger(object):

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.layout = L.Layout(params["state_dir"])
        self.container_id = L.validate_id(params["container"], "container name")
        self.request = res.parse_request(params)
        self.warnings: list[str] = []

    def run(self) -> dict[str, Any]:
        return run_locked(self.layout, self.container_id, self.check_mode, self._converge)

    def _converge(self) -> dict[str, Any]:
        container = load_container(self.layout, self.container_id)
        status = container.status()
        if status not in UPDATABLE_STATUSES:
            raise res.ResourceError("container %r is %s: limits can only be changed on a running "
                                    "or paused container" % (self.container_id, status))
        pid = container.init.pid
        if pid is None:  # a running container's init has its pid recorded
            raise res.ResourceError("container %r has no recorded pid: its records are damaged"
                                    % self.container_id)
        files = res.CgroupFiles.of_pid(pid)
        before = res.read_kernel(files)
        changes = self._changes(files.version, before)
        after = before
        if changes and not self.check_mode:
            container.runtime.update(self.container_id, res.update_document(changes))
            after = res.read_kernel(files)
            self._verify(changes, after, files.version)
        elif changes:
            after = dict(before)
            after.update({f: res.to_kernel(f, v, files.version) for f, v in changes.items()})
        result: dict[str, Any] = {
            "changed": bool(changes),
            "changed_fields": sorted(changes),
            "resources": after,
            "cgroup_version": files.version,
        }
        if changes:
            result["diff"] = {"before": {f: before.get(f) for f in sorted(changes)},
                              "after": {f: after.get(f) for f in sorted(changes)}}
        if self.warnings:
            result["warnings"] = self.warnings
        return result

    def _changes(self, version: int, current: Mapping[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for field, value in self.request.items():
            if field in res.IGNORED_FIELDS:
                self.warnings.append(
                    "%s is ignored: current runtimes and kernels no longer support kernel memory "
                    "limits; nothing was changed for it" % field)
                continue
            if field not in current:
                raise res.ResourceError(
                    "%s cannot be set on this host: the kernel exposes no cgroup v%d file for it "
                    "(for blkio_weight, the disk's I/O scheduler must support weights)"
                    % (field, version))
            if current[field] != res.to_kernel(field, value, version):
                changes[field] = value
        self._check_swap(changes, current)
        return changes

    def _check_swap(self, changes: dict[str, Any], current: Mapping[str, Any]) -> None:
        swap = self.request.get("memory_swap")
        memory = self.request.get("memory", current.get("memory"))
        if swap is None or swap == res.UNLIMITED or memory is None:
            return
        if memory == res.UNLIMITED or swap < memory:
            raise res.ResourceError("memory_swap: %d must be -1 or at least the memory limit (%d)"
                                    % (swap, memory))
        if "memory_swap" not in changes and "memory" in changes:
            changes["memory_swap"] = swap  # the kernel wants both written in a matching order

    @staticmethod
    def _verify(changes: Mapping[str, Any], after: Mapping[str, Any], version: int) -> None:
        wrong = []
        for field, value in sorted(changes.items()):
            expected = res.to_kernel(field, value, version)
            if after.get(field) != expected:
                wrong.append("%s: sent %s, the cgroup holds %s" % (field, value, after.get(field)))
        if wrong:
            raise res.ResourceError("the kernel did not take these limits: " + "; ".join(wrong))
