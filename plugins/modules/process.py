#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: process
short_description: Run, track and stop extra processes inside a running OCI container
version_added: 0.1.0
description:
  - Starts a process inside a running container with the runtime's detached exec (C(runc exec
    --detach)), under its own shim that records its pid, start time and exit status, exactly as for
    the container's own process.
  - A process O(id) names one run. With O(state=exited) the process runs once; later tasks with the
    same O(id) report the recorded result without running it again, until the record is removed
    with O(state=absent) or the container is removed or recreated.
  - Process records survive stopping and starting the container (a one-shot job that ran does not
    run again); processes that were running die with the container's init process, and are then
    reported as exited with status 137.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  container:
    description:
      - Name (id) of the container, as managed by M(oci.runtime.container) with the same O(state_dir).
      - The container must be running to start a process in it.
    type: str
    required: true
  id:
    description:
      - The process id, unique within the container. Same rules as container ids. V(init) is
        reserved for the container's own process.
    type: str
    required: true
  args:
    description:
      - The command and its arguments, run without a shell. Required to start the process.
    type: list
    elements: str
  env:
    description:
      - Environment variables, added to (and overriding) the container's own environment.
      - Values end up in C(process.json) under O(state_dir) (mode 0600).
    type: dict
  cwd:
    description:
      - Absolute working directory inside the container. Default the container's own.
    type: str
  user:
    description:
      - V(uid) or V(uid:gid) (numbers) to run as. Default the container's own user.
    type: str
  stdin:
    description:
      - Absolute host path read as standard input. Default C(/dev/null).
    type: path
  stdout:
    description:
      - Absolute host path that standard output is appended to. Default a capture file
        C(stdout.log) in the process's directory under O(state_dir).
    type: path
  stderr:
    description:
      - Absolute host path that standard error is appended to. Default a capture file
        C(stderr.log) in the process's directory under O(state_dir).
    type: path
  state:
    description:
      - V(exited) starts the process if this O(id) never ran, waits for its end (at most O(timeout)
        seconds), and returns its exit status and output. A non-zero exit status fails the task, as
        M(ansible.builtin.command) does, so C(failed_when) works. If the process still runs after
        O(timeout), the task fails and the process keeps running, tracked.
      - V(running) starts the process if it is absent or has ended, and returns its pid.
      - V(absent) stops a live process (C(SIGTERM), then C(SIGKILL) after 10 seconds) and removes its
        record.
    type: str
    choices: [running, exited, absent]
    default: exited
  timeout:
    description:
      - Seconds to wait for the process to end with O(state=exited). Unset, wait as long as it takes.
    type: float
  start_timeout:
    description:
      - Seconds to wait for the runtime to start the process.
    type: float
    default: 30
  signal:
    description:
      - Send this signal (a name such as V(SIGHUP) or a number) to the process if it is running.
        Reports a change each time it is sent.
    type: str
notes:
  - Output is captured to files, never through a pipe, and returned as the last 65536 bytes of each
    stream (RV(stdout_truncated) and RV(stderr_truncated) say when there was more).
seealso:
  - module: oci.runtime.container
"""

EXAMPLES = r"""
- name: Run a database migration once
  oci.runtime.process:
    container: app
    id: migrate-2026-11
    args: [/app/bin/migrate, --to, latest]
    env:
      DB_URL: postgres://db/app
    timeout: 600

- name: A health probe whose exit status 3 is expected
  oci.runtime.process:
    container: app
    id: probe
    args: [sh, -c, "exit 3"]
  register: probe
  failed_when: probe.exit_status not in [0, 3]

- name: Keep a side process running
  oci.runtime.process:
    container: app
    id: log-shipper
    args: [sh, -c, "trap : HUP; while true; do sleep 60 & wait; done"]
    state: running

- name: Ask it to reopen its logs
  oci.runtime.process:
    container: app
    id: log-shipper
    state: running
    signal: SIGHUP

- name: Stop it and forget it
  oci.runtime.process:
    container: app
    id: log-shipper
    state: absent
"""

RETURN = r"""
process:
  description: The process after the task (as predicted in check mode).
  returned: always
  type: dict
  contains:
    id:
      description: The process id.
      type: str
      sample: migrate-2026-11
    pid:
      description: Host pid while it runs, else null.
      type: int
      sample: 5120
    status:
      description: V(running), V(exited) or V(absent).
      type: str
      sample: exited
    exit_status:
      description: Exit status once it ended (128 + signal number when killed); null while it runs
        or when nobody saw it end.
      type: int
      sample: 0
    oom_killed:
      description:
        - True when the kernel's OOM killer ended the process. It ended by SIGKILL (C(exit_status)
          137) and the OOM kill counter of the container's memory cgroup rose since it started.
        - The counter is the container's, shared by all its processes, so an OOM kill of another
          process of the container while this one ran, followed by a SIGKILL of this one, counts
          as an OOM kill of both.
      type: bool
      sample: false
      version_added: 0.3.0
status:
  description: Same as RV(process.status).
  returned: always
  type: str
  sample: exited
pid:
  description: Same as RV(process.pid).
  returned: always
  type: int
  sample: 5120
exit_status:
  description: Same as RV(process.exit_status).
  returned: always
  type: int
  sample: 0
stdout:
  description: The end of the captured standard output (at most 65536 bytes).
  returned: when the process has exited
  type: str
  sample: "migrated to 42\n"
stderr:
  description: The end of the captured standard error (at most 65536 bytes).
  returned: when the process has exited
  type: str
  sample: ""
stdout_truncated:
  description: Whether RV(stdout) is only the end of a longer output.
  returned: when the process has exited
  type: bool
  sample: false
stderr_truncated:
  description: Whether RV(stderr) is only the end of a longer output.
  returned: when the process has exited
  type: bool
  sample: false
actions:
  description: What the task did (or would do in check mode).
  returned: always
  type: list
  elements: str
  sample: [start]
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.process import (
    PROCESS_OPTIONS,
    ProcessConverger,
)


def main():
    run_module(ProcessConverger, PROCESS_OPTIONS)


if __name__ == "__main__":
    main()
