# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's CNI networks: what its bundle declares, and attaching and detaching it.

The bundle side (``check_networks``, ``apply_to_config``): a bundle's ``networks`` go into its
config.json as the annotation ``oci.runtime.networks`` (JSON), the network namespace becomes a
named one (``/run/netns/ocirt-<hash of the bundle path>``), and ``/etc/hosts`` and
``/etc/resolv.conf`` are bind-mounted read-only from ``<bundle>/.oci-runtime-network/``. A change
of any of them changes the config digest, so the container is recreated.

The container side (``attach``, ``detach``, ``describe``): before the runtime's create, the named
namespace is made and every network's plugins ADD the container (interface ``eth0``, ``eth1``...);
then the hosts and resolv.conf files are written. What was attached (the configuration list, the
CNI_ARGS, the runtime config and the ADD's result) is recorded in ``<state_dir>/<id>/network.json``
*before* each ADD, so a detach after any failure or a killed run DELs with the same configuration
and result, and the namespace is deleted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, overload

from . import layout as L
from . import netns as N
from .cni import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_PLUGIN_DIRS,
    IPAM_DATA_DIR,
    CniError,
    Plugins,
    find_conflist,
    ipam_leases,
    teardown_masquerade,
    validate_name,
)
from .errors import BundleError, RuntimeCoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType
    from typing import Any, Literal, NoReturn

    from .bundle import BundleConfig

ANNOTATION = "oci.runtime.networks"
NETNS_PREFIX = "ocirt-"
FILES_DIR = ".oci-runtime-network"
HOSTS_FILE = "hosts"
RESOLV_FILE = "resolv.conf"
RECORD_FILE = "network.json"
PROTOCOLS = ("tcp", "udp")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-_]{0,252})$")


# --- the bundle side -------------------------------------------------------------------------------

def _fail(field: str, msg: str) -> NoReturn:
    raise BundleError("%s: %s" % (field, msg), field="networks")


