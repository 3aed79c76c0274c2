# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bundle's config.json: runc's default spec, the task's settings on top of it, a deep merge.

``default_spec()`` is what ``runc spec`` (runc 1.1) writes, with ``process.terminal`` false (the
collection runs containers detached). ``check_settings()`` validates a task's config options before
anything is touched; ``build_config()`` turns them, and the config of an OCI image when there is
one, into the config document; ``config_bytes()`` serialises it the way runc does (tab indent, no
final newline), so the bundle's digest is the digest of exactly those bytes.

Precedence, lowest first: runc's defaults, the image's config (Entrypoint + Cmd, Env, WorkingDir,
User), the task's options, then the task's ``spec`` (deep-merged last).
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import TYPE_CHECKING

from . import networking
from .errors import BundleError
from .resources import ResourceError, parse_request, update_document
from .users import USER_RE, resolve_user

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, NoReturn

    from .users import FileReader

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_ENV = ("PATH=" + DEFAULT_PATH, "TERM=xterm")
DEFAULT_ARGS = ("sh",)
DEFAULT_HOSTNAME = "runc"
DEFAULT_CAPABILITIES = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
# The sets runc spec fills; ``capabilities`` replaces all four, so a non-root ``user`` keeps them
# (ambient) as root does.
CAPABILITY_SETS = ("bounding", "effective", "permitted", "ambient")

# Linux capabilities up to 5.9 (CAP_CHECKPOINT_RESTORE); the names runc knows.
KNOWN_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
NAMESPACE_ALIASES = {"net": "network", "mnt": "mount"}

