# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's live cgroup limits, read from the kernel and updated, and its usage.

Values are compared in the kernel's own terms (what the cgroup file will hold after the runtime
wrote it), so v1 page rounding and the v2 conversions (shares to weight, swap as a separate limit)
never show up as a phantom change. Unlimited is -1 everywhere.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .errors import RuntimeCoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

UNLIMITED = -1
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# cgroup v1 reports "no memory limit" as the largest page-aligned signed 64-bit number.
V1_MEMORY_UNLIMITED_FLOOR = 1 << 62

# Fields that current runtimes and kernels ignore: accepted, warned about, never changed.
IGNORED_FIELDS = ("kernel_memory", "kernel_tcp_memory")

SIZE_FIELDS = ("memory", "memory_reservation", "memory_swap", "kernel_memory", "kernel_tcp_memory")
INT_FIELDS = ("cpu_shares", "blkio_weight", "cpu_period", "cpu_quota", "pids_limit")
FIELDS = ("cpu_shares", "blkio_weight", "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems",
          "kernel_memory", "kernel_tcp_memory", "memory", "memory_reservation", "memory_swap",
          "pids_limit")

_SIZE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class ResourceError(RuntimeCoreError):
    """A limit that is malformed, impossible on this host, or that the kernel did not take."""


# --- parsing and checking the task's values ------------------------------------------------------

def parse_size(field: str, value: object) -> int:
    """Bytes from 1048576, '1048576', '128m', '1G', '512KiB' or '1.5g'; -1 means unlimited."""
    if isinstance(value, bool):
        raise ResourceError("%s: %r is not a size" % (field, value))
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ResourceError("%s: %r is not a size (use bytes, or a number with k, m, g, t, "
                                "such as 128m, 1G or 512KiB)" % (field, value))
        amount, unit = match.group(1), match.group(2).lower()
        if match.group(3).lower() == "i":
            raise ResourceError("%s: %r is not a size (did you mean %sB?)" % (field, value, value))
        if "." in amount and not unit:
            raise ResourceError("%s: %r is a fraction of a byte" % (field, value))
        # No limit has more than 19 digits (8 EiB); hundreds of them would make float() inf, and
        # int(inf) raises OverflowError instead of saying what is wrong.
        if len(amount) > 20:
            raise ResourceError("%s: %r is too large to be a size" % (field, value))
        number = int(float(amount) * _UNITS[unit])
    if number < 0 and number != UNLIMITED:
        raise ResourceError("%s: %r is negative; use -1 for unlimited" % (field, value))
    if number == 0:
        # The runtimes read 0 as "leave as it is", so it could never be verified.
        raise ResourceError("%s: 0 is not a limit; use a size, or -1 for unlimited" % field)
    return number


def parse_int(field: str, value: object) -> int:
    if isinstance(value, bool):
        raise ResourceError("%s: %r is not an integer" % (field, value))
    try:
        return int(str(value).strip())
    except ValueError:
        raise ResourceError("%s: %r is not an integer" % (field, value))


def parse_cpuset(field: str, value: object, online: str) -> str:
    """Normalised cpuset list ('0-2,4'); every member must be online on this host."""
    text = str(value).strip().replace(" ", "")
    members = expand_cpuset(text)
    if members is None or not members:
        raise ResourceError("%s: %r is not a cpu/node list such as '0-1' or '0,2'" % (field, value))
    available = expand_cpuset(online) or set()
    missing = sorted(members - available)
    if missing:
        raise ResourceError("%s: %s not online on this host (online: %s)"
                            % (field, ",".join(str(m) for m in missing), online))
    return format_cpuset(members)


def expand_cpuset(text: str) -> set[int] | None:
    """Set of ints of '0-2,4'; None when malformed."""
    members: set[int] = set()
    if not text:
        return members
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            return None
        low, high = int(bounds[0]), int(bounds[-1])
        if high < low:
            return None
        members.update(range(low, high + 1))
    return members


def format_cpuset(members: Iterable[int]) -> str:
    ranges: list[list[int]] = []
    for member in sorted(members):
        if ranges and member == ranges[-1][1] + 1:
            ranges[-1][1] = member
        else:
            ranges.append([member, member])
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in ranges)