def _port(field: str, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() \
            or not 0 < int(value) < 65536:
        _fail(field, "%s must be a port number 1-65535, got %r" % (what, value))
    return int(value)


def check_networks(networks: object) -> list[dict[str, Any]] | None:
    """The bundle's ``networks`` checked and normalised (None when not given); BundleError else."""
    if networks is None:
        return None
    if not isinstance(networks, list):
        _fail("networks", "must be a list of networks")
    result: list[dict[str, Any]] = []
    names: set[str] = set()
    published: set[tuple[str, int, str]] = set()
    for index, item in enumerate(networks):
        field = "networks[%d]" % index
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            _fail(field, "must be a dictionary with name (and ip, aliases, ports)")
        unknown = sorted(set(k for k, v in item.items() if v is not None)
                         - {"name", "ip", "aliases", "ports"})
        if unknown:
            _fail(field, "unknown keys %s (a network has name, ip, aliases, ports)"
                  % ", ".join(unknown))
        try:
            name = validate_name(item.get("name"))
        except CniError as exc:
            _fail(field, exc.msg)
        if name in names:
            _fail(field, "network %r is given twice" % name)
        names.add(name)
        entry: dict[str, Any] = {"name": name}
        if item.get("ip"):
            try:
                entry["ip"] = str(ipaddress.ip_address(str(item["ip"])))
            except ValueError:
                _fail(field, "ip %r is not an IP address" % (item["ip"],))
        aliases: list[str] = []
        for alias in item.get("aliases") or []:
            if not isinstance(alias, str) or not _HOSTNAME_RE.match(alias):
                _fail(field, "alias %r is not a valid host name" % (alias,))
            aliases.append(alias)
        if aliases:
            entry["aliases"] = aliases
        ports: list[dict[str, Any]] = []
        for number, port in enumerate(item.get("ports") or []):
            pfield = "%s.ports[%d]" % (field, number)
            if not isinstance(port, dict):
                _fail(pfield, "must be a dictionary with host_port and container_port")
            unknown = sorted(set(k for k, v in port.items() if v is not None)
                             - {"host_port", "container_port", "protocol", "host_ip"})
            if unknown:
                _fail(pfield, "unknown keys %s" % ", ".join(unknown))
            container_port = _port(pfield, port.get("container_port"), "container_port")
            host_port = _port(pfield, port.get("host_port") if port.get("host_port") is not None
                              else container_port, "host_port")
            protocol = str(port.get("protocol") or "tcp").lower()
            if protocol not in PROTOCOLS:
                _fail(pfield, "protocol must be tcp or udp, got %r" % (port.get("protocol"),))
            host_ip = ""
            if port.get("host_ip"):
                try:
                    host_ip = str(ipaddress.ip_address(str(port["host_ip"])))
                except ValueError:
                    _fail(pfield, "host_ip %r is not an IP address" % (port["host_ip"],))
            key = (host_ip, host_port, protocol)
            if key in published:
                _fail(pfield, "%s port %s%d is published twice"
                      % (protocol, host_ip + ":" if host_ip else "", host_port))
            published.add(key)
            ports.append({"host_port": host_port, "container_port": container_port,
                          "protocol": protocol, "host_ip": host_ip})
        if ports:
            entry["ports"] = ports
        result.append(entry)
    return result


def netns_name_for(bundle: str) -> str:
    """The named network namespace of the container run from ``bundle`` (one per bundle)."""
    digest = hashlib.sha256(os.path.normpath(bundle).encode("utf-8")).hexdigest()
    return NETNS_PREFIX + digest[:16]


def bundle_networks(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """A bundle task's ``networks`` for apply_to_config: None when not given or empty, else
    {"bundle": the bundle path, "networks": the checked list}."""
    networks = check_networks(params.get("networks"))
    if not networks:
        return None
    bundle = params.get("path")
    if not isinstance(bundle, str) or not os.path.isabs(bundle):
        raise BundleError("networks: the bundle's path must be an absolute path, got %r"
                          % (bundle,), field="networks")
    return {"bundle": os.path.normpath(bundle), "networks": networks}


def apply_to_config(config: dict[str, Any], declared: Mapping[str, Any] | None) -> None:
    """Put the networks ``declared`` (from bundle_networks; nothing when None) into the config
    document: the annotation, the named network namespace, the file mounts."""
    if not declared:
        return
    networks, bundle = declared["networks"], declared["bundle"]
    linux = config.setdefault("linux", {})
    namespaces = linux.setdefault("namespaces", [])
    entry = next((ns for ns in namespaces if ns.get("type") == "network"), None)
    if entry is None:
        raise BundleError("networks: the container shares the host's network (namespaces has no "
                          "network namespace); add network to namespaces or drop networks",
                          field="networks")
    if entry.get("path"):
        raise BundleError("networks: namespaces joins the network namespace %s; a container on "
                          "CNI networks gets a namespace of its own (drop the path or networks)"
                          % entry["path"], field="networks")
    entry["path"] = N.path_of(netns_name_for(bundle))
    annotations = config.setdefault("annotations", {})
    annotations[ANNOTATION] = json.dumps(networks, sort_keys=True, separators=(",", ":"))
    mounts = config.setdefault("mounts", [])
    taken = set(os.path.normpath(m.get("destination") or "") for m in mounts)
    for name in (HOSTS_FILE, RESOLV_FILE):
        destination = "/etc/" + name
        if destination not in taken:
            mounts.append({"destination": destination, "type": "bind",
                           "source": os.path.join(bundle, FILES_DIR, name),
                           "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})


def networks_of(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The networks a config document declares (the annotation), [] when none."""
    text = (config.get("annotations") or {}).get(ANNOTATION)
    if not text:
        return []
    try:
        networks = json.loads(text)
    except ValueError:
        raise BundleError("the annotation %s is not JSON" % ANNOTATION)
    return check_networks(networks) or []


def netns_path_of(config: Mapping[str, Any]) -> str:
    for ns in (config.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "network":
            return ns.get("path") or ""
    return ""


# --- the container side ----------------------------------------------------------------------------

def _record_path(layout: L.Layout, container_id: str) -> str:
    return os.path.join(layout.container_dir(container_id), RECORD_FILE)


def read_record(layout: L.Layout, container_id: str) -> dict[str, Any] | None:
    record = L.read_json(_record_path(layout, container_id))
    if record is not None and not (isinstance(record, dict)
                                   and isinstance(record.get("attachments"), list)):
        raise CniError("%s is not a network record" % _record_path(layout, container_id),
                       path=_record_path(layout, container_id))
    return record


def _write_record(layout: L.Layout, container_id: str, record: Mapping[str, Any]) -> None:
    L.atomic_write_json(_record_path(layout, container_id), record)


def _port_mappings(ports: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"hostPort": p["host_port"], "containerPort": p["container_port"],
             "protocol": p["protocol"], "hostIP": p["host_ip"]} for p in ports]


def attach(layout: L.Layout, container_id: str, bundle_config: BundleConfig,
           config_dir: str = DEFAULT_CONFIG_DIR, plugin_dirs: Iterable[str] = DEFAULT_PLUGIN_DIRS,
           previous_addresses: bool = False) -> None:
    """Attach the container to the networks its bundle declares, now (see Attachment)."""
    with Attachment(layout, container_id, bundle_config, config_dir, plugin_dirs,
                    previous_addresses, background=False):
        pass


class Attachment(object):
    """Attaching a container to the networks its bundle declares (nothing when it declares none),
    as a context around the runtime's create.

    On entry: whatever an earlier run attached is detached, the networks' lists and plugins are
    checked, a fresh named namespace is made, and ``/etc/hosts`` and ``/etc/resolv.conf`` are
    written with what is known before any address (the runtime's create bind-mounts them). Then
    the plugins ADD each network: in a thread while the runtime creates the container when
    ``background`` (the container's process runs nothing of its own before the runtime's start,
    so the plugin chain and the create overlap), or before entry returns otherwise (a restore runs
    the process at once). On exit the thread is joined, the files are rewritten in place (the
    mounts hold their inodes) with the addresses, and a plugin's error is raised. Whatever fails,
    everything is detached again before the error propagates.

    ``previous_addresses`` asks each network for the address the container had there before
    (restore), when no static one is given."""

    def __init__(self, layout: L.Layout, container_id: str, bundle_config: BundleConfig,
                 config_dir: str = DEFAULT_CONFIG_DIR,
                 plugin_dirs: Iterable[str] = DEFAULT_PLUGIN_DIRS,
                 previous_addresses: bool = False, background: bool = True) -> None:
        self.layout = layout
        self.container_id = container_id
        self.bundle_config = bundle_config
        self.config_dir = config_dir
        self.plugin_dirs = plugin_dirs
        self.previous_addresses = previous_addresses
        self.background = background
        self.record: dict[str, Any] = {}  # the network record, once there are networks
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.elapsed = 0.0

    def __enter__(self) -> Attachment:
        config = self.bundle_config.config
        networks = networks_of(config)
        old = read_record(self.layout, self.container_id)
        remembered: dict[str, str] = {}
        if old is not None:
            if self.previous_addresses:
                remembered = {a["name"]: ip for a, ip in
                              ((a, _address(a.get("result"), old.get("netns")))
                               for a in old["attachments"]) if ip}
            detach(self.layout, self.container_id)
        if not networks:
            return self
        path = netns_path_of(config)
        found = [find_conflist(self.config_dir, network["name"]) for network in networks]
        runners = [Plugins(conflist, self.plugin_dirs) for dummy_path, conflist in found]
        for runner in runners:
            runner.check_installed()
            release_stale(runner, self.container_id)
        self.record = {"netns": path, "attachments": []}
        _write_record(self.layout, self.container_id, self.record)
        try:
            N.create(N.name_of(path))
            write_files(self.bundle_config.bundle, config, self.record, self.container_id)
            work = [(index, network, runner, network.get("ip") or remembered.get(network["name"]))
                    for index, (network, runner) in enumerate(zip(networks, runners))]
            if self.background:
                self.thread = threading.Thread(target=self._add, args=(work,))
                self.thread.daemon = True
                self.thread.start()
            else:
                self._add(work)
                self._raise()
        except BaseException:
            self._undo()
            raise
        return self

    def _add(self, work: list[tuple[int, dict[str, Any], Plugins, str | None]]) -> None:
        started = time.monotonic()
        try:
            for index, network, runner, ip in work:
                args = [["IP", ip]] if ip else []
                runtime_config: dict[str, Any] = {}
                if network.get("ports"):
                    runtime_config["portMappings"] = _port_mappings(network["ports"])
                attachment = {"name": network["name"], "ifname": "eth%d" % index,
                              "conflist": runner.conflist, "args": args,
                              "runtimeConfig": runtime_config,
                              "aliases": network.get("aliases") or [], "result": None}
                self.record["attachments"].append(attachment)
                _write_record(self.layout, self.container_id, self.record)
                attachment["result"] = runner.add(self.container_id, self.record["netns"],
                                                  attachment["ifname"], [tuple(a) for a in args],
                                                  runtime_config)
                _write_record(self.layout, self.container_id, self.record)
            self.elapsed = time.monotonic() - started
            write_files(self.bundle_config.bundle, self.bundle_config.config, self.record,
                        self.container_id, in_place=True)
        except BaseException as exc:  # handed to the caller's thread by _raise
            self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _undo(self) -> None:
        if self.thread is not None:
            self.thread.join()
        try:
            detach(self.layout, self.container_id)
        except Exception:
            pass  # the first error is the one to report; the record stays for a later detach

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> Literal[False]:
        if not self.record:
            return False
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if exc_type is not None or self.error is not None:
            self._undo()
            if exc_type is None:
                self._raise()
        return False


def boot_time() -> int:
    """When this host booted (seconds since the epoch, /proc/stat's btime); 0 if unknown."""
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def release_stale(runner: Plugins, container_id: str, data_dir: str = IPAM_DATA_DIR) -> None:
    """Release host-local leases of ``container_id`` on this network that were taken before the
    host booted: their namespaces are gone with the reboot, and so are the records when the state
    dir is under /run, but /var/lib/cni keeps the leases, and host-local refuses a second address
    to the same container. Leases taken since the boot may belong to a live attachment (of a
    container with the same id in another state dir) and are never touched."""
    booted = boot_time()
    directory = os.path.join(data_dir, runner.name)
    for address, owner in sorted(ipam_leases(runner.name, data_dir).items()):
        path = os.path.join(directory, address)
        try:
            stale = owner == container_id and booted and os.stat(path).st_mtime < booted
        except OSError:
            continue
        if stale:
            try:
                os.unlink(path)
            except OSError:
                pass


def detach(layout: L.Layout, container_id: str,
           plugin_dirs: Iterable[str] = DEFAULT_PLUGIN_DIRS) -> None:
    """DEL every recorded attachment (last first, each plugin in reverse order, with the ADD's
    configuration and result), delete the namespace and the record. When a plugin fails the
    record is kept (a later detach tries again) and the first error raised."""
    record = read_record(layout, container_id)
    if record is None:
        return
    path = record.get("netns") or ""
    live = path if path and N.is_mounted(path) else ""
    first: RuntimeCoreError | None = None
    remaining: list[dict[str, Any]] = []
    for attachment in reversed(record["attachments"]):
        try:
            runner = Plugins(attachment["conflist"], plugin_dirs)
            runner.delete(container_id, live, attachment["ifname"], attachment.get("result"),
                          [tuple(a) for a in attachment.get("args") or []],
                          attachment.get("runtimeConfig") or {})
            if not live:
                teardown_masquerade(attachment["conflist"], container_id, attachment.get("result"))
        except CniError as exc:
            first = first or exc
            remaining.insert(0, attachment)
    if path:
        try:
            N.remove(N.name_of(path))
        except N.NetnsError as exc:
            first = first or exc
    if first is not None:
        record["attachments"] = remaining
        _write_record(layout, container_id, record)
        raise first
    try:
        os.unlink(_record_path(layout, container_id))
    except FileNotFoundError:
        pass


def _container_interface(result: Mapping[str, Any] | None,
                         netns: str | None) -> tuple[int | None, dict[str, Any]]:
    """Index and entry of the container's interface in a CNI result (the one in its netns)."""
    interfaces = (result or {}).get("interfaces") or []
    for index, interface in enumerate(interfaces):
        if isinstance(interface, dict) and interface.get("sandbox"):
            if not netns or interface.get("sandbox") == netns:
                return index, interface
    return None, {}


@overload
def _address(result: Mapping[str, Any] | None, netns: str | None,
             with_gateway: Literal[False] = False) -> str | None:
    ...


@overload
def _address(result: Mapping[str, Any] | None, netns: str | None,
             with_gateway: Literal[True]) -> tuple[str | None, Any]:
    ...


def _address(result: Mapping[str, Any] | None, netns: str | None,
             with_gateway: bool = False) -> str | None | tuple[str | None, Any]:
    index, dummy_interface = _container_interface(result, netns)
    for ip in (result or {}).get("ips") or []:
        if not isinstance(ip, dict) or not ip.get("address"):
            continue
        if index is None or ip.get("interface") in (None, index):
            address = str(ip["address"]).split("/", maxsplit=1)[0]
            return (address, ip.get("gateway")) if with_gateway else address
    return (None, None) if with_gateway else None


def describe(layout: L.Layout, container_id: str) -> list[dict[str, Any]]:
    """[{name, interface, ip, mac, gateway}] of the networks the container is attached to now."""
    try:
        record = read_record(layout, container_id)
    except Exception:
        return []
    if record is None:
        return []
    found: list[dict[str, Any]] = []
    for attachment in record["attachments"]:
        result = attachment.get("result")
        if not result:
            continue
        dummy_index, interface = _container_interface(result, record.get("netns"))
        address, gateway = _address(result, record.get("netns"), with_gateway=True)
        found.append({"name": attachment["name"], "interface": attachment["ifname"],
                      "ip": address, "mac": interface.get("mac"), "gateway": gateway})
    return found


# --- /etc/hosts and /etc/resolv.conf ----------------------------------------------------------------

def hosts_text(hostname: str | None, record: Mapping[str, Any], container_id: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    first = True
    for attachment in record["attachments"]:
        address = _address(attachment.get("result"), record.get("netns"))
        if not address:
            continue
        names = ([hostname] if hostname and first else []) + [container_id] + \
            list(attachment.get("aliases") or [])
        lines.append("%s\t%s" % (address, " ".join(dict.fromkeys(names))))
        first = False
    for attachment in record["attachments"]:
        for peer_ip, peer in sorted(ipam_leases(attachment["name"]).items()):
            if peer != container_id:
                lines.append("%s\t%s" % (peer_ip, peer))
    return "\n".join(lines) + "\n"


def _host_resolv() -> str:
    try:
        with open("/etc/resolv.conf") as handle:
            return handle.read()
    except OSError:
        return ""


def resolv_text(record: Mapping[str, Any], host_resolv: str | None = None) -> str:
    servers: list[str] = []
    for attachment in record["attachments"]:
        for plugin in attachment["conflist"].get("plugins") or []:
            servers.extend((plugin.get("dns") or {}).get("nameservers") or [])
        servers.extend(((attachment.get("result") or {}).get("dns") or {}).get("nameservers")
                       or [])
    lines: list[str] = []
    host = _host_resolv() if host_resolv is None else host_resolv
    for line in host.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1 and not servers_given(record):
            try:
                if ipaddress.ip_address(fields[1].split("%")[0]).is_loopback:
                    continue  # the host's own resolver is not reachable from the container
            except ValueError:
                continue
            lines.append("nameserver %s" % fields[1])
        elif fields[0] in ("search", "options"):
            lines.append(" ".join(fields))
    lines = ["nameserver %s" % s for s in dict.fromkeys(servers)] + lines
    return "\n".join(lines) + "\n" if lines else "# no name servers: the network has none\n"


def servers_given(record: Mapping[str, Any]) -> bool:
    return any((plugin.get("dns") or {}).get("nameservers")
               for attachment in record["attachments"]
               for plugin in attachment["conflist"].get("plugins") or [])


def write_files(bundle: str, config: Mapping[str, Any], record: Mapping[str, Any],
                container_id: str, in_place: bool = False) -> None:
    """Write the container's hosts and resolv.conf into the bundle. ``in_place`` rewrites the
    files that are there (once the runtime bind-mounted them, a new file would not be seen)."""
    directory = L.make_private_dir(os.path.join(bundle, FILES_DIR))
    os.chmod(directory, 0o755)
    for name, text in ((HOSTS_FILE, hosts_text(config.get("hostname"), record, container_id)),
                       (RESOLV_FILE, resolv_text(record))):
        path = os.path.join(directory, name)
        if not in_place:
            L.atomic_write(path, text, mode=0o644)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            data = text.encode("utf-8")
            os.ftruncate(fd, 0)
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
