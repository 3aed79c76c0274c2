# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkConverger: the configuration list in a temporary directory, with stand-in plugin files
(present, check mode, diff, idempotence, conflicts, missing plugins)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module.network import NetworkConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime import cni as C


@pytest.fixture
def dirs(tmp_path):
    plugins = tmp_path / "bin"
    plugins.mkdir()
    for name in ("bridge", "host-local", "portmap", "firewall"):
        (plugins / name).write_text("#!/bin/sh\nexit 1\n")
        (plugins / name).chmod(0o755)
    return str(tmp_path / "net.d"), str(plugins)


def params(dirs, **extra):
    config_dir, plugin_dir = dirs
    values = {"name": "unit-net", "state": "present", "subnet": "10.251.77.0/24",
              "cni_config_dir": config_dir, "cni_plugin_dirs": [plugin_dir]}
    values.update(extra)
    return values


def test_present_check_mode_diff_and_idempotence(dirs):
    config_dir = dirs[0]
    result = NetworkConverger(params(dirs), check_mode=True).run()
    assert result["changed"] and result["diff"]["before"] == ""
    assert json.loads(result["diff"]["after"])["name"] == "unit-net"
    assert not os.path.exists(config_dir)
    result = NetworkConverger(params(dirs)).run()
    path = os.path.join(config_dir, "unit-net.conflist")
    assert result["changed"] and result["network"] == {
        "name": "unit-net", "subnet": "10.251.77.0/24", "gateway": "10.251.77.1",
        "bridge": "oci-unit-net", "config_path": path, "containers": []}
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert NetworkConverger(params(dirs)).run()["changed"] is False
    changed = NetworkConverger(params(dirs, internal=True), check_mode=True).run()
    assert changed["changed"] and '"ipMasq": false' in changed["diff"]["after"]
    assert NetworkConverger(params(dirs)).run()["changed"] is False  # check mode wrote nothing


def test_conflicts_and_missing_plugins(dirs):
    NetworkConverger(params(dirs)).run()
    with pytest.raises(C.CniError, match="overlaps 10.251.77.0/24 of network 'unit-net'"):
        NetworkConverger(params(dirs, name="other", subnet="10.251.77.128/25")).run()
    with pytest.raises(C.CniError, match="bridge oci-unit-net is used by network 'unit-net'"):
        NetworkConverger(params(dirs, name="other", subnet="10.251.78.0/24",
                                bridge="oci-unit-net")).run()
    os.unlink(os.path.join(dirs[1], "firewall"))
    with pytest.raises(C.CniError, match="CNI plugin 'firewall'"):
        NetworkConverger(params(dirs, name="third", subnet="10.251.79.0/24")).run()
    assert not os.path.exists(os.path.join(dirs[0], "third.conflist"))


def test_absent_when_there_is_nothing(dirs):
    result = NetworkConverger(params(dirs, state="absent", subnet=None)).run()
    assert result == {"changed": False, "actions": [], "network": {}}
