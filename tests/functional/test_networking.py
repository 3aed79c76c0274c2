# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers on CNI networks, with the real CNI plugins (Debian's containernetworking-plugins),
real runc and busybox: reachability inside a network, a port published on 127.0.0.1, isolation
between networks, and nothing left on the host after removal or a failed create.

Every test makes its own networks (names, bridges and 10.2xx.yyy.0/24 subnets unique to the test
and not routed on this host) in the default CNI configuration directory, and removes them. Traffic
goes only to 127.0.0.1 and to the test's own containers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import urllib.request

import pytest

from conftest import BUNDLE_TOOL_MODULE, unique_id, wait_for  # noqa: F401  (conftest sets the path)

from ansible_collections.oci.runtime.plugins.module_utils._module.bundle import BundleConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container_info import ContainerInfo
from ansible_collections.oci.runtime.plugins.module_utils._module.network import NetworkConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime import cni as C
from ansible_collections.oci.runtime.plugins.module_utils._runtime import networking as NW
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError

PLUGINS = ("bridge", "host-local", "portmap", "firewall")


@pytest.fixture(autouse=True)
def _require_plugins():
    missing = [p for p in PLUGINS if not any(os.access(os.path.join(d, p), os.X_OK)
                                             for d in C.DEFAULT_PLUGIN_DIRS)]
    if missing:
        pytest.fail("the CNI plugins %s are missing (install containernetworking-plugins)"
                    % ", ".join(missing), pytrace=False)


def _routed():
    return [network for network, dummy_interface in C.host_routes()]


