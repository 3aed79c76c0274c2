# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Other processes' command lines, as the tests read them from /proc: read once there is one to read.

A process's ``/proc/<pid>/cmdline`` reads empty for a moment while it runs ``execve`` (a standalone shim
re-executes itself as its monitor right after it reports; ``runc init`` execs the container's process)
and while it exits. Taking that empty read for the answer makes a test flaky on a loaded machine, so
``read_cmdline`` waits it out (bounded): it returns at once for a process that has a command line, and
for the only processes that never have one (kernel threads, zombies).

Standard library only; used by the functional and the pytest-ansible suites.
"""

from __future__ import annotations

import os
import time

PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread


def _cmdline_once(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in data.split(b"\0") if part]


def _never_has_cmdline(pid):
    """True for a kernel thread, a zombie or a pid that is gone: no command line will come."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            text = handle.read()
    except OSError:
        return True
    fields = text[text.rfind(b")") + 2:].split()
    try:
        return fields[0] in (b"Z", b"X") or bool(int(fields[6]) & PF_KTHREAD)
    except (IndexError, ValueError):
        return True


def read_cmdline(pid, timeout=5.0):
    """``pid``'s argv; None when it is gone; [] for a kernel thread or a zombie. A live process caught
    in execve (or exiting) is read again until its command line is there or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        argv = _cmdline_once(pid)
        if argv or argv is None or _never_has_cmdline(pid) or time.monotonic() >= deadline:
            return argv
        time.sleep(0.002)


def processes(exclude_self=True):
    """(pid, argv) of every process that has a command line, read as ``read_cmdline`` reads it."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or (exclude_self and int(name) == os.getpid()):
            continue
        argv = read_cmdline(int(name))
        if argv:
            found.append((int(name), argv))
    return found
