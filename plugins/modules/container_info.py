#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_info
short_description: Read OCI containers (runc, crun) without changing them
version_added: 0.1.0
description:
  - Returns the containers recorded under O(state_dir) by M(oci.runtime.container), or the one
    named by O(name), with what the other modules of the collection know about them.
  - For each container, the fields that M(oci.runtime.container) returns, its processes with their
    exit statuses (M(oci.runtime.process)), its checkpoints (M(oci.runtime.checkpoint)), its live
    cgroup limits (as M(oci.runtime.resource_update) reads them) and its current usage (CPU time,
    memory, tasks).
  - The status is the runtime's, cross-checked with the collection's records. A container whose
    process died is reported V(stopped) with its exit status; one whose shim died has a null
    RV(containers[].shim_pid), and a null exit status if the process ended after the shim.
  - Changes nothing and creates nothing, not even O(state_dir); it takes no lock, so it never waits
    for a task that converges a container. The runtime is asked C(state) once per container.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
attributes:
  diff_mode:
    support: N/A
    details: This module does not change anything.
options:
  name:
    description:
      - The container id. Without it, every container recorded under O(state_dir) is returned.
      - A container that does not exist is not an error; RV(containers) is then empty.
    type: str
  labels:
    description:
      - Only return containers that have all these labels with these values (values are compared
        as text). Other labels of a container do not matter.
    type: dict
  checkpoint_root:
    description:
      - Directory under which each container's checkpoints are looked for, in
        C(<checkpoint_root>/<container id>), the default of M(oci.runtime.checkpoint).
    type: path
    default: /var/lib/oci-runtime/checkpoints
  checkpoint_dir:
    description:
      - The checkpoint directory of the container named by O(name), when its checkpoints were made
        with O(oci.runtime.checkpoint#module:checkpoint_dir). Requires O(name).
    type: path
notes:
  - O(runtime) and O(runtime_root) are accepted (so that C(module_defaults) for the group
    C(group/oci.runtime.oci) apply) but not used; each container is read through the runtime and
    runtime root it was created with.
  - Containers started by other tools are not listed; only the records under O(state_dir) are.
seealso:
  - module: oci.runtime.container
  - module: oci.runtime.process
  - module: oci.runtime.checkpoint
  - module: oci.runtime.resource_update
"""

EXAMPLES = r"""
- name: Read one container
  oci.runtime.container_info:
    name: web
  register: web_info

- name: Show its status and memory use
  ansible.builtin.debug:
    msg: >-
      {{ web_info.containers[0].status }},
      {{ web_info.containers[0].stats.memory_usage_bytes | default('n/a') }} bytes
  when: web_info.containers | length > 0

- name: Read every container of an application
  oci.runtime.container_info:
    state_dir: /run/my-app
    labels:
      app: web
  register: app_info

- name: Fail when one of them is not running
  ansible.builtin.assert:
    that:
      - app_info.containers | rejectattr('status', 'eq', 'running') | list | length == 0
    fail_msg: "not running: {{ app_info.containers | rejectattr('status', 'eq', 'running') | map(attribute='id') | list }}"

- name: Exit statuses of the one-shot processes of a container
  ansible.builtin.debug:
    msg: "{{ web_info.containers[0].processes | items2dict(key_name='id', value_name='exit_status') }}"
  when: web_info.containers | length > 0
"""

RETURN = r"""
containers:
  description:
    - The containers, sorted by id. Empty when O(name) does not exist or nothing matches O(labels).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The container id.
      type: str
      sample: web
    status:
      description: V(running), V(paused), V(created) or V(stopped).
      type: str
      sample: running
    pid:
      description: Host pid of the container's init process; null unless it runs.
      type: int
      sample: 4242
    bundle:
      description: Path of the bundle it was created from.
      type: str
      sample: /srv/bundles/web
    created:
      description: When its init process was last created, UTC, ISO 8601.
      type: str
      sample: "2026-11-30T06:33:26Z"
    labels:
      description: Recorded labels.
      type: dict
      sample: {app: web}
    runtime:
      description: The runtime that drives it.
      type: str
      sample: runc
    runtime_root:
      description: The runtime's C(--root) it was created with; null for the runtime's default.
      type: str
      sample: /run/runc
    shim_pid:
      description: Pid of the shim watching the init process; null once it is gone.
      type: int
      sample: 4240
    exit_status:
      description:
        - Exit status of the init process (128 + signal number when killed by a signal); null while it
          runs, when it never ran, or when nobody saw it end (its shim died).
      type: int
      sample: 0
    exit_status_unknown:
      description:
        - True when the container ran and stopped but nobody saw how it ended (its shim was killed,
          or its records were rebuilt from the runtime's state after the state dir was wiped);
          C(exit_status) is then null rather than an invented number. False otherwise.
      type: bool
      sample: false
    oom_killed:
      description:
        - True when the kernel's OOM killer ended the init process (the container's memory limit).
          It ended by SIGKILL (C(exit_status) 137) and the OOM kill counter of the container's memory
          cgroup (cgroup v2 C(memory.events), v1 C(memory.oom_control)) rose since it started. The
          counter is kept before the runtime deletes the cgroup. False otherwise.
      type: bool
      sample: false
      version_added: 0.3.0
    config_digest:
      description: SHA-256 of the bundle's C(config.json) when the container was last created.
      type: str
      sample: "sha256:8a266d93a7d16fce82f587d41e31013244b46f31b5895ca03bc173b31602bafd"
    networks:
      description:
        - The CNI networks the container is attached to now (empty when it has none, or while it
          is stopped), as O(oci.runtime.bundle#module:networks) declares them.
      type: list
      elements: dict
      version_added: 0.3.0
      contains:
        name:
          description: The network name.
          type: str
          sample: web
        interface:
          description: The interface in the container.
          type: str
          sample: eth0
        ip:
          description: Its address on the network.
          type: str
          sample: 10.88.10.20
        mac:
          description: Its MAC address.
          type: str
          sample: "8a:d4:48:44:81:8e"
        gateway:
          description: The network's gateway.
          type: str
          sample: 10.88.10.1
    processes:
      description: The processes started in it with M(oci.runtime.process), sorted by id.
      type: list
      elements: dict
      contains:
        id:
          description: The process id.
          type: str
          sample: migrate-42
        status:
          description: V(running) or V(exited).
          type: str
          sample: exited
        pid:
          description: Host pid while it runs, else null.
          type: int
          sample: 4300
        exit_status:
          description: Exit status once it exited; null while it runs or when nobody saw it end.
          type: int
          sample: 0
        oom_killed:
          description: As RV(oci.runtime.process#module:process.oom_killed).
          type: bool
          sample: false
          version_added: 0.3.0
    checkpoints:
      description: Its checkpoints, sorted by name, as M(oci.runtime.checkpoint) returns them.
      type: list
      elements: dict
      contains:
        name:
          description: The checkpoint name.
          type: str
          sample: before-upgrade
        path:
          description: Directory holding the CRIU images and C(checkpoint.json).
          type: str
          sample: /var/lib/oci-runtime/checkpoints/web/before-upgrade
        created:
          description: When it was taken, UTC, ISO 8601.
          type: str
          sample: "2026-11-30T07:01:02Z"
        size_bytes:
          description: Size of the images on disk.
          type: int
          sample: 1843200
        container:
          description: The container it was taken from.
          type: str
          sample: web
        bundle:
          description: The bundle of that container.
          type: str
          sample: /srv/bundles/web
        config_digest:
          description: The container's config digest when it was taken.
          type: str
          sample: "sha256:8a266d93a7d16fce82f587d41e31013244b46f31b5895ca03bc173b31602bafd"
        options:
          description: The checkpoint options (V(tcp), V(unix_sockets), V(shell), V(exit), V(empty_ns)).
          type: dict
          sample: {tcp: false, unix_sockets: false, shell: false, exit: false, empty_ns: []}
    resources:
      description:
        - The live cgroup limits of its init process, in the terms of M(oci.runtime.resource_update)
          (-1 is unlimited); only the limits this host exposes. Empty unless it runs (or is paused
          or created).
      type: dict
      sample: {memory: 268435456, memory_swap: -1, cpu_shares: 1024, cpu_quota: -1, cpu_period: 100000, pids_limit: -1}
    stats:
      description:
        - Current usage read from its cgroup files. Empty unless it runs (or is paused or created);
          a value this host does not expose is left out.
      type: dict
      contains:
        cpu_usage_ns:
          description: CPU time used by all its tasks, in nanoseconds (v1 C(cpuacct.usage), v2 C(cpu.stat) C(usage_usec)).
          type: int
          sample: 51234567
        memory_usage_bytes:
          description: Memory in use (v1 C(memory.usage_in_bytes), v2 C(memory.current)).
          type: int
          sample: 1286144
        memory_limit_bytes:
          description: Its memory limit, -1 when unlimited (v1 C(memory.limit_in_bytes), v2 C(memory.max)).
          type: int
          sample: 268435456
        pids_current:
          description: Number of tasks in it (C(pids.current)).
          type: int
          sample: 3
        cgroup_version:
          description: V(1) or V(2).
          type: int
          sample: 1
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.container_info import (
    CONTAINER_INFO_OPTIONS,
    CONTAINER_INFO_RULES,
    ContainerInfo,
)


def main():
    run_module(ContainerInfo, CONTAINER_INFO_OPTIONS, **CONTAINER_INFO_RULES)


if __name__ == "__main__":
    main()
