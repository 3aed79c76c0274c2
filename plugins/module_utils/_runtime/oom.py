# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the kernel's OOM killer ended a container's process, from the cgroup's own counter.

Events are easy to lose, so the kernel's counter of OOM kills in the container's memory cgroup is
read instead: cgroup v2 ``memory.events`` (``oom_kill N``), cgroup v1 ``memory.oom_control``
(``oom_kill N``, kernel 4.13 and later; older kernels fall back to ``memory.failcnt``, the number of
times the limit was hit).

The cgroup goes away when the runtime deletes the container, so a process directory keeps:

- ``cgroup``: the process's ``/proc/<pid>/cgroup``, recorded when the init process is created
  (before any of the container's own code runs); exec'd processes share the container's cgroup
  and use the init process's record;
- ``oomKillsStart``: the counter when the process started (an exec'd process: just before its exec);
- ``oomKills``: the counter recorded right before the runtime deletes the container for a fresh
  create (a restart); while the cgroup exists the counter is read live.

A process was OOM-killed when it ended by SIGKILL (exit status 137) and the container's counter
rose since it started. An exec'd process shares the counter with every process of the container:
an OOM kill of another process while it ran, followed by a SIGKILL of this one, is reported as an
OOM kill of both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import layout as L
from .resources import CgroupFiles

if TYPE_CHECKING:
    from .process import ProcessRecord

CGROUP_FILE = "cgroup"
OOM_KILLS_START_FILE = "oomKillsStart"
OOM_KILLS_FILE = "oomKills"
SIGKILL_EXIT_STATUS = 128 + 9
CGROUP_ROOT = "/sys/fs/cgroup"


def _counter(text: str | None, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed cgroup file ("key value" lines), None if absent."""
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == key:
            try:
                return int(words[1])
            except ValueError:
                return None
    return None


def parse_memory_events(text: str | None) -> int | None:
    """cgroup v2 ``memory.events``: its ``oom_kill`` count."""
    return _counter(text, "oom_kill")


def parse_oom_control(text: str | None) -> int | None:
    """cgroup v1 ``memory.oom_control``: its ``oom_kill`` count (kernel 4.13 and later)."""
    return _counter(text, "oom_kill")


def oom_kills(files: CgroupFiles) -> int | None:
    """The memory cgroup's OOM kill counter; None when its files cannot be read (gone)."""
    if files.version == 2:
        return parse_memory_events(files.read("memory", "memory.events"))
    count = parse_oom_control(files.read("memory", "memory.oom_control"))
    if count is None:
        failcnt = files.read("memory", "memory.failcnt")
        if failcnt is not None and failcnt.isdigit():
            count = int(failcnt)
    return count


def _recorded_files(record: ProcessRecord) -> CgroupFiles | None:
    text = L.read_text(record.path(CGROUP_FILE))
    return CgroupFiles(text, CGROUP_ROOT) if text else None


def remember_cgroup(record: ProcessRecord) -> None:
    """Record the init process's cgroups and the counter now; nothing if it is already gone."""
    pid = record.pid
    if pid is None:
        return
    try:
        with open("/proc/%d/cgroup" % pid) as handle:
            text = handle.read()
    except (IOError, OSError):
        return
    L.atomic_write(record.path(CGROUP_FILE), text)
    count = oom_kills(CgroupFiles(text, CGROUP_ROOT))
    if count is not None:
        L.atomic_write(record.path(OOM_KILLS_START_FILE), "%d\n" % count)


def remember_start(record: ProcessRecord, init: ProcessRecord) -> None:
    """Record the container's counter as an exec'd process starts (call it before the exec)."""
    files = _recorded_files(init)
    count = oom_kills(files) if files is not None else None
    if count is not None:
        L.atomic_write(record.path(OOM_KILLS_START_FILE), "%d\n" % count)


def record_final(records: list[ProcessRecord], init: ProcessRecord) -> None:
    """Write the container's counter into each process directory that has none yet: called
    right before the runtime deletes the container (and its cgroup)."""
    files = _recorded_files(init)
    count = oom_kills(files) if files is not None else None
    if count is None:
        return
    for record in records:
        if record.exists() and not os.path.exists(record.path(OOM_KILLS_FILE)):
            L.atomic_write(record.path(OOM_KILLS_FILE), "%d\n" % count)


def oom_killed(record: ProcessRecord, init: ProcessRecord, exit_status: int | None) -> bool:
    """True when the process ended by SIGKILL and the container's OOM kill counter rose since it
    started (the recorded final count, else the live cgroup's)."""
    if exit_status != SIGKILL_EXIT_STATUS:
        return False
    count = L.read_int(record.path(OOM_KILLS_FILE))
    if count is None:
        files = _recorded_files(init)
        count = oom_kills(files) if files is not None else None
    if count is None:
        return False
    return count > (L.read_int(record.path(OOM_KILLS_START_FILE)) or 0)
