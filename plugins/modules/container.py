#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container
short_description: Converge an OCI container (runc, crun) to running, paused, stopped or absent
version_added: 0.1.0
description:
  - Creates, starts, pauses, resumes, stops and removes a container run directly by an OCI runtime
    such as runc, with no container daemon.
  - Each container process is watched by a small shim that outlives the task, reaps the process and
    records its exit status, so later tasks report the truth even after the container ended.
  - The module is idempotent. A changed C(config.json) in the bundle (its SHA-256 digest) or a
    change of O(bundle), O(runtime), O(runtime_root), O(runtime_args), O(stdin), O(stdout),
    O(stderr) or O(no_pivot_root) recreates the container; a change of O(labels) is applied in place.
  - Options left out are not compared. An existing container keeps what it was created with (so
    O(name) and O(state) alone are enough to pause, stop or remove it); a new one gets the defaults.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  name:
    description:
      - The container id. Letters, digits, V(_), V(.) and V(-), starting with a letter or digit, at
        most 128 characters.
    type: str
    required: true
  bundle:
    description:
      - Absolute path of the OCI bundle (a directory with C(config.json) and the root filesystem).
      - Required to create a container; for an existing one, omitting it keeps the recorded bundle.
      - C(config.json) must set C(process.terminal) to V(false).
    type: path
  state:
    description:
      - V(running) creates and starts the container if needed, resumes a paused one, and starts a
        stopped one afresh from its bundle.
      - V(paused) does what V(running) does, then freezes the container.
      - V(stopped) sends O(stop_signal), waits O(stop_timeout) seconds, then sends C(SIGKILL); the
        exit status is kept. A container that does not exist yet is only recorded, not run.
      - V(absent) stops the container and removes the runtime's state and the collection's records.
    type: str
    choices: [running, paused, stopped, absent]
    default: running
  runtime_args:
    description:
      - Extra global arguments for the runtime, placed before the sub-command (for example
        V(--systemd-cgroup)). Default none.
    type: list
    elements: str
  labels:
    description:
      - Labels recorded with the container. When given, they replace the recorded labels (in place,
        without a restart). Keys must not contain V(=).
    type: dict
  stdin:
    description:
      - Absolute path the container process reads as standard input. Default C(/dev/null).
    type: path
  stdout:
    description:
      - Absolute path the container's standard output is appended to. Default
        C(<state_dir>/<name>/init/stdout.log).
    type: path
  stderr:
    description:
      - Absolute path the container's standard error is appended to. Default
        C(<state_dir>/<name>/init/stderr.log).
    type: path
  no_pivot_root:
    description:
      - Pass C(--no-pivot) to the runtime's create (needed when the root filesystem is on a ramdisk).
        Default V(false).
    type: bool
  start_timeout:
    description:
      - Seconds to wait for the runtime to create the container before failing.
    type: float
    default: 30
  stop_timeout:
    description:
      - Seconds to wait after O(stop_signal) before sending C(SIGKILL).
    type: float
    default: 10
  stop_signal:
    description:
      - Signal that asks the container to stop, as a name (V(SIGTERM), V(TERM)) or a number.
    type: str
    default: SIGTERM
  force_recreate:
    description:
      - Remove and recreate the container even if nothing changed. The task always reports a change.
    type: bool
    default: false
notes:
  - Containers run detached; their output goes to files, never to a pipe that a caller waits on.
  - The shim runs from a copy of its program under O(state_dir)C(/.shim), with the managed host's
    Python. Find it with C(ps) by container id.
  - Records under the default O(state_dir) live on a tmpfs and vanish on reboot, as the runtime's
    own state does.
seealso:
  - name: OCI runtime specification
    description: The bundle format and the runtime's command line.
    link: https://github.com/opencontainers/runtime-spec
"""

EXAMPLES = r"""
- name: Run a container from a bundle
  oci.runtime.container:
    name: web
    bundle: /srv/bundles/web
    labels:
      app: web

- name: Freeze it
  oci.runtime.container:
    name: web
    state: paused

- name: Stop it, giving it 30 seconds after SIGINT
  oci.runtime.container:
    name: web
    state: stopped
    stop_signal: SIGINT
    stop_timeout: 30

- name: Remove it and its records
  oci.runtime.container:
    name: web
    state: absent

- name: Set the state directory and runtime once for several tasks
  module_defaults:
    group/oci.runtime.oci:
      state_dir: /run/my-app
      runtime: /usr/sbin/runc
  block:
    - name: Run a one-shot job and keep its exit status
      oci.runtime.container:
        name: migrate
        bundle: /srv/bundles/migrate
      register: job
"""

RETURN = r"""
container:
  description:
    - The container as it is after the task (as predicted in check mode). Empty when absent.
  returned: always
  type: dict
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
actions:
  description:
    - What the task did (or would do in check mode), in order.
    - C(adopt) means the runtime had the container but O(state_dir) had no record of it (the state
      dir was wiped while it ran). Its record was rebuilt from the runtime's state and the shim
      still watching it; labels and stdio paths are then unknown. Check mode does not adopt.
  returned: always
  type: list
  elements: str
  sample: [register, create, start]
restarted_after_oom_kill:
  description:
    - True when the task started the container again after the kernel's OOM killer had ended it
      (RV(container.oom_killed) was true before the task); a warning says so too.
  returned: when the task restarted a container that had been OOM-killed
  type: bool
  sample: true
  version_added: 0.3.0
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.container import (
    CONTAINER_OPTIONS,
    ContainerConverger,
)


def main():
    run_module(ContainerConverger, CONTAINER_OPTIONS)


if __name__ == "__main__":
    main()