def free_subnet():
    """A 10.2xx.yyy.0/24 that no route of this host covers and no other test uses (by pid)."""
    routed = _routed()
    seed = os.getpid() * 7 + len(os.listdir(C.DEFAULT_CONFIG_DIR) if os.path.isdir(
        C.DEFAULT_CONFIG_DIR) else [])
    for attempt in range(200):
        number = (seed + attempt * 37) % (40 * 256)
        subnet = ipaddress.ip_network("10.%d.%d.0/24" % (200 + number // 256, number % 256))
        if any(subnet.overlaps(r) for r in routed):
            continue
        taken = False
        for entry in os.listdir(C.DEFAULT_CONFIG_DIR) if os.path.isdir(C.DEFAULT_CONFIG_DIR) else []:
            with open(os.path.join(C.DEFAULT_CONFIG_DIR, entry)) as handle:
                if str(subnet) in handle.read():
                    taken = True
        if not taken:
            return subnet
    raise AssertionError("no free 10.2xx subnet")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Net(object):
    """The networks, bundles and containers of one test, through the modules' convergers."""

    def __init__(self, env):
        self.env = env
        self.networks = []

    def network(self, label, **options):
        name = unique_id(label)[:40]
        subnet = options.pop("subnet", None) or free_subnet()
        params = {"name": name, "state": "present", "subnet": str(subnet), "gateway": None,
                  "bridge": "t%x" % (abs(hash(name)) % 0xfffffffffff), "ip_masquerade": True,
                  "internal": False, "dns": None, "plugins": None, "force": False,
                  "cni_config_dir": C.DEFAULT_CONFIG_DIR,
                  "cni_plugin_dirs": list(C.DEFAULT_PLUGIN_DIRS)}
        params.update(options)
        result = NetworkConverger(params).run()
        self.networks.append(name)
        return result["network"]

    def bundle(self, label, args, networks, hostname=None):
        path = str(self.env.tmp_path / ("nb-" + label))
        rootfs = str(self.env.tmp_path / "busybox")
        if not os.path.isdir(rootfs):
            BUNDLE_TOOL_MODULE.build_bundle(rootfs)
        params = dict.fromkeys(("rootfs_archive", "image", "image_ref", "env", "cwd", "user",
                                "mounts", "namespaces", "capabilities", "resources", "annotations",
                                "spec"))
        params.update({"path": path, "state": "present", "rootfs_dir": os.path.join(rootfs, "rootfs"),
                       "allow_devices": False, "readonly_rootfs": True, "args": args,
                       "hostname": hostname or label, "networks": networks})
        BundleConverger(params).run()
        return path

    def container(self, label, bundle, **overrides):
        name = self.env.new_id(label)
        return ContainerConverger(self.env.params(name, bundle, **overrides)).run()["container"]

    def remove(self, name):
        ContainerConverger(self.env.params(name, None, state="absent")).run()

    def exec(self, name, args, timeout=20):
        """Run ``args`` in container ``name`` (as oci.runtime.process does); (exit status, output)."""
        container = self.env.load(name)
        record = container.exec_process(unique_id("p")[:60], {"args": list(args)}, {}, 30)
        assert record.wait_exit(timeout), "%s did not finish" % (args,)
        with open(record.path("stdout.log")) as out, open(record.path("stderr.log")) as err:
            return record.exit_status, out.read() + err.read()

    def cleanup(self):
        for name in list(self.env.ids):
            try:
                self.remove(name)
            except RuntimeCoreError:
                pass
        for name in self.networks:
            NetworkConverger({"name": name, "state": "absent", "force": True,
                              "cni_config_dir": C.DEFAULT_CONFIG_DIR,
                              "cni_plugin_dirs": list(C.DEFAULT_PLUGIN_DIRS)}).run()


@pytest.fixture
def net(env):
    networks = Net(env)
    yield networks
    networks.cleanup()


HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]
# busybox wget's own -T option crashes Debian's busybox-static: the timeout applet bounds it.


def answers(port):
    """The body of /hosts from 127.0.0.1:``port``, or None while nothing answers there."""
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/hosts" % port, timeout=5).read()
    except OSError:
        return None


def _address(container):
    assert container["networks"], container
    return container["networks"][0]["ip"]


def test_two_containers_reach_each_other_and_a_published_port_answers(net):
    network = net.network("one")
    subnet = ipaddress.ip_network(network["subnet"])
    static = str(subnet.network_address + 10)
    port = free_port()
    web_bundle = net.bundle("web", HTTPD, [{"name": network["name"], "ip": static,
                                            "aliases": ["www"],
                                            "ports": [{"host_port": port, "container_port": 80,
                                                       "host_ip": "127.0.0.1"}]}])
    web = net.container("web", web_bundle)
    assert web["status"] == "running"
    assert web["networks"] == [{"name": network["name"], "interface": "eth0", "ip": static,
                                "mac": web["networks"][0]["mac"],
                                "gateway": network["gateway"]}]
    assert re.match(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", web["networks"][0]["mac"])

    client_bundle = net.bundle("client", ["sleep", "3600"], [network["name"]])
    client = net.container("client", client_bundle)
    client_ip = _address(client)
    assert ipaddress.ip_address(client_ip) in subnet and client_ip != static

    # By address, inside the network; the served file is web's /etc/hosts (its own, with alias).
    status, output = net.exec(client["id"], ["timeout", "10", "wget", "-q", "-O", "-",
                                             "http://%s/hosts" % static])
    assert status == 0, output
    assert re.search(r"^%s\s+web %s www$" % (re.escape(static), re.escape(web["id"])), output,
                     re.M), output
    # The client's own /etc/hosts names the web container (on the network before it).
    status, output = net.exec(client["id"], ["cat", "/etc/hosts"])
    assert "%s\t%s" % (static, web["id"]) in output, output
    # The published port, from the host, on 127.0.0.1 only.
    body = wait_for(lambda: answers(port), what="the published port").decode()
    assert web["id"] in body
    # container_info shows the same networks.
    info = ContainerInfo({"name": web["id"], "state_dir": net.env.state_dir, "labels": None,
                          "checkpoint_root": str(net.env.tmp_path / "cp"),
                          "checkpoint_dir": None, "runtime": None, "runtime_root": None}).run()
    assert info["containers"][0]["networks"] == web["networks"]
    # The network lists its containers; it refuses to go while they are there.
    result = NetworkConverger({"name": network["name"], "state": "present",
                               "subnet": network["subnet"], "bridge": network["bridge"],
                               "cni_config_dir": C.DEFAULT_CONFIG_DIR}).run()
    assert result["changed"] is False
    assert result["network"]["containers"] == sorted([web["id"], client["id"]])
    with pytest.raises(C.CniError, match="still has containers attached"):
        NetworkConverger({"name": network["name"], "state": "absent",
                          "cni_config_dir": C.DEFAULT_CONFIG_DIR}).run()


def test_two_networks_are_isolated(net):
    one = net.network("iso-a")
    two = net.network("iso-b")
    web = net.container("web", net.bundle("web", HTTPD, [one["name"]]))
    near = net.container("near", net.bundle("near", ["sleep", "3600"], [one["name"]]))
    far = net.container("far", net.bundle("far", ["sleep", "3600"], [two["name"]]))
    url = "http://%s/hosts" % _address(web)
    status, output = net.exec(near["id"], ["timeout", "3", "wget", "-q", "-O", "-", url])
    assert status == 0, output
    status, output = net.exec(far["id"], ["timeout", "3", "wget", "-q", "-O", "-", url])
    assert status != 0, output


def _iptables():
    lines = []
    for command in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run([command], capture_output=True, text=True, check=True)
        lines.extend(line for line in proc.stdout.splitlines()
                     if line.startswith("-A"))
    return lines


def _links():
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_removal_and_a_failed_create_leave_the_host_as_it_was(net):
    network = net.network("clean")
    subnet = network["subnet"].rsplit(".", 1)[0] + "."

    def mine(lines):
        return sorted(line for line in lines
                      if subnet in line or network["bridge"] in line or network["name"] in line)
    rules_before = mine(_iptables())
    port = free_port()
    bundle = net.bundle("app", HTTPD, [{"name": network["name"],
                                        "ports": [{"host_port": port, "container_port": 80,
                                                   "host_ip": "127.0.0.1"}]}])
    app = net.container("app", bundle)
    record = NW.read_record(net.env.layout, app["id"])
    veth = record["attachments"][0]["result"]["interfaces"][1]["name"]
    netns = record["netns"]
    assert veth in _links() and os.path.exists(netns)
    assert mine(_iptables()) != rules_before
    wait_for(lambda: answers(port),
             what="the published port")

    # Stopped: nothing held; started again: same network, a fresh namespace.
    stopped = ContainerConverger(net.env.params(app["id"], bundle, state="stopped")).run()
    assert stopped["container"]["networks"] == []
    assert veth not in _links() and not os.path.exists(netns)
    assert C.ipam_leases(network["name"]) == {}
    again = ContainerConverger(net.env.params(app["id"], bundle)).run()["container"]
    assert again["networks"][0]["name"] == network["name"]

    net.remove(app["id"])
    assert not os.path.exists(netns)
    assert C.ipam_leases(network["name"]) == {}
    # A create that fails in the plugins (a static address outside the subnet) leaves nothing.
    bad = net.bundle("bad", ["sleep", "3600"], [{"name": network["name"], "ip": "10.1.2.3"}])
    with pytest.raises(RuntimeCoreError, match="10.1.2.3"):
        net.container("bad", bad)
    assert not os.path.exists("/run/netns/" + NW.netns_name_for(bad))
    assert C.ipam_leases(network["name"]) == {}
    # A missing network fails before anything is made.
    missing = net.bundle("missing", ["sleep", "3600"], ["no-such-network-%d" % os.getpid()])
    with pytest.raises(RuntimeCoreError, match="does not exist"):
        net.container("missing", missing)

    NetworkConverger({"name": network["name"], "state": "absent",
                      "cni_config_dir": C.DEFAULT_CONFIG_DIR}).run()
    net.networks.remove(network["name"])
    assert mine(_iptables()) == rules_before
    assert network["bridge"] not in _links() and veth not in _links()
    assert not os.path.exists(os.path.join(C.IPAM_DATA_DIR, network["name"]))
    assert not os.path.exists(os.path.join(C.DEFAULT_CONFIG_DIR, network["name"] + ".conflist"))


def test_killed_container_comes_back_with_its_address_and_a_changed_port_recreates(net):
    import signal
    network = net.network("back")
    subnet = network["subnet"].rsplit(".", 1)[0] + "."
    static = subnet + "20"
    first_port, second_port = free_port(), free_port()

    def declare(port):
        return net.bundle("app", HTTPD, [{"name": network["name"], "ip": static, "ports": [
            {"host_port": port, "container_port": 80, "host_ip": "127.0.0.1"}]}])

    bundle = declare(first_port)
    app = net.container("app", bundle)
    netns_before = NW.read_record(net.env.layout, app["id"])["netns"]
    # The monitor and the container are killed: the container is stopped, its network still held.
    container = net.env.load(app["id"])
    shim_pid, dummy_alive = container.init.shim()
    os.kill(shim_pid, signal.SIGKILL)
    os.kill(app["pid"], signal.SIGKILL)
    wait_for(lambda: net.env.load(app["id"]).status() == "stopped", what="the container to stop")
    # Converging it again detaches the old attachment and attaches afresh, with the same address.
    again = ContainerConverger(net.env.params(app["id"], bundle)).run()["container"]
    assert again["status"] == "running" and again["networks"][0]["ip"] == static
    assert C.ipam_leases(network["name"]) == {static: app["id"]}
    assert NW.read_record(net.env.layout, app["id"])["netns"] == netns_before
    wait_for(lambda: answers(first_port),
             what="the published port after the restart")
    # Another published port changes config.json: the container is recreated on the new port only.
    bundle = declare(second_port)
    result = ContainerConverger(net.env.params(app["id"], bundle)).run()
    assert any(action.startswith("recreate") for action in result["actions"]), result["actions"]
    wait_for(lambda: answers(second_port),
             what="the new published port")
    rules = "\n".join(_iptables())
    assert "--dports %d " % second_port in rules + " "
    assert "--dports %d " % first_port not in rules + " "
    net.remove(app["id"])
    assert C.ipam_leases(network["name"]) == {}
    assert not os.path.exists(netns_before)


def test_checkpoint_and_restore_keep_the_address(net):
    from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import (
        CHECKPOINT_OPTIONS,
        CheckpointConverger,
    )
    network = net.network("ckpt")
    # No listening socket: CRIU on this kernel cannot dump one (a socket option it reads fails).
    bundle = net.bundle("loop", ["sh", "-c", "while true; do sleep 0.1; done"], [network["name"]])
    app = net.container("loop", bundle)
    address = _address(app)
    params = {key: spec.get("default") for key, spec in CHECKPOINT_OPTIONS.items()}
    params.update({"container": app["id"], "name": "cp", "exit": True,
                   "checkpoint_dir": str(net.env.tmp_path / "checkpoints"),
                   "state_dir": net.env.state_dir, "runtime": net.env.runtime.name,
                   "runtime_root": net.env.runtime_root})
    CheckpointConverger(dict(params)).run()
    stopped = net.env.load(app["id"]).describe()
    assert stopped["status"] == "stopped" and stopped["networks"][0]["ip"] == address
    CheckpointConverger(dict(params, state="restored")).run()
    restored = net.env.load(app["id"]).describe()
    assert restored["status"] == "running"
    assert restored["networks"][0]["ip"] == address
    assert C.ipam_leases(network["name"]) == {address: app["id"]}
    status, output = net.exec(app["id"], ["ip", "-o", "-4", "addr", "show", "eth0"])
    assert status == 0 and address in output, output


def test_a_namespace_deleted_behind_our_back_still_leaves_no_rule(net):
    network = net.network("gone")
    app = net.container("app", net.bundle("app", ["sleep", "3600"], [network["name"]]))
    address = _address(app)
    record = NW.read_record(net.env.layout, app["id"])
    assert any(address in line for line in _iptables())
    subprocess.run(["ip", "netns", "delete", os.path.basename(record["netns"])], check=True)
    net.remove(app["id"])
    assert not [line for line in _iptables() if address + "/" in line]
    assert C.masquerade_chain(network["name"], app["id"]) not in "\n".join(_iptables())
    assert C.ipam_leases(network["name"]) == {}
