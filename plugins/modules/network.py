#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: Manage a CNI bridge network for OCI containers
version_added: 0.3.0
description:
  - Writes the CNI network configuration list C(<cni_config_dir>/<name>.conflist) of a bridge
    network that containers join through the O(oci.runtime.bundle#module:networks) option of
    M(oci.runtime.bundle). The standard CNI plugins apply it when a container is created
    (C(containernetworking-plugins) on Debian).
  - The plugin chain is C(bridge) (with C(host-local) address management), C(portmap) (published
    ports) and C(firewall) (forwarding rules; containers of different networks cannot reach each
    other), then the O(plugins) the task adds. The list's C(cniVersion) is C(1.0.0).
  - Idempotent by content; the file is written to a temporary file and renamed. Check mode and diff
    mode (the list before and after) are supported.
  - Nothing is created on the host until a container joins the network. The bridge appears with the
    first container; with O(state=absent) the module removes it again, with the firewall plugin's
    isolation rules for it and C(host-local)'s lease directory (C(/var/lib/cni/networks/<name>)).
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  name:
    description:
      - The network name (letters, digits, C(_), C(.), C(-); up to 64 characters). Containers name
        it in the C(name) of an item of O(oci.runtime.bundle#module:networks).
    type: str
    required: true
  state:
    description:
      - V(present) writes the configuration list.
      - V(absent) removes it, the bridge, the isolation rules of the bridge and the lease
        directory. It fails while containers hold addresses on the network (it names them) unless
        O(force) is set.
    type: str
    choices: [present, absent]
    default: present
  subnet:
    description:
      - The network's addresses in CIDR notation, for example V(10.88.0.0/24). IPv4, or IPv6 where
        the host has IPv6. Required with O(state=present).
      - Refused when it overlaps a route of the host (other than the default route) or the subnet
        of another network in O(cni_config_dir).
    type: str
  gateway:
    description:
      - The bridge's address, the containers' gateway. Default the first address of O(subnet).
    type: str
  bridge:
    description:
      - Name of the bridge interface on the host (at most 15 characters).
      - Default C(oci-<name>), or C(oci-) and 11 hex digits of the name's SHA-256 when that is too
        long. Two networks cannot share a bridge.
    type: str
  ip_masquerade:
    description:
      - Masquerade traffic from the containers to destinations outside O(subnet) (their way out).
    type: bool
    default: true
  internal:
    description:
      - The containers get no default route and no masquerading; they reach only their network
        (and the host's address on the bridge). Published ports still answer on the host.
    type: bool
    default: false
  dns:
    description:
      - Name servers written to the containers' C(/etc/resolv.conf). Without them the host's
        C(/etc/resolv.conf) name servers are used, except loopback ones (not reachable from a
        container).
    type: list
    elements: str
  plugins:
    description:
      - More plugin configurations appended to the chain, each a dictionary with at least C(type)
        (the plugin's file name in O(cni_plugin_dirs)) and the plugin's own settings, for example
        a C(tuning) plugin with C(sysctl) settings, or C(bandwidth) with its rate limits.
    type: list
    elements: dict
  force:
    description:
      - With O(state=absent), remove the network even while containers are attached. They keep
        their interface but lose the bridge; remove or recreate them.
    type: bool
    default: false
  cni_config_dir:
    description:
      - The CNI configuration directory. Containers are attached with the lists in the default
        directory.
    type: path
    default: /etc/cni/net.d
  cni_plugin_dirs:
    description:
      - Directories searched for the plugin binaries, in order. Every plugin of the chain must be
        found, otherwise the task fails and writes nothing.
    type: list
    elements: path
    default: [/usr/lib/cni, /opt/cni/bin]
notes:
  - O(state_dir), O(runtime) and O(runtime_root) are accepted (so that C(module_defaults) for the
    group C(group/oci.runtime.oci) apply) but not used.
  - A container holds an address when C(host-local) has a lease for it in
    C(/var/lib/cni/networks/<name>); RV(network.containers) lists them.
  - Changing a network does not change containers already attached to it; they keep the
    configuration they were attached with until they are recreated (the task warns).
  - See C(docs/networking.md) in the collection for the model and how to use other CNI plugins.
requirements:
  - The standard CNI plugins (C(bridge), C(host-local), C(portmap), C(firewall)), version 1.0 or
    newer, and C(iptables) on the managed host.
seealso:
  - module: oci.runtime.bundle
  - module: oci.runtime.container
"""

EXAMPLES = r"""
- name: A network for the web containers
  oci.runtime.network:
    name: web
    subnet: 10.88.10.0/24

- name: A network with no way out, with its own name server
  oci.runtime.network:
    name: backend
    subnet: 10.88.11.0/24
    internal: true
    dns: [10.88.11.53]

- name: A bundle whose container joins it and publishes port 80 on 127.0.0.1:8080
  oci.runtime.bundle:
    path: /srv/bundles/web
    rootfs_archive: /srv/images/busybox.tar
    args: [httpd, -f, -p, "80"]
    networks:
      - name: web
        ip: 10.88.10.20
        ports:
          - host_port: 8080
            container_port: 80
            host_ip: 127.0.0.1

- name: Remove the network once its containers are gone
  oci.runtime.network:
    name: web
    state: absent
"""

RETURN = r"""
network:
  description: The network as configured; empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: The network name.
      type: str
      sample: web
    subnet:
      description: Its subnet.
      type: str
      sample: 10.88.10.0/24
    gateway:
      description: The bridge's address.
      type: str
      sample: 10.88.10.1
    bridge:
      description: The bridge interface.
      type: str
      sample: oci-web
    config_path:
      description: The configuration list's path.
      type: str
      sample: /etc/cni/net.d/web.conflist
    containers:
      description: Ids of the containers holding an address on it (from C(host-local)'s leases).
      type: list
      elements: str
      sample: [web-1, web-2]
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: [write /etc/cni/net.d/web.conflist]
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.network import (
    NETWORK_OPTIONS,
    NETWORK_REQUIRED_IF,
    NetworkConverger,
)


def main():
    run_module(NetworkConverger, NETWORK_OPTIONS, required_if=NETWORK_REQUIRED_IF)


if __name__ == "__main__":
    main()