def host_online(kind: str) -> str:
    path = {"cpus": "/sys/devices/system/cpu/online", "mems": "/sys/devices/system/node/online"}[kind]
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return "0"


def parse_request(params: Mapping[str, Any], online_cpus: str | None = None,
                  online_mems: str | None = None) -> dict[str, Any]:
    """The task's limits as numbers/strings, checked field by field; None for fields not given."""
    request: dict[str, Any] = {}
    for field in FIELDS:
        value = params.get(field)
        if value is None:
            continue
        if field in SIZE_FIELDS:
            request[field] = parse_size(field, value)
        elif field in INT_FIELDS:
            request[field] = parse_int(field, value)
        else:
            online = online_cpus if field == "cpuset_cpus" else online_mems
            if online is None:
                online = host_online("cpus" if field == "cpuset_cpus" else "mems")
            request[field] = parse_cpuset(field, value, online)
    _check_ranges(request)
    return request


def _check_ranges(request: Mapping[str, Any]) -> None:
    shares = request.get("cpu_shares")
    if shares is not None and not 2 <= shares <= 262144:
        raise ResourceError("cpu_shares: %d is outside 2-262144" % shares)
    weight = request.get("blkio_weight")
    if weight is not None and not 10 <= weight <= 1000:
        raise ResourceError("blkio_weight: %d is outside 10-1000" % weight)
    period = request.get("cpu_period")
    if period is not None and not 1000 <= period <= 1000000:
        raise ResourceError("cpu_period: %d is outside 1000-1000000 microseconds" % period)
    quota = request.get("cpu_quota")
    if quota is not None and quota != UNLIMITED and quota < 1000:
        raise ResourceError("cpu_quota: %d must be -1 (unlimited) or at least 1000 microseconds"
                            % quota)
    pids = request.get("pids_limit")
    if pids is not None and pids != UNLIMITED and pids < 1:
        raise ResourceError("pids_limit: %d must be -1 (unlimited) or at least 1" % pids)
    memory, swap = request.get("memory"), request.get("memory_swap")
    if swap is not None and swap != UNLIMITED and memory is not None:
        if memory == UNLIMITED or swap < memory:
            raise ResourceError("memory_swap: %d must be -1 or at least memory (%d): it is the "
                                "limit of memory plus swap" % (swap, memory))
    reservation = request.get("memory_reservation")
    if (reservation is not None and memory is not None and memory != UNLIMITED
            and reservation != UNLIMITED and reservation > memory):
        raise ResourceError("memory_reservation: %d is above memory (%d)" % (reservation, memory))


# --- where the container's cgroup files are --------------------------------------------------------

class CgroupFiles(object):
    """The cgroup files of one process: v1 per controller, or v2 unified."""

    def __init__(self, proc_cgroup_text: str, cgroup_root: str = "/sys/fs/cgroup") -> None:
        self.root = cgroup_root
        self.unified = os.path.exists(os.path.join(cgroup_root, "cgroup.controllers"))
        self.v1: dict[str, str] = {}
        self.v2: str | None = None
        for line in proc_cgroup_text.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            hierarchy, controllers, path = parts
            if hierarchy == "0" and controllers == "":
                self.v2 = path
            for controller in controllers.split(","):
                if controller:
                    self.v1[controller] = path

    @classmethod
    def of_pid(cls, pid: int, cgroup_root: str = "/sys/fs/cgroup") -> CgroupFiles:
        try:
            with open("/proc/%d/cgroup" % pid) as handle:
                return cls(handle.read(), cgroup_root)
        except (IOError, OSError) as exc:
            raise ResourceError("cannot read the cgroups of pid %d: %s" % (pid, exc.strerror))

    @property
    def version(self) -> int:
        return 2 if self.unified else 1

    def path(self, controller: str, name: str) -> str | None:
        """Path of a cgroup file, or None when this host has no such controller."""
        if self.unified:
            if self.v2 is None:
                return None
            return os.path.join(self.root, self.v2.lstrip("/"), name)
        rel = self.v1.get(controller)
        if rel is None:
            return None
        return os.path.join(self.root, controller, rel.lstrip("/"), name)

    def read(self, controller: str, name: str) -> str | None:
        path = self.path(controller, name)
        if path is None:
            return None
        try:
            with open(path) as handle:
                return handle.read().strip()
        except (IOError, OSError):
            return None


