# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CNI: network configuration lists and the plugins that apply them, as the CNI specification
(1.0.0) says.

``network_settings()`` checks what a network task declares; ``build_conflist()`` turns it into the
configuration list of the default chain (bridge with host-local IPAM, portmap, firewall);
``find_conflist()`` finds a network's list in a configuration directory the way libcni does (any
``.conflist`` file whose ``name`` matches). ``Plugins`` runs a list: ADD plugin by plugin with the
previous result chained in as ``prevResult``, DEL in reverse order with the ADD's result, CHECK in
order; a plugin's JSON error becomes a CniError that names the network, the plugin and the verb.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING

from .errors import RuntimeCoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

CNI_VERSION = "1.0.0"
DEFAULT_CONFIG_DIR = "/etc/cni/net.d"
DEFAULT_PLUGIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
# Where host-local keeps its leases (one file per address, holding the container id), by network.
IPAM_DATA_DIR = "/var/lib/cni/networks"
PLUGIN_TIMEOUT = 60.0
MAX_IFNAME = 15
CONFLIST_SUFFIX = ".conflist"

# The names libcni accepts for a network.
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
MAX_NAME = 64
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")


class CniError(RuntimeCoreError):
    """A network configuration that cannot be used, or a plugin that failed."""


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME:
        raise CniError("network name %r is not valid: use up to %d letters, digits, '_', '.' and "
                       "'-', starting with a letter or digit" % (name, MAX_NAME))
    return name


def default_bridge(name: str) -> str:
    """The bridge interface of network ``name``: ``oci-<name>`` when that fits the kernel's 15
    characters, else ``oci-`` and 11 hex digits of the name's SHA-256."""
    candidate = "oci-" + name
    if len(candidate) <= MAX_IFNAME and _IFNAME_RE.match(candidate):
        return candidate
    return "oci-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:11]


def host_has_ipv6() -> bool:
    return os.path.exists("/proc/net/if_inet6")


def _check_ifname(value: object, what: str) -> str:
    if not isinstance(value, str) or not _IFNAME_RE.match(value):
        raise CniError("%s %r is not a valid interface name (1-%d letters, digits, '_', '.', '-')"
                       % (what, value, MAX_IFNAME))
    return value


def network_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The checked settings of a network task: name, subnet, gateway, bridge, ip_masquerade,
    internal, dns, plugins. Raises CniError naming what is wrong."""
    name = validate_name(params.get("name"))
    subnet_text = params.get("subnet")
    if not subnet_text:
        raise CniError("subnet is required for network %r (an IPv4 CIDR such as 10.88.0.0/24)"
                       % name)
    try:
        subnet = ipaddress.ip_network(str(subnet_text), strict=True)
    except ValueError as exc:
        raise CniError("subnet %r is not a network in CIDR notation: %s" % (subnet_text, exc))
    if subnet.version == 6 and not host_has_ipv6():
        raise CniError("subnet %s is IPv6, but this host has no IPv6" % subnet)
    if subnet.num_addresses < 4:
        raise CniError("subnet %s is too small: it needs room for a gateway and containers"
                       % subnet)
    gateway_text = params.get("gateway")
    if gateway_text:
        try:
            gateway = ipaddress.ip_address(str(gateway_text))
        except ValueError as exc:
            raise CniError("gateway %r is not an IP address: %s" % (gateway_text, exc))
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise CniError("gateway %s is not a host address of subnet %s" % (gateway, subnet))
    else:
        gateway = subnet.network_address + 1
    bridge = params.get("bridge") or default_bridge(name)
    _check_ifname(bridge, "bridge")
    dns: list[str] = []
    for server in params.get("dns") or []:
        try:
            dns.append(str(ipaddress.ip_address(str(server))))
        except ValueError:
            raise CniError("dns server %r is not an IP address" % (server,))
    plugins = params.get("plugins") or []
    for index, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) \
                or not plugin["type"] or "/" in plugin["type"]:
            raise CniError("plugins[%d] must be a dictionary with type, the plugin's name" % index)
    return {
        "name": name,
        "subnet": str(subnet),
        "gateway": str(gateway),
        "bridge": bridge,
        "ip_masquerade": params.get("ip_masquerade", True) is not False,
        "internal": bool(params.get("internal")),
        "dns": dns,
        "plugins": copy.deepcopy(plugins),
    }


def build_conflist(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration list of the default chain for ``settings`` (from network_settings):
    bridge (host-local IPAM), portmap, firewall (containers reach only their own bridge), then the
    task's extra ``plugins``. ``internal`` leaves out the default route and masquerading."""
    internal = settings["internal"]
    ipam: dict[str, Any] = {
        "type": "host-local",
        "ranges": [[{"subnet": settings["subnet"], "gateway": settings["gateway"]}]],
    }
    if not internal:
        default = "0.0.0.0/0" if ipaddress.ip_network(settings["subnet"]).version == 4 else "::/0"
        ipam["routes"] = [{"dst": default}]
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": settings["bridge"],
        "isGateway": True,
        "ipMasq": settings["ip_masquerade"] and not internal,
        "hairpinMode": True,
        "ipam": ipam,
    }
    if settings["dns"]:
        bridge["dns"] = {"nameservers": list(settings["dns"])}
    plugins: list[dict[str, Any]] = [
        bridge,
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"},
    ]
    plugins.extend(copy.deepcopy(settings["plugins"]))
    return {"cniVersion": CNI_VERSION, "name": settings["name"], "plugins": plugins}


