# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""networking.py: a bundle's networks (checking, the config document) and what is derived from an
attachment record (the container's networks, /etc/hosts, /etc/resolv.conf)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import networking as NW
from ansible_collections.oci.runtime.plugins.module_utils._runtime import spec as S
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError


def test_check_networks_normalises():
    assert NW.check_networks(None) is None
    assert NW.check_networks(["web", {"name": "db", "ip": "10.250.1.9", "aliases": ["pg"],
                                      "ports": [{"container_port": "5432", "protocol": "TCP"},
                                                {"host_port": 53, "container_port": 53,
                                                 "protocol": "udp", "host_ip": "127.0.0.1"}]}]) == [
        {"name": "web"},
        {"name": "db", "ip": "10.250.1.9", "aliases": ["pg"],
         "ports": [{"host_port": 5432, "container_port": 5432, "protocol": "tcp", "host_ip": ""},
                   {"host_port": 53, "container_port": 53, "protocol": "udp",
                    "host_ip": "127.0.0.1"}]}]


@pytest.mark.parametrize("networks, message", [
    ("web", "must be a list"),
    ([{"name": "web"}, "web"], "given twice"),
    ([{"name": "web", "ip": "10.1"}], "not an IP address"),
    ([{"name": "web", "mtu": 1}], "unknown keys mtu"),
    ([{"name": "web", "aliases": ["a b"]}], "not a valid host name"),
    ([{"name": "web", "ports": [{"container_port": 0}]}], "port number"),
    ([{"name": "web", "ports": [{"container_port": 80, "protocol": "sctp"}]}], "tcp or udp"),
    ([{"name": "web", "ports": [{"container_port": 80}, {"container_port": 80}]}],
     "published twice"),
    ([{"name": "a/b"}], "not valid"),
])
def test_check_networks_refuses(networks, message):
    with pytest.raises(BundleError, match=message):
        NW.check_networks(networks)


def test_config_gets_annotation_netns_and_mounts():
    settings = S.check_settings({"path": "/srv/b/web", "networks": ["web"]})
    config = S.build_config(settings)
    assert json.loads(config["annotations"][NW.ANNOTATION]) == [{"name": "web"}]
    path = NW.netns_path_of(config)
    assert path == "/run/netns/" + NW.netns_name_for("/srv/b/web")
    assert NW.networks_of(config) == [{"name": "web"}]
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert mounts["/etc/hosts"]["source"] == "/srv/b/web/.oci-runtime-network/hosts"
    assert "ro" in mounts["/etc/resolv.conf"]["options"]
    # Without networks nothing of it is there.
    plain = S.build_config(S.check_settings({"path": "/srv/b/web"}))
    assert NW.ANNOTATION not in plain.get("annotations", {}) and NW.netns_path_of(plain) == ""


def test_config_refuses_a_shared_or_joined_network_namespace():
    with pytest.raises(BundleError, match="shares the host's network"):
        S.build_config(S.check_settings({"path": "/b", "networks": ["web"],
                                         "namespaces": ["pid", "mount"]}))
    with pytest.raises(BundleError, match="joins the network namespace"):
        S.build_config(S.check_settings({"path": "/b", "networks": ["web"], "namespaces": [
            "pid", "mount", {"type": "network", "path": "/proc/1/ns/net"}]}))


def test_user_mount_on_etc_hosts_wins():
    config = S.build_config(S.check_settings({
        "path": "/b", "networks": ["web"],
        "mounts": [{"destination": "/etc/hosts", "type": "bind", "source": "/srv/hosts",
                    "options": ["rbind", "ro"]}]}))
    assert [m["source"] for m in config["mounts"] if m["destination"] == "/etc/hosts"] == \
        ["/srv/hosts"]


RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "oci-web", "mac": "aa:aa:aa:aa:aa:aa"},
                   {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                   {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/n"}],
    "ips": [{"interface": 2, "address": "10.250.1.5/24", "gateway": "10.250.1.1"}],
    "dns": {},
}


def record(dns=None):
    plugin = {"type": "bridge"}
    if dns:
        plugin["dns"] = {"nameservers": dns}
    return {"netns": "/run/netns/n", "attachments": [
        {"name": "web", "ifname": "eth0", "conflist": {"name": "web", "plugins": [plugin]},
         "aliases": ["www"], "result": RESULT},
        {"name": "half", "ifname": "eth1", "conflist": {"name": "half", "plugins": []},
         "result": None}]}


def test_describe(tmp_path):
    from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
    layout = L.Layout(str(tmp_path))
    L.make_private_dir(layout.container_dir("c1"))
    assert NW.describe(layout, "c1") == []
    L.atomic_write_json(str(tmp_path / "c1" / NW.RECORD_FILE), record())
    assert NW.describe(layout, "c1") == [{"name": "web", "interface": "eth0", "ip": "10.250.1.5",
                                          "mac": "cc:cc:cc:cc:cc:cc", "gateway": "10.250.1.1"}]


def test_hosts_and_resolv():
    hosts = NW.hosts_text("box", record(), "c1")
    assert "10.250.1.5\tbox c1 www\n" in hosts and hosts.startswith("127.0.0.1\tlocalhost\n")
    host = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n"
    assert NW.resolv_text(record(), host) == \
        "nameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n"
    assert NW.resolv_text(record(dns=["10.250.1.53"]), host) == \
        "nameserver 10.250.1.53\nsearch example.org\noptions ndots:2\n"
    assert NW.resolv_text(record(), "nameserver ::1\n").startswith("#")


def test_release_stale_drops_only_leases_from_before_the_boot(tmp_path):
    import os

    class Runner(object):
        name = "web"

    directory = tmp_path / "web"
    directory.mkdir()
    booted = NW.boot_time()
    assert booted > 0
    for address, owner, age in (("10.250.1.2", "c1", -3600), ("10.250.1.3", "c1", 60),
                                ("10.250.1.4", "c2", -3600)):
        path = directory / address
        path.write_text("%s\neth0\n" % owner)
        os.utime(str(path), (booted + age, booted + age))
    NW.release_stale(Runner(), "c1", str(tmp_path))
    assert sorted(os.listdir(str(directory))) == ["10.250.1.3", "10.250.1.4"]
