# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""oci.runtime.containers on every host of the inventory, through pytest-ansible's ``ansible_module``.

``ansible_module`` runs a module on the hosts of ``--ansible-host-pattern`` in ``--inventory``
(here the two hosts of inventory.ini, both this machine, each with its own state dir and runc root:
the module arguments are templated per host, as in a playbook). The result is keyed by host.
"""

from __future__ import annotations

import json
import os
import subprocess

from ansible.template import trust_as_template

HOSTS = {"pa-host-a", "pa-host-b"}


def runc_list(work, host):
    """{id: status} of a host's containers, from runc with that host's root."""
    proc = subprocess.run(["runc", "--root", os.path.join(work["root"], host, "runc"), "list",
                           "--format", "json"], capture_output=True, text=True, check=True)
    return {c["id"]: c["status"] for c in json.loads(proc.stdout or "null") or []}


def per_host(text):
    """A module argument templated for each host, as in a playbook. Since ansible-core 2.19, strings
    that come from Python are data, not templates, unless marked as trusted templates."""
    return trust_as_template(text)


def test_each_host_converges_its_own_set(ansible_module, work):
    containers = getattr(ansible_module, "oci.runtime.containers")
    host_dirs = {"state_dir": per_host("{{ pa_dir }}/state"), "runtime_root": per_host("{{ pa_dir }}/runc")}
    # Ids must be unique on the machine (runc names cgroups after them): the host is part of them.
    names = [per_host(work["prefix"] + "{{ inventory_hostname[-1] }}-%d" % n) for n in (1, 2, 3)]
    declared = [{"name": name,
                 "build": {"path": per_host("{{ pa_dir }}/bundle"),
                           "rootfs_dir": os.path.join(work["busybox"], "rootfs"),
                           "args": ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 1; done']},
                 "labels": {"host": per_host("{{ inventory_hostname }}")}}
                for name in names]

    first = containers(containers=declared, **host_dirs)
    assert set(first.keys()) == HOSTS
    for host, result in first.items():
        assert result.is_changed, (host, result)
        want = {work["prefix"] + "%s-%d" % (host[-1], n) for n in (1, 2, 3)}
        assert {c["name"] for c in result["containers"]} == want
        assert all(c["container"]["labels"]["host"] == host for c in result["containers"])
        assert runc_list(work, host) == dict.fromkeys(want, "running")

    again = containers(containers=declared, **host_dirs)
    for host, result in again.items():
        assert result.is_ok, (host, result)

    # An empty declaration with prune removes every container this module manages there.
    pruned = containers(containers=[], prune=True, prune_stop_timeout=5, **host_dirs)
    assert set(pruned.keys()) == HOSTS
    for host, result in pruned.items():
        assert result.is_changed, (host, result)
        assert len(result["pruned"]) == 3
        assert runc_list(work, host) == {}