def conflist_bytes(conflist: Mapping[str, Any]) -> bytes:
    return (json.dumps(conflist, indent=2, sort_keys=True) + "\n").encode("utf-8")


def conflist_path(config_dir: str, name: str) -> str:
    return os.path.join(config_dir, validate_name(name) + CONFLIST_SUFFIX)


def read_conflist(path: str) -> dict[str, Any] | None:
    """The parsed list at ``path``; None when there is no such file; CniError when it is not one."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CniError("cannot read %s: %s" % (path, exc.strerror), path=path)
    try:
        conflist = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise CniError("%s is not a CNI configuration list (JSON: %s)" % (path, exc), path=path)
    problem = conflist_problem(conflist)
    if problem:
        raise CniError("%s is not a CNI configuration list: %s" % (path, problem), path=path)
    return conflist


def conflist_problem(conflist: object) -> str:
    if not isinstance(conflist, dict):
        return "it is not a JSON object"
    if not isinstance(conflist.get("name"), str) or not conflist["name"]:
        return "it has no name"
    plugins = conflist.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        return "it has no plugins"
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) \
                or not plugin["type"] or "/" in plugin["type"]:
            return "every plugin needs a type (a plugin's file name)"
    return ""


def find_conflist(config_dir: str, name: str) -> tuple[str, dict[str, Any]]:
    """(path, conflist) of network ``name`` in ``config_dir``: ``<name>.conflist`` first, then any
    ``.conflist`` file there whose name matches (as libcni looks them up). CniError if none."""
    validate_name(name)
    path = conflist_path(config_dir, name)
    conflist = read_conflist(path)
    if conflist is not None and conflist.get("name") == name:
        return path, conflist
    try:
        names = sorted(os.listdir(config_dir))
    except OSError:
        names = []
    for entry in names:
        if not entry.endswith(CONFLIST_SUFFIX) or os.path.join(config_dir, entry) == path:
            continue
        try:
            candidate = read_conflist(os.path.join(config_dir, entry))
        except CniError:
            continue
        if candidate is not None and candidate.get("name") == name:
            return os.path.join(config_dir, entry), candidate
    raise CniError("network %r does not exist: no CNI configuration list named %r in %s (create "
                   "it with oci.runtime.network)" % (name, name, config_dir), network=name)


def ipam_leases(name: str, data_dir: str = IPAM_DATA_DIR) -> dict[str, str]:
    """{address: container id} of host-local's leases for network ``name``."""
    directory = os.path.join(data_dir, validate_name(name))
    leases: dict[str, str] = {}
    try:
        entries = os.listdir(directory)
    except OSError:
        return leases
    for entry in entries:
        try:
            address = str(ipaddress.ip_address(entry))
        except ValueError:
            continue  # last_reserved_ip.0, lock
        try:
            with open(os.path.join(directory, entry)) as handle:
                owner = handle.read().split()
        except OSError:
            continue
        if owner:
            leases[address] = owner[0]
    return leases


# --- running plugins --------------------------------------------------------------------------------

def _version_tuple(text: object) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (0,)