# --- reading limits in the kernel's terms -------------------------------------------------------

def _v1_memory(text: str | None) -> int | None:
    if text is None:
        return None
    value = int(text)
    return UNLIMITED if value >= V1_MEMORY_UNLIMITED_FLOOR else value


def _max_or_int(text: str | None) -> int | None:
    if text is None:
        return None
    return UNLIMITED if text == "max" else int(text)


def read_kernel(files: CgroupFiles) -> dict[str, Any]:
    """Every limit this host exposes, in the units of the task's fields (-1 unlimited).

    On v2, cpu_shares is read as the kernel's cpu.weight (see ``to_kernel``): shares cannot be
    recovered from it exactly."""
    values: dict[str, Any] = {}
    if files.version == 1:
        values["cpu_shares"] = _int_or_none(files.read("cpu", "cpu.shares"))
        values["cpu_period"] = _int_or_none(files.read("cpu", "cpu.cfs_period_us"))
        values["cpu_quota"] = _int_or_none(files.read("cpu", "cpu.cfs_quota_us"))
        values["cpuset_cpus"] = files.read("cpuset", "cpuset.cpus")
        values["cpuset_mems"] = files.read("cpuset", "cpuset.mems")
        values["memory"] = _v1_memory(files.read("memory", "memory.limit_in_bytes"))
        values["memory_reservation"] = _v1_memory(files.read("memory", "memory.soft_limit_in_bytes"))
        values["memory_swap"] = _v1_memory(files.read("memory", "memory.memsw.limit_in_bytes"))
        values["blkio_weight"] = _int_or_none(files.read("blkio", "blkio.weight")
                                              or files.read("blkio", "blkio.bfq.weight"))
        values["pids_limit"] = _max_or_int(files.read("pids", "pids.max"))
    else:
        values["cpu_shares"] = _int_or_none(files.read("cpu", "cpu.weight"))
        cpu_max = files.read("cpu", "cpu.max")
        if cpu_max:
            quota, _sep, period = cpu_max.partition(" ")
            values["cpu_quota"] = _max_or_int(quota)
            values["cpu_period"] = _int_or_none(period)
        # An empty v2 cpuset file means "the parent's": what applies is in *.effective.
        values["cpuset_cpus"] = (files.read("cpuset", "cpuset.cpus")
                                 or files.read("cpuset", "cpuset.cpus.effective") or None)
        values["cpuset_mems"] = (files.read("cpuset", "cpuset.mems")
                                 or files.read("cpuset", "cpuset.mems.effective") or None)
        values["memory"] = _max_or_int(files.read("memory", "memory.max"))
        # memory.low is 0 when there is no reservation (v1 says so with its "unlimited").
        low = _max_or_int(files.read("memory", "memory.low"))
        values["memory_reservation"] = UNLIMITED if low == 0 else low
        swap = _max_or_int(files.read("memory", "memory.swap.max"))
        if swap is not None and values["memory"] is not None:
            both_limited = swap != UNLIMITED and values["memory"] != UNLIMITED
            values["memory_swap"] = values["memory"] + swap if both_limited else UNLIMITED
        # runc writes the 10-1000 weight to io.bfq.weight as it is, and converts it to io.weight's
        # 1-10000 only when there is no bfq file: read both back in the 10-1000 scale.
        bfq = _default_weight(files.read("io", "io.bfq.weight"))
        if bfq is not None:
            values["blkio_weight"] = bfq
        else:
            io_weight = _default_weight(files.read("io", "io.weight"))
            if io_weight is not None:
                values["blkio_weight"] = io_weight_to_blkio(io_weight)
        values["pids_limit"] = _max_or_int(files.read("pids", "pids.max"))
    if values.get("cpuset_cpus") is not None:
        values["cpuset_cpus"] = format_cpuset(expand_cpuset(values["cpuset_cpus"]) or set())
    if values.get("cpuset_mems") is not None:
        values["cpuset_mems"] = format_cpuset(expand_cpuset(values["cpuset_mems"]) or set())
    return {k: v for k, v in values.items() if v is not None}


