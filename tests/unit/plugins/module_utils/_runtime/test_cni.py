# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cni.py: a network's settings and configuration list, finding lists, and the CNI protocol as the
runner speaks it (checked against a fake plugin that records what it was given)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import cni as C


def settings(**params):
    params.setdefault("name", "web")
    params.setdefault("subnet", "10.250.1.0/24")
    return C.network_settings(params)


def test_settings_defaults():
    s = settings()
    assert s["gateway"] == "10.250.1.1"
    assert s["bridge"] == "oci-web"
    assert s["ip_masquerade"] is True and s["internal"] is False
    assert s["dns"] == [] and s["plugins"] == []


def test_bridge_name_fits_the_kernel_limit():
    long_name = "a-network-with-a-long-name"
    bridge = C.default_bridge(long_name)
    assert len(bridge) <= 15 and bridge.startswith("oci-")
    assert bridge == C.default_bridge(long_name) != C.default_bridge(long_name + "x")
    with pytest.raises(C.CniError, match="not a valid interface name"):
        settings(bridge="a-bridge-name-too-long")


@pytest.mark.parametrize("params, message", [
    ({"subnet": "10.250.1.1/24"}, "not a network in CIDR"),
    ({"subnet": "10.250.1.0/31"}, "too small"),
    ({"subnet": None}, "subnet is required"),
    ({"gateway": "10.250.2.1"}, "not a host address"),
    ({"gateway": "10.250.1.255"}, "not a host address"),
    ({"gateway": "nope"}, "not an IP address"),
    ({"dns": ["1.1.1"]}, "not an IP address"),
    ({"name": "bad/name"}, "not valid"),
    ({"plugins": [{"type": "../x"}]}, "plugins\\[0\\]"),
])
def test_bad_settings(params, message):
    with pytest.raises(C.CniError, match=message):
        settings(**params)


def test_conflist_default_chain():
    conflist = C.build_conflist(settings(dns=["10.250.1.53"], gateway="10.250.1.254"))
    assert conflist["cniVersion"] == "1.0.0" and conflist["name"] == "web"
    assert [p["type"] for p in conflist["plugins"]] == ["bridge", "portmap", "firewall"]
    bridge = conflist["plugins"][0]
    assert bridge["bridge"] == "oci-web" and bridge["isGateway"] and bridge["ipMasq"]
    assert bridge["ipam"] == {"type": "host-local",
                              "ranges": [[{"subnet": "10.250.1.0/24", "gateway": "10.250.1.254"}]],
                              "routes": [{"dst": "0.0.0.0/0"}]}
    assert bridge["dns"] == {"nameservers": ["10.250.1.53"]}
    assert conflist["plugins"][1]["capabilities"] == {"portMappings": True}
    assert conflist["plugins"][2]["ingressPolicy"] == "same-bridge"


def test_conflist_internal_and_extra_plugins():
    conflist = C.build_conflist(settings(internal=True, plugins=[{"type": "tuning", "mtu": 1400}]))
    bridge = conflist["plugins"][0]
    assert "routes" not in bridge["ipam"] and bridge["ipMasq"] is False
    assert conflist["plugins"][-1] == {"type": "tuning", "mtu": 1400}
    assert C.build_conflist(settings(ip_masquerade=False))["plugins"][0]["ipMasq"] is False


def test_find_conflist(tmp_path):
    directory = str(tmp_path)
    with pytest.raises(C.CniError, match="does not exist"):
        C.find_conflist(directory, "web")
    conflist = C.build_conflist(settings())
    other = dict(conflist, name="other")
    with open(os.path.join(directory, "90-other.conflist"), "wb") as handle:
        handle.write(C.conflist_bytes(other))
    with open(os.path.join(directory, "broken.conflist"), "w") as handle:
        handle.write("{")
    assert C.find_conflist(directory, "other") == (os.path.join(directory, "90-other.conflist"), other)
    with open(C.conflist_path(directory, "web"), "wb") as handle:
        handle.write(C.conflist_bytes(conflist))
    assert C.find_conflist(directory, "web")[1] == conflist
    with pytest.raises(C.CniError, match="not a CNI configuration list"):
        C.read_conflist(os.path.join(directory, "broken.conflist"))


def test_ipam_leases(tmp_path):
    directory = tmp_path / "web"
    directory.mkdir()
    (directory / "10.250.1.2").write_text("c1\neth0\n")
    (directory / "10.250.1.3").write_text("c2\r\neth1")
    (directory / "last_reserved_ip.0").write_text("10.250.1.3")
    (directory / "lock").write_text("")
    assert C.ipam_leases("web", str(tmp_path)) == {"10.250.1.2": "c1", "10.250.1.3": "c2"}
    assert C.ipam_leases("none", str(tmp_path)) == {}


# --- the protocol, against a fake plugin ----------------------------------------------------------