class Plugins(object):
    """Runs the plugins of one configuration list for one container attachment.

    ``plugin_dirs`` is where the plugin binaries are looked up (also passed as CNI_PATH, for
    plugins that run others, such as bridge running host-local). ``args`` are CNI_ARGS pairs;
    ``runtime_config`` maps a capability (portMappings...) to its value, given as
    ``runtimeConfig`` to the plugins that declare that capability."""

    def __init__(self, conflist: Mapping[str, Any], plugin_dirs: Iterable[str] = DEFAULT_PLUGIN_DIRS,
                 timeout: float = PLUGIN_TIMEOUT) -> None:
        self.conflist = conflist
        self.name = conflist["name"]
        self.version = conflist.get("cniVersion") or CNI_VERSION
        self.plugin_dirs = [d for d in plugin_dirs if d]
        self.timeout = timeout

    def find(self, plugin_type: str) -> str:
        for directory in self.plugin_dirs:
            path = os.path.join(directory, plugin_type)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise CniError("CNI plugin %r of network %r is not in %s (install the CNI plugins, e.g. "
                       "Debian's containernetworking-plugins, or set the plugin directories)"
                       % (plugin_type, self.name, ", ".join(self.plugin_dirs)), network=self.name)

    def check_installed(self) -> None:
        for plugin in self.conflist["plugins"]:
            self.find(plugin["type"])

    def _config(self, plugin: dict[str, Any], runtime_config: Mapping[str, Any] | None,
                prev_result: dict[str, Any] | None) -> dict[str, Any]:
        config = copy.deepcopy(plugin)
        config["name"] = self.name
        config["cniVersion"] = self.version
        wanted = {key: value for key, value in (runtime_config or {}).items()
                  if (plugin.get("capabilities") or {}).get(key)}
        if wanted:
            config["runtimeConfig"] = wanted
        else:
            config.pop("runtimeConfig", None)
        if prev_result is not None:
            config["prevResult"] = prev_result
        else:
            config.pop("prevResult", None)
        return config

    def _env(self, command: str, container_id: str, netns: str | None, ifname: str,
             args: Sequence[tuple[str, ...]]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin",
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns or "",
            "CNI_IFNAME": ifname,
            "CNI_PATH": os.pathsep.join(self.plugin_dirs),
        }
        if args:
            env["CNI_ARGS"] = ";".join("%s=%s" % pair for pair in
                                       [("IgnoreUnknown", "1")] + list(args))
        return env

    def run(self, plugin: Mapping[str, Any], command: str, env: Mapping[str, str],
            config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run one plugin; its parsed stdout (None when empty). CniError on failure."""
        path = self.find(plugin["type"])
        try:
            proc = subprocess.run([path], input=json.dumps(config).encode("utf-8"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  timeout=self.timeout, close_fds=True, check=False)
        except subprocess.TimeoutExpired:
            raise CniError("network %r: CNI plugin %s %s did not finish within %ss"
                           % (self.name, plugin["type"], command, self.timeout),
                           network=self.name)
        except OSError as exc:
            raise CniError("network %r: cannot run CNI plugin %s: %s"
                           % (self.name, path, exc.strerror), network=self.name)
        output = proc.stdout.decode("utf-8", "replace").strip()
        parsed = None
        if output:
            try:
                parsed = json.loads(output)
            except ValueError:
                parsed = None
        if proc.returncode != 0:
            raise CniError("network %r: CNI plugin %s %s failed: %s"
                           % (self.name, plugin["type"], command,
                              _error_text(parsed, output, proc.stderr)),
                           network=self.name, rc=proc.returncode,
                           stderr=proc.stderr.decode("utf-8", "replace"))
        if output and not isinstance(parsed, dict):
            raise CniError("network %r: CNI plugin %s %s printed something that is not a JSON "
                           "result: %r" % (self.name, plugin["type"], command, output[:200]),
                           network=self.name)
        return parsed

    def add(self, container_id: str, netns: str | None, ifname: str,
            args: Sequence[tuple[str, ...]] = (),
            runtime_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """ADD every plugin in order, each given the previous one's result; the final result."""
        env = self._env("ADD", container_id, netns, ifname, args)
        result = None
        for plugin in self.conflist["plugins"]:
            output = self.run(plugin, "ADD", env, self._config(plugin, runtime_config, result))
            if output is not None:
                result = output
        return result or {}

    def check(self, container_id: str, netns: str | None, ifname: str,
              result: dict[str, Any] | None, args: Sequence[tuple[str, ...]] = (),
              runtime_config: Mapping[str, Any] | None = None) -> None:
        """CHECK every plugin in order against the ADD's ``result`` (CNI 0.4.0 and later)."""
        if _version_tuple(self.version) < (0, 4, 0) or self.conflist.get("disableCheck"):
            return
        env = self._env("CHECK", container_id, netns, ifname, args)
        for plugin in self.conflist["plugins"]:
            self.run(plugin, "CHECK", env, self._config(plugin, runtime_config, result))

    def delete(self, container_id: str, netns: str | None, ifname: str,
               result: dict[str, Any] | None = None, args: Sequence[tuple[str, ...]] = (),
               runtime_config: Mapping[str, Any] | None = None) -> None:
        """DEL every plugin in reverse order, each given the ADD's result. Every plugin is run
        even when one fails (each frees what it can); the first error is raised at the end."""
        env = self._env("DEL", container_id, netns, ifname, args)
        first = None
        for plugin in reversed(self.conflist["plugins"]):
            try:
                self.run(plugin, "DEL", env, self._config(plugin, runtime_config, result))
            except CniError as exc:
                first = first or exc
        if first is not None:
            raise first


def _error_text(parsed: object, output: str, stderr: bytes) -> str:
    if isinstance(parsed, dict) and parsed.get("msg"):
        text = str(parsed["msg"])
        if parsed.get("details"):
            text += " (%s)" % parsed["details"]
        if parsed.get("code") is not None:
            text += " [CNI error code %s]" % parsed["code"]
        return text
    text = output or stderr.decode("utf-8", "replace").strip()
    return text[:500] or "no error message"


# --- what a network leaves on the host --------------------------------------------------------------

def bridge_of(conflist: Mapping[str, Any] | None) -> str | None:
    """The bridge interface a configuration list's bridge plugin uses, or None."""
    for plugin in (conflist or {}).get("plugins") or []:
        if plugin.get("type") == "bridge":
            return plugin.get("bridge") or "cni0"
    return None


def _quiet(argv: list[str]) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                              close_fds=True, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def isolation_rules(bridge: str, command: str = "iptables") -> list[list[str]]:
    """The firewall plugin's rules for ``bridge`` in its same-bridge isolation chains, as argv
    tails (``-A chain ...``)."""
    rules: list[list[str]] = []
    for chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"):
        proc = _quiet([command, "-w", "-t", "filter", "-S", chain])
        if proc is None or proc.returncode != 0:
            continue
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            fields = shlex.split(line)
            if fields[:1] != ["-A"]:
                continue
            interfaces = [fields[i + 1] for i, f in enumerate(fields[:-1]) if f in ("-i", "-o")]
            if bridge in interfaces:
                rules.append(fields)
    return rules


def forget_network(conflist: Mapping[str, Any], data_dir: str = IPAM_DATA_DIR) -> None:
    """Remove what the plugins keep for a network after its last container left: the bridge
    interface, the firewall plugin's isolation rules for it, host-local's lease directory.
    The plugins' shared chains (CNI-FORWARD, CNI-HOSTPORT-*...) serve every network and stay."""
    bridge = bridge_of(conflist)
    problems: list[str] = []
    if bridge and os.path.exists(os.path.join("/sys/class/net", bridge, "bridge")):
        proc = _quiet(["ip", "link", "delete", bridge, "type", "bridge"])
        if proc is None or proc.returncode != 0:
            problems.append("cannot delete bridge %s: %s" % (
                bridge, proc.stderr.decode("utf-8", "replace").strip() if proc else "no ip"))
    if bridge:
        for command in ("iptables", "ip6tables"):
            for rule in isolation_rules(bridge, command):
                proc = _quiet([command, "-w", "-t", "filter", "-D"] + rule[1:])
                if proc is None or proc.returncode != 0:
                    problems.append("cannot delete %s rule %s" % (command, " ".join(rule)))
    directory = os.path.join(data_dir, validate_name(conflist["name"]))
    if os.path.isdir(directory) and not os.path.islink(directory):
        shutil.rmtree(directory, ignore_errors=True)
    if problems:
        raise CniError("network %r: %s" % (conflist["name"], "; ".join(problems)),
                       network=conflist["name"])


def host_routes() -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    """[(network, interface)] of the host's IPv4 routes but the default one (/proc/net/route)."""
    routes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    try:
        with open("/proc/net/route") as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
            network = ipaddress.ip_network("%s/%s" % (destination, mask), strict=False)
        except ValueError:
            continue
        if network.prefixlen:
            routes.append((network, fields[0]))
    return routes


def masquerade_chain(name: str, container_id: str) -> str:
    """The nat chain the bridge plugin makes for a container's masquerading (as its
    utils.FormatChainName does)."""
    return "CNI-" + hashlib.sha512((name + container_id).encode("utf-8")).hexdigest()[:24]


def teardown_masquerade(conflist: Mapping[str, Any], container_id: str,
                        result: Mapping[str, Any] | None) -> None:
    """Remove the bridge plugin's masquerading rules of a container from its ADD ``result``. The
    plugin's own DEL finds the addresses in the container's namespace, so it leaves them when the
    namespace is gone; this does what that DEL would have. Quiet when there is nothing to remove."""
    if not any(p.get("type") == "bridge" and p.get("ipMasq") for p in conflist.get("plugins") or []):
        return
    chain = masquerade_chain(conflist["name"], container_id)
    comment = 'name: "%s" id: "%s"' % (conflist["name"], container_id)
    for ip in (result or {}).get("ips") or []:
        try:
            address = ipaddress.ip_interface(str(ip.get("address"))).ip
        except ValueError:
            continue
        command = "iptables" if address.version == 4 else "ip6tables"
        _quiet([command, "-w", "-t", "nat", "-D", "POSTROUTING", "-s",
                "%s/%d" % (address, address.max_prefixlen), "-m", "comment", "--comment", comment,
                "-j", chain])
        _quiet([command, "-w", "-t", "nat", "-F", chain])
        _quiet([command, "-w", "-t", "nat", "-X", chain])