# resource_update's names that make sense in a bundle (the kernel memory limits do not).
RESOURCE_FIELDS = ("memory", "memory_swap", "memory_reservation", "cpu_shares", "cpu_quota",
                   "cpu_period", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight")

# Written into every config the module builds: a new root filesystem changes config.json, so
# oci.runtime.container (which recreates on a config digest change) restarts the container on it.
ROOTFS_ANNOTATION = "oci.runtime.bundle.rootfs-digest"

SETTINGS = ("args", "env", "cwd", "hostname", "user", "readonly_rootfs", "mounts", "namespaces",
            "capabilities", "resources", "annotations", "spec", "networks")

_ENV_KEY_RE = re.compile(r"^[^=\x00]+$")


def default_spec() -> dict[str, Any]:
    """A fresh copy of the config ``runc spec`` writes, with ``process.terminal`` false."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(DEFAULT_ARGS),
            "env": list(DEFAULT_ENV),
            "cwd": "/",
            "capabilities": {name: list(DEFAULT_CAPABILITIES) for name in CAPABILITY_SETS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": DEFAULT_HOSTNAME,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def config_bytes(config: Mapping[str, Any]) -> bytes:
    """The bytes of config.json, formatted as runc formats them (tab indent, no final newline)."""
    return json.dumps(config, indent="\t").encode("utf-8")


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base``. Dicts merge key by key, a None value removes
    the key, anything else (lists included) replaces. Neither argument is modified."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_env(base: Iterable[str], overrides: Mapping[str, object] | Iterable[str]) -> list[str]:
    """``K=V`` list ``base`` with ``overrides`` applied: a list of ``K=V`` or a dict (None removes
    the variable). A replaced variable keeps its place; new ones are appended."""
    result = list(base)
    items = overrides.items() if isinstance(overrides, dict) else \
        [tuple(entry.split("=", 1)) if "=" in entry else (entry, "") for entry in overrides]
    for key, value in items:
        position = next((i for i, entry in enumerate(result) if entry.split("=", 1)[0] == key), None)
        if value is None:
            if position is not None:
                del result[position]
            continue
        entry = "%s=%s" % (key, value)
        if position is None:
            result.append(entry)
        else:
            result[position] = entry
    return result


# --- the task's settings --------------------------------------------------------------------------

def _fail(field: str, msg: str) -> NoReturn:
    raise BundleError("%s: %s" % (field, msg), field=field)


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool))


def _check_list(field: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        _fail(field, "must be a list, not %s" % type(value).__name__)
    return value


def _check_dict(field: str, value: object) -> dict[Any, Any]:
    if not isinstance(value, dict):
        _fail(field, "must be a dictionary, not %s" % type(value).__name__)
    return value


def check_settings(params: Mapping[str, Any], online_cpus: str | None = None,
                   online_mems: str | None = None) -> dict[str, Any]:
    """The config options of a task, checked and normalised; raises BundleError naming the field.

    Returns a dict with the keys of SETTINGS; options not given are None. ``resources`` becomes the
    OCI ``linux.resources`` document."""
    settings: dict[str, Any] = dict.fromkeys(SETTINGS)
    args = params.get("args")
    if args is not None:
        _check_list("args", args)
        if not args:
            _fail("args", "must not be empty: the container needs a program to run")
        for item in args:
            if not _is_scalar(item):
                _fail("args", "every argument must be a string, got %r" % (item,))
        settings["args"] = [str(item) for item in args]

    env = params.get("env")
    if env is not None:
        _check_dict("env", env)
        checked: dict[str, str | None] = {}
        for key, value in env.items():
            key = str(key)
            if not _ENV_KEY_RE.match(key):
                _fail("env", "variable name %r is not valid: it must be non-empty and hold no '='"
                      % key)
            if value is not None and not _is_scalar(value):
                _fail("env", "the value of %s must be a string (or null to remove it), not %s"
                      % (key, type(value).__name__))
            checked[key] = None if value is None else str(value)
        settings["env"] = checked

    cwd = params.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            _fail("cwd", "must be an absolute path inside the container, got %r" % (cwd,))
        settings["cwd"] = cwd

    hostname = params.get("hostname")
    if hostname is not None:
        if not isinstance(hostname, str) or len(hostname) > 64 or "/" in hostname \
                or any(c.isspace() for c in hostname):
            _fail("hostname", "%r is not a valid host name" % (hostname,))
        settings["hostname"] = hostname

    user = params.get("user")
    if user is not None:
        user = str(user).strip()
        if not USER_RE.match(user):
            _fail("user", "%r is not 'uid[:gid]' (or 'name[:group]')" % (params.get("user"),))
        settings["user"] = user

    readonly = params.get("readonly_rootfs")
    if readonly is not None:
        if not isinstance(readonly, bool):
            _fail("readonly_rootfs", "must be true or false")
        settings["readonly_rootfs"] = readonly

    mounts = params.get("mounts")
    if mounts is not None:
        settings["mounts"] = [_check_mount(i, m) for i, m in enumerate(_check_list("mounts", mounts))]

    namespaces = params.get("namespaces")
    if namespaces is not None:
        settings["namespaces"] = _check_namespaces(_check_list("namespaces", namespaces))

    caps = params.get("capabilities")
    if caps is not None:
        settings["capabilities"] = _check_capabilities(_check_list("capabilities", caps))

    resources = params.get("resources")
    if resources is not None:
        settings["resources"] = _check_resources(_check_dict("resources", resources),
                                                 online_cpus, online_mems)

    annotations = params.get("annotations")
    if annotations is not None:
        checked = {}
        for key, value in _check_dict("annotations", annotations).items():
            if not str(key):
                _fail("annotations", "keys must not be empty")
            if not _is_scalar(value):
                _fail("annotations", "the value of %s must be a string, not %s"
                      % (key, type(value).__name__))
            checked[str(key)] = str(value)
        settings["annotations"] = checked

    spec = params.get("spec")
    if spec is not None:
        settings["spec"] = copy.deepcopy(_check_dict("spec", spec))
    settings["networks"] = networking.bundle_networks(params)
    return settings


def _check_mount(index: int, mount: object) -> dict[str, Any]:
    field = "mounts[%d]" % index
    if not isinstance(mount, dict):
        _fail(field, "must be a dictionary with destination, type, source and options")
    destination = mount.get("destination")
    if not isinstance(destination, str) or not destination.startswith("/"):
        _fail(field, "destination must be an absolute path inside the container, got %r"
              % (destination,))
    for key in ("type", "source"):
        if key in mount and not isinstance(mount[key], str):
            _fail(field, "%s must be a string, got %r" % (key, mount[key]))
    options = mount.get("options")
    if options is not None:
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            _fail(field, "options must be a list of strings, got %r" % (options,))
    binding = mount.get("type") == "bind" or any(o in ("bind", "rbind") for o in options or [])
    if binding and not (isinstance(mount.get("source"), str) and mount["source"].startswith("/")):
        _fail(field, "a bind mount needs source, an absolute path on the host")
    return copy.deepcopy(mount)


def _check_namespaces(namespaces: list[Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(namespaces):
        field = "namespaces[%d]" % index
        entry: dict[str, Any]
        if isinstance(item, str):
            entry = {"type": item}
        elif isinstance(item, dict):
            entry = {str(k): v for k, v in item.items()}
        else:
            _fail(field, "must be a namespace name or a dictionary with type and path")
        kind = NAMESPACE_ALIASES.get(str(entry.get("type")), entry.get("type"))
        if kind not in NAMESPACES:
            _fail(field, "%r is not a namespace type (one of: %s)"
                  % (entry.get("type"), ", ".join(NAMESPACES)))
        if kind in seen:
            _fail(field, "namespace %s is given twice" % kind)
        seen.add(kind)
        unknown = set(entry) - {"type", "path"}
        if unknown:
            _fail(field, "unknown keys %s (a namespace has type and path)"
                  % ", ".join(sorted(unknown)))
        entry["type"] = kind
        if "path" in entry:
            if not isinstance(entry["path"], str) or not entry["path"].startswith("/"):
                _fail(field, "path must be an absolute path such as /proc/1234/ns/net, got %r"
                      % (entry["path"],))
        result.append(entry)
    return result


def _check_capabilities(caps: list[Any]) -> list[str]:
    result: list[str] = []
    for item in caps:
        if not isinstance(item, str) or not item.strip():
            _fail("capabilities", "%r is not a capability name" % (item,))
        name = item.strip().upper()
        if name == "ALL":
            for known in KNOWN_CAPABILITIES:
                if known not in result:
                    result.append(known)
            continue
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in KNOWN_CAPABILITIES:
            _fail("capabilities", "%r is not a Linux capability (such as CAP_NET_ADMIN or "
                  "NET_ADMIN)" % item)
        if name not in result:
            result.append(name)
    return result


def _check_resources(resources: dict[Any, Any], online_cpus: str | None,
                     online_mems: str | None) -> dict[str, Any]:
    unknown = sorted(str(k) for k in resources if k not in RESOURCE_FIELDS)
    if unknown:
        _fail("resources", "unknown limit %s (known: %s)"
              % (", ".join(unknown), ", ".join(RESOURCE_FIELDS)))
    try:
        request = parse_request(resources, online_cpus=online_cpus, online_mems=online_mems)
    except ResourceError as exc:
        _fail("resources", exc.msg)
    return update_document(request)


# --- the image's defaults -------------------------------------------------------------------------

def image_defaults(image_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The process defaults an OCI image config gives: args, env, cwd, user (None when unset)."""
    section = (image_config or {}).get("config") or {}
    args = list(section.get("Entrypoint") or []) + list(section.get("Cmd") or [])
    return {
        "args": [str(a) for a in args] or None,
        "env": [str(e) for e in section.get("Env") or []],
        "cwd": section.get("WorkingDir") or None,
        "user": str(section.get("User")).strip() if section.get("User") else None,
    }


def effective_user(settings: Mapping[str, Any],
                   image_config: Mapping[str, Any] | None = None) -> tuple[str | None, str]:
    """The user string the config will resolve (the task's, else the image's), and its origin."""
    if settings.get("user") is not None:
        return settings["user"], "user"
    user = image_defaults(image_config)["user"] if image_config else None
    return user, "the image's User"


# --- the config -----------------------------------------------------------------------------------

def build_config(settings: Mapping[str, Any], image_config: Mapping[str, Any] | None = None,
                 rootfs_digest: str | None = None,
                 read_file: FileReader | None = None) -> dict[str, Any]:
    """The config document for ``settings`` (from ``check_settings``).

    ``image_config`` is the parsed OCI image config when the root filesystem comes from an image;
    ``rootfs_digest`` goes into the ROOTFS_ANNOTATION; ``read_file(relpath)`` reads a file of the
    root filesystem (for user and group names)."""
    config = default_spec()
    process = config["process"]
    linux = config["linux"]
    if image_config is not None:
        defaults = image_defaults(image_config)
        if defaults["args"]:
            process["args"] = defaults["args"]
        process["env"] = merge_env(process["env"], defaults["env"])
        if defaults["cwd"]:
            process["cwd"] = defaults["cwd"]

    if settings.get("args") is not None:
        process["args"] = list(settings["args"])
    if settings.get("env") is not None:
        process["env"] = merge_env(process["env"], settings["env"])
    if settings.get("cwd") is not None:
        process["cwd"] = settings["cwd"]
    if not process["cwd"].startswith("/"):
        raise BundleError("the image's WorkingDir %r is not an absolute path; set cwd"
                          % process["cwd"])

    user, origin = effective_user(settings, image_config)
    if user is not None:
        uid, gid = resolve_user(user, read_file or (lambda path: None), origin)
        process["user"] = {"uid": uid, "gid": gid}

    if settings.get("capabilities") is not None:
        process["capabilities"] = {name: list(settings["capabilities"]) for name in CAPABILITY_SETS}
    if settings.get("readonly_rootfs") is not None:
        config["root"]["readonly"] = settings["readonly_rootfs"]

    if settings.get("namespaces") is not None:
        linux["namespaces"] = copy.deepcopy(settings["namespaces"])
    has_uts = any(ns["type"] == "uts" for ns in linux["namespaces"])
    if settings.get("hostname") is not None:
        if not has_uts:
            raise BundleError("hostname: a container without its own uts namespace cannot have a "
                              "host name; add uts to namespaces or drop hostname", field="hostname")
        config["hostname"] = settings["hostname"]
    elif not has_uts:
        del config["hostname"]  # runc refuses a host name without a uts namespace

    if settings.get("mounts") is not None:
        mounts = config["mounts"]
        for mount in settings["mounts"]:
            position = next((i for i, m in enumerate(mounts)
                             if os.path.normpath(m["destination"])
                             == os.path.normpath(mount["destination"])), None)
            if position is None:
                mounts.append(copy.deepcopy(mount))
            else:
                mounts[position] = copy.deepcopy(mount)

    if settings.get("resources"):
        linux["resources"] = deep_merge(linux["resources"], settings["resources"])

    annotations = dict(settings.get("annotations") or {})
    if rootfs_digest:
        annotations[ROOTFS_ANNOTATION] = rootfs_digest
    if annotations:
        config["annotations"] = annotations

    networking.apply_to_config(config, settings.get("networks"))
    if settings.get("spec"):
        config = deep_merge(config, settings["spec"])
    _check_config(config)
    return config


def _check_config(config: Mapping[str, Any]) -> None:
    process = config.get("process")
    if not isinstance(process, dict):
        raise BundleError("spec: process must be a dictionary", field="spec")
    args = process.get("args")
    if not args or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BundleError("the container has no program to run: give args (the image has no "
                          "Entrypoint or Cmd, or spec removed process.args)", field="args")
    root = config.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        raise BundleError("spec: root.path must be a non-empty string", field="spec")