FAKE = r'''#!%s
import json, os, sys
config = json.load(sys.stdin)
env = {k: v for k, v in os.environ.items() if k.startswith("CNI_")}
with open(os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl"), "a") as log:
    log.write(json.dumps({"type": config["type"], "env": env, "config": config}) + "\n")
if config.get("fail") == env["CNI_COMMAND"]:
    print(json.dumps({"code": 11, "msg": "it broke", "details": "on purpose"}))
    sys.exit(1)
if env["CNI_COMMAND"] == "ADD":
    result = config.get("prevResult") or {"cniVersion": config["cniVersion"], "interfaces": [],
                                            "ips": []}
    result["interfaces"] = result["interfaces"] + [{"name": config["type"]}]
    print(json.dumps(result))
'''


@pytest.fixture
def fake(tmp_path):
    for name in ("one", "two", "three"):
        path = tmp_path / name
        path.write_text(FAKE % sys.executable)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def calls():
        log = tmp_path / "calls.jsonl"
        if not log.exists():
            return []
        lines = log.read_text().splitlines()
        log.unlink()
        return [json.loads(line) for line in lines]
    return str(tmp_path), calls


def conflist(**extra):
    plugins = [{"type": "one", "capabilities": {"portMappings": True}},
               {"type": "two", "runtimeConfig": {"stale": 1}}, {"type": "three"}]
    for index, values in extra.items():
        plugins[int(index[1:])].update(values)
    return {"cniVersion": "1.0.0", "name": "web", "plugins": plugins}


def test_add_chains_results_and_sets_the_environment(fake):
    directory, calls = fake
    runner = C.Plugins(conflist(), [directory, "/nonexistent"])
    ports = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]
    result = runner.add("c1", "/run/netns/x", "eth0", [("IP", "10.250.1.9")],
                        {"portMappings": ports})
    assert [i["name"] for i in result["interfaces"]] == ["one", "two", "three"]
    made = calls()
    assert [c["type"] for c in made] == ["one", "two", "three"]
    first, second, third = made
    assert first["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1",
                            "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
                            "CNI_PATH": directory + ":/nonexistent",
                            "CNI_ARGS": "IgnoreUnknown=1;IP=10.250.1.9"}
    assert first["config"]["name"] == "web" and first["config"]["cniVersion"] == "1.0.0"
    assert first["config"]["runtimeConfig"] == {"portMappings": ports}
    assert "prevResult" not in first["config"]
    assert "runtimeConfig" not in second["config"]  # no capability, stale value dropped
    assert [i["name"] for i in second["config"]["prevResult"]["interfaces"]] == ["one"]
    assert [i["name"] for i in third["config"]["prevResult"]["interfaces"]] == ["one", "two"]


def test_del_runs_in_reverse_with_the_result_and_every_plugin(fake):
    directory, calls = fake
    runner = C.Plugins(conflist(p1={"fail": "DEL"}), [directory])
    with pytest.raises(C.CniError, match=r"network 'web': CNI plugin two DEL failed: it broke "
                                         r"\(on purpose\) \[CNI error code 11\]"):
        runner.delete("c1", "", "eth0", {"interfaces": [{"name": "x"}]})
    made = calls()
    assert [c["type"] for c in made] == ["three", "two", "one"]
    assert all(c["env"]["CNI_COMMAND"] == "DEL" and c["env"]["CNI_NETNS"] == "" for c in made)
    assert all(c["config"]["prevResult"] == {"interfaces": [{"name": "x"}]} for c in made)
    assert "CNI_ARGS" not in made[0]["env"]


def test_add_stops_at_the_first_error_and_check_passes_the_result(fake):
    directory, calls = fake
    with pytest.raises(C.CniError, match="CNI plugin one ADD failed: it broke"):
        C.Plugins(conflist(p0={"fail": "ADD"}), [directory]).add("c1", "/run/netns/x", "eth0")
    assert [c["type"] for c in calls()] == ["one"]
    C.Plugins(conflist(), [directory]).check("c1", "/run/netns/x", "eth0", {"ips": []})
    made = calls()
    assert [c["env"]["CNI_COMMAND"] for c in made] == ["CHECK"] * 3
    assert all(c["config"]["prevResult"] == {"ips": []} for c in made)
    C.Plugins(dict(conflist(), cniVersion="0.3.1"), [directory]).check("c1", "", "eth0", {})
    assert calls() == []


def test_missing_plugin_is_named(fake):
    directory, dummy_calls = fake
    runner = C.Plugins(dict(conflist(), plugins=[{"type": "nope"}]), [directory])
    with pytest.raises(C.CniError, match="CNI plugin 'nope' of network 'web' is not in"):
        runner.check_installed()


def test_bridge_of_and_subnets():
    conflist_ = C.build_conflist(settings(bridge="br-x"))
    assert C.bridge_of(conflist_) == "br-x"
    assert C.bridge_of({"plugins": [{"type": "macvlan"}]}) is None


def test_masquerade_chain_is_the_bridge_plugins():
    # The chain the bridge plugin 1.1.1 made for network h7exp, container cX.
    assert C.masquerade_chain("h7exp", "cX") == "CNI-f4930abd2570f04de943fa4a"