def _default_weight(text: str | None) -> int | None:
    """The default weight of a v2 io weight file ("default 100" then per-device "8:0 200" lines)."""
    if not text:
        return None
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "default":
            return _int_or_none(words[1])
        if len(words) == 1:
            return _int_or_none(words[0])
    return None


def _int_or_none(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cgroup v1 cpu shares to the v2 cpu.weight."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight_to_blkio(io_weight: int) -> int:
    """The v1 blkio weight (10-1000) of a v2 io.weight (1-10000): the inverse of runc's
    ``1 + (weight - 10) * 9999 // 990``, exact for every weight runc can have written."""
    return 10 + -(-(io_weight - 1) * 990 // 9999)


def to_kernel(field: str, value: Any, version: int) -> Any:
    """The value a cgroup file will hold once ``value`` of ``field`` has been written."""
    if value == UNLIMITED:
        return value
    if field in ("memory", "memory_reservation", "memory_swap") and version == 1:
        return value - value % PAGE_SIZE
    if field == "cpu_shares" and version == 2:
        return shares_to_weight(value)
    return value


# --- usage (what the container uses now, not its limits) ------------------------------------------

def _cpu_stat_usec(text: str | None) -> int | None:
    """``usage_usec`` of a v2 cpu.stat ("usage_usec 1234\nuser_usec ..."), None when absent."""
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "usage_usec":
            return _int_or_none(words[1])
    return None


def read_stats(files: CgroupFiles) -> dict[str, int]:
    """Current usage from the cgroup files: CPU time in nanoseconds, memory in use and its limit
    in bytes (-1 unlimited), and the number of tasks; a field this host does not expose is left
    out. Also ``cgroup_version``.

    v1: cpuacct.usage, memory.usage_in_bytes, memory.limit_in_bytes, pids.current.
    v2: cpu.stat usage_usec, memory.current, memory.max, pids.current."""
    values: dict[str, int | None] = {}
    if files.version == 1:
        values["cpu_usage_ns"] = _int_or_none(files.read("cpuacct", "cpuacct.usage"))
        values["memory_usage_bytes"] = _int_or_none(files.read("memory", "memory.usage_in_bytes"))
        values["memory_limit_bytes"] = _safe(_v1_memory, files.read("memory", "memory.limit_in_bytes"))
    else:
        usec = _cpu_stat_usec(files.read("cpu", "cpu.stat"))
        values["cpu_usage_ns"] = usec * 1000 if usec is not None else None
        values["memory_usage_bytes"] = _int_or_none(files.read("memory", "memory.current"))
        values["memory_limit_bytes"] = _safe(_max_or_int, files.read("memory", "memory.max"))
    values["pids_current"] = _int_or_none(files.read("pids", "pids.current"))
    result = {k: v for k, v in values.items() if v is not None}
    result["cgroup_version"] = files.version
    return result


def _safe(convert: Callable[[str], int | None], text: str | None) -> int | None:
    """``convert(text)``, or None for an empty or garbled file (a cgroup going away mid-read)."""
    if not text:
        return None
    try:
        return convert(text)
    except ValueError:
        return None


# --- the update ---------------------------------------------------------------------------------

def update_document(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime's ``update -r -`` JSON (an OCI LinuxResources) holding just ``changes``."""
    document: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    for field, key in (("memory", "limit"), ("memory_reservation", "reservation"),
                       ("memory_swap", "swap")):
        if field in changes:
            memory[key] = changes[field]
    cpu: dict[str, Any] = {}
    for field, key in (("cpu_shares", "shares"), ("cpu_quota", "quota"), ("cpu_period", "period"),
                       ("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if field in changes:
            cpu[key] = changes[field]
    if memory:
        document["memory"] = memory
    if cpu:
        document["cpu"] = cpu
    if "blkio_weight" in changes:
        document["blockIO"] = {"weight": changes["blkio_weight"]}
    if "pids_limit" in changes:
        document["pids"] = {"limit": changes["pids_limit"]}
    return document
