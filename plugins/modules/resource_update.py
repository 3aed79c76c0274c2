#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: resource_update
short_description: Converge the live cgroup limits of a running OCI container
version_added: 0.1.0
description:
  - Reads the container's current limits from its own cgroup files, sends only the limits that
    differ to the runtime (C(runc update --resources -)), then reads the cgroup files again. A
    value the kernel did not take fails the task; it is never reported as a success.
  - Only the options given are compared. Values are compared as the kernel stores them (cgroup v1
    rounds memory limits down to whole pages; cgroup v2 stores weights), so a rerun is a no-op.
  - Sizes take bytes or a number with a unit, in powers of 1024 (V(128m), V(1G), V(512KiB)); V(-1)
    means unlimited where the kernel allows it.
  - Limits set here apply to the running container only. When the container is created again (its
    C(config.json) changed, O(oci.runtime.container#module:force_recreate), or a start from
    V(stopped)), it starts from the limits in its C(config.json); run this module again, or put the
    limits in the bundle, to keep them.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  container:
    description:
      - Name (id) of the container, as managed by M(oci.runtime.container) with the same O(state_dir).
        It must be running or paused.
    type: str
    required: true
  cpu_shares:
    description:
      - Relative CPU weight, 2-262144 (1024 is the default share).
      - "cgroup v1: C(cpu.shares). cgroup v2: C(cpu.weight), converted as runc does:
        C(1 + (shares - 2) * 9999 / 262142)."
    type: int
  blkio_weight:
    description:
      - Relative block I/O weight, 10-1000.
      - "cgroup v1: C(blkio.weight) (or C(blkio.bfq.weight)). cgroup v2: C(io.bfq.weight) as it is,
        or else C(io.weight), converted to 1-10000 as runc does (and read back in the 10-1000 scale)."
      - Only where the disks' I/O scheduler supports weights; elsewhere the task fails and says so.
    type: int
  cpu_period:
    description:
      - CFS scheduling period in microseconds, 1000-1000000.
      - "cgroup v1: C(cpu.cfs_period_us). cgroup v2: the second field of C(cpu.max)."
    type: int
  cpu_quota:
    description:
      - CPU time in microseconds the container may use per O(cpu_period); V(-1) for no limit, at least
        1000 otherwise.
      - "cgroup v1: C(cpu.cfs_quota_us). cgroup v2: the first field of C(cpu.max) (V(max) for -1)."
    type: int
  cpuset_cpus:
    description:
      - CPUs the container may run on, such as V(0-1) or V(0,2). Each must be online on the host.
      - "cgroup v1 and v2: C(cpuset.cpus)."
    type: str
  cpuset_mems:
    description:
      - Memory nodes the container may allocate from, such as V(0). Each must be online on the host.
      - "cgroup v1 and v2: C(cpuset.mems)."
    type: str
  kernel_memory:
    description:
      - Kernel memory limit. Accepted for compatibility with the seed's Resource, but current runtimes
        and kernels ignore it; the module warns and changes nothing.
      - "cgroup v1: C(memory.kmem.limit_in_bytes) (deprecated). cgroup v2: none."
    type: raw
  kernel_tcp_memory:
    description:
      - Kernel TCP buffer memory limit. Ignored like O(kernel_memory), with a warning.
      - "cgroup v1: C(memory.kmem.tcp.limit_in_bytes) (deprecated). cgroup v2: none."
    type: raw
  memory:
    description:
      - Memory limit (a size, or V(-1)).
      - "cgroup v1: C(memory.limit_in_bytes). cgroup v2: C(memory.max)."
      - Lowering it below what the container uses fails with the runtime's error.
    type: raw
  memory_reservation:
    description:
      - Soft memory limit (a size, or V(-1)), not above O(memory).
      - "cgroup v1: C(memory.soft_limit_in_bytes). cgroup v2: C(memory.low)."
    type: raw
  memory_swap:
    description:
      - Limit of memory plus swap (a size at least O(memory), or V(-1)).
      - "cgroup v1: C(memory.memsw.limit_in_bytes). cgroup v2: C(memory.swap.max), which holds only
        the swap part (O(memory_swap) minus O(memory))."
    type: raw
  pids_limit:
    description:
      - Maximum number of processes (at least 1), or V(-1) for no limit.
      - "cgroup v1 and v2: C(pids.max)."
    type: int
notes:
  - On cgroup v2, RV(resources) reports O(cpu_shares) as the kernel's C(cpu.weight) (1-10000),
    because shares cannot be recovered from it exactly.
seealso:
  - module: oci.runtime.container
"""

EXAMPLES = r"""
- name: Give the web container 256 MiB and half a CPU
  oci.runtime.resource_update:
    container: web
    memory: 256m
    memory_swap: 512m
    cpu_period: 100000
    cpu_quota: 50000

- name: Pin it to the first CPU and allow at most 64 processes
  oci.runtime.resource_update:
    container: web
    cpuset_cpus: "0"
    pids_limit: 64

- name: Lift the memory limit
  oci.runtime.resource_update:
    container: web
    memory: -1
"""

RETURN = r"""
resources:
  description:
    - Every limit the host exposes for the container after the task (predicted in check mode), as
      the kernel holds it; -1 means unlimited.
  returned: success
  type: dict
  sample:
    cpu_shares: 1024
    cpu_period: 100000
    cpu_quota: 50000
    cpuset_cpus: "0-1"
    cpuset_mems: "0"
    memory: 268435456
    memory_reservation: -1
    memory_swap: 536870912
    pids_limit: -1
changed_fields:
  description: The options whose values were (or in check mode would be) sent to the runtime.
  returned: success
  type: list
  elements: str
  sample: [cpu_quota, memory]
cgroup_version:
  description: 1 or 2, the cgroup version the values were read from.
  returned: success
  type: int
  sample: 1
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.resource_update import (
    RESOURCE_OPTIONS,
    ResourceConverger,
)


def main():
    run_module(ResourceConverger, RESOURCE_OPTIONS)


if __name__ == "__main__":
    main()
