# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one CNI network: its configuration list in the CNI configuration directory.

``present`` writes ``<cni_config_dir>/<name>.conflist`` (temp file, then rename) when its bytes
would change; ``absent`` removes it, and with it the bridge, the firewall plugin's isolation rules
for the bridge and host-local's lease directory, refusing while containers hold addresses on it
(unless ``force``). Nothing here calls ``fail_json``: core errors propagate to ``main()``.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._runtime import cni as C
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Union

    Subnet = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

STATES = ("present", "absent")

NETWORK_OPTIONS: dict[str, dict[str, Any]] = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=list(STATES), default="present"),
    subnet=dict(type="str"),
    gateway=dict(type="str"),
    bridge=dict(type="str"),
    ip_masquerade=dict(type="bool", default=True),
    internal=dict(type="bool", default=False),
    dns=dict(type="list", elements="str"),
    plugins=dict(type="list", elements="dict"),
    force=dict(type="bool", default=False),
    cni_config_dir=dict(type="path", default=C.DEFAULT_CONFIG_DIR),
    cni_plugin_dirs=dict(type="list", elements="path", default=list(C.DEFAULT_PLUGIN_DIRS)),
)

NETWORK_REQUIRED_IF = [("state", "present", ("subnet",))]


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", "replace")


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise C.CniError("cannot read %s: %s" % (path, exc.strerror), path=path)


class NetworkConverger(object):
    """Converges one network to the task's declaration; ``run()`` returns the module result."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.name = C.validate_name(params["name"])
        self.state = params.get("state") or "present"
        self.config_dir = params.get("cni_config_dir") or C.DEFAULT_CONFIG_DIR
        if not os.path.isabs(self.config_dir):
            raise C.CniError("cni_config_dir must be an absolute path, got %r" % self.config_dir)
        self.plugin_dirs = params.get("cni_plugin_dirs") or list(C.DEFAULT_PLUGIN_DIRS)
        self.path = C.conflist_path(self.config_dir, self.name)
        # the checked settings (state=present only)
        self.settings: dict[str, Any] = C.network_settings(params) if self.state == "present" else {}
        self.actions: list[str] = []
        self.warnings: list[str] = []

    def run(self) -> dict[str, Any]:
        before = _read_bytes(self.path)
        if before is not None:
            C.read_conflist(self.path)  # a damaged file fails here, with its path
        if self.state == "absent":
            return self._absent(before)
        return self._present(before)

    # --- present ------------------------------------------------------------------------------

    def _present(self, before: bytes | None) -> dict[str, Any]:
        conflist = C.build_conflist(self.settings)
        C.Plugins(conflist, self.plugin_dirs).check_installed()
        self._check_conflicts()
        after = C.conflist_bytes(conflist)
        if after != before:
            self.actions.append("write %s" % self.path)
            containers = self._containers()
            if before is not None and containers:
                self.warnings.append(
                    "network %r changed while containers are attached (%s): they keep the old "
                    "configuration until they are recreated" % (self.name, ", ".join(containers)))
            if not self.check_mode:
                if not os.path.isdir(self.config_dir):
                    os.makedirs(self.config_dir, 0o755)
                L.atomic_write(self.path, after, mode=0o644)
        return self._result(before, after, self._describe(self.settings))

    def _check_conflicts(self) -> None:
        """Refuse a bridge or subnet that another network of the directory, or a host route,
        already uses."""
        subnet = ipaddress.ip_network(self.settings["subnet"])
        bridge = self.settings["bridge"]
        try:
            entries = sorted(os.listdir(self.config_dir))
        except OSError:
            entries = []
        for entry in entries:
            path = os.path.join(self.config_dir, entry)
            if not entry.endswith(C.CONFLIST_SUFFIX) or path == self.path:
                continue
            try:
                other = C.read_conflist(path)
            except C.CniError:
                continue
            if other is None or other.get("name") == self.name:
                if other is not None:
                    raise C.CniError("network %r is already defined in %s; remove that file or "
                                     "use another name" % (self.name, path), path=path)
                continue
            if C.bridge_of(other) == bridge:
                raise C.CniError("bridge %s is used by network %r (%s); choose another bridge"
                                 % (bridge, other["name"], path), path=path)
            for other_subnet in _subnets(other):
                if other_subnet.version == subnet.version and other_subnet.overlaps(subnet):
                    raise C.CniError("subnet %s overlaps %s of network %r (%s)"
                                     % (subnet, other_subnet, other["name"], path), path=path)
        if subnet.version == 4:
            for network, interface in C.host_routes():
                if interface != bridge and network.overlaps(subnet):
                    raise C.CniError("subnet %s overlaps the host's route to %s on %s; choose a "
                                     "subnet this host does not use" % (subnet, network, interface))

    # --- absent -------------------------------------------------------------------------------

    def _absent(self, before: bytes | None) -> dict[str, Any]:
        if before is None:
            return self._result(None, None, {})
        containers = self._containers()
        if containers and not self.params.get("force"):
            raise C.CniError("network %r still has containers attached (%s): remove them first, or "
                             "set force to remove the network anyway (they lose their network)"
                             % (self.name, ", ".join(containers)), network=self.name)
        self.actions.append("remove %s" % self.path)
        if not self.check_mode:
            conflist = C.read_conflist(self.path)
            os.unlink(self.path)
            if conflist is not None:  # None only if it went away meanwhile (unlink raised then)
                C.forget_network(conflist)
        return self._result(before, None, {})

    # --- result -------------------------------------------------------------------------------

    def _containers(self) -> list[str]:
        return sorted(set(C.ipam_leases(self.name).values()))

    def _describe(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": self.name, "subnet": settings["subnet"], "gateway": settings["gateway"],
                "bridge": settings["bridge"], "config_path": self.path,
                "containers": self._containers()}

    def _result(self, before: bytes | None, after: bytes | None,
                network: Mapping[str, Any]) -> dict[str, Any]:
        changed = bool(self.actions)
        result: dict[str, Any] = {"changed": changed, "actions": list(self.actions),
                                  "network": network}
        if changed:
            result["diff"] = {"before_header": self.path, "after_header": self.path,
                              "before": _text(before), "after": _text(after)}
        if self.warnings:
            result["warnings"] = list(self.warnings)
        return result


def _subnets(conflist: Mapping[str, Any]) -> list[Subnet]:
    found: list[Subnet] = []
    for plugin in conflist.get("plugins") or []:
        ipam = plugin.get("ipam") or {}
        ranges = list(ipam.get("ranges") or [])
        if ipam.get("subnet"):
            ranges.append([{"subnet": ipam["subnet"]}])
        for rangeset in ranges:
            for item in rangeset if isinstance(rangeset, list) else []:
                try:
                    found.append(ipaddress.ip_network(str(item.get("subnet")), strict=False))
                except (ValueError, AttributeError):
                    continue
    return found
