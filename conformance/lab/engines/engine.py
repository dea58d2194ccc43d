"""The Docker engine under test: its API client, its process, its network namespace, its facts.

Host-side state (bridges, veths, rules, docker-proxy processes) lives in the
*engine's* network namespace, which need not be the suite's: the daemon is found
from its socket's peer credentials and its namespace from /proc/PID/ns/net.  So
the suite behaves the same against the system daemon and a private one.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

import docker
import psutil
from docker.auth import AuthConfig
from docker.utils.proxy import ProxyConfig

from ..kernel.netns import Netns, namespace_of
from ..kernel.procs import cmdline, comm, executable, processes, uids
from ..safety import redact
from ..safety.trust import unsafe_path, user
from . import firewall, nftables, podman
from .daemon import daemon_options, default_bridge_overrides

DEFAULT_HOST = "unix:///var/run/docker.sock"
# The documented defaults that some article sentences are literally about.
DEFAULT_BRIDGE = "docker0"
DEFAULT_SUBNET = "172.17.0.0/16"


class EngineUnavailable(RuntimeError):
    """The suite cannot use an engine at the address: nothing answers there (NoEngine), or what answers
    cannot be the engine under test."""


class NoEngine(EngineUnavailable):
    """Nothing answers at the address: no socket, or nothing listening on it.  The one case in which
    ``--engine auto`` may start a private engine; an engine that answers is never replaced by one."""


class EngineUntrusted(EngineUnavailable):
    """What listens at the address is not root's alone: the process is another user's, or another user could
    replace its socket.  The suite runs as root, runs tools for the engine and sends it what it builds, so
    it is never asked anything (its message names the owner)."""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _peer(socket_path: str) -> tuple[int, int]:
    """(pid, uid) of the process listening on *socket_path*, as the kernel recorded them when it listened
    (SO_PEERCRED): what it says, not what anything answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


def _not_roots(pid: int, listened_as: int | None = None) -> str | None:
    """Why the process *pid* is not root's (None when it is): the uid it listened as (peer credentials) and
    its real, effective and saved uids now must all be 0.  Named by its command and user."""
    try:
        now = uids(pid)
    except (OSError, psutil.Error):
        return f"pid {pid} cannot be read (gone, or hidden from root)"
    other = next((u for u in (listened_as, *now) if u not in (None, 0)), None)
    if other is None:
        return None
    return f"{comm(pid)} (pid {pid}) runs as {user(other)}, not root"


def trusted_listener(socket_path: str) -> int:
    """The pid of root's process listening on *socket_path*, asked of the kernel before anything is sent
    there; EngineUntrusted naming the owner when the process is another user's or another user could
    replace the socket (it, or a directory on its way, is not root's or is writable by others)."""
    pid, uid = _peer(socket_path)
    reason = _not_roots(pid, uid) or unsafe_path(socket_path)
    if reason is not None:
        raise EngineUntrusted(reason)
    return pid


class _NoCredentials(AuthConfig):
    """A credential store that is empty and stays empty: docker-py reloads root's Docker config whenever its
    store is empty (``is_empty``), then sends every registry credential there with each build
    (X-Registry-Config) and one with each pull (X-Registry-Auth).  The suite's images need none."""

    def __init__(self) -> None:
        super().__init__({})

    @property
    def is_empty(self) -> bool:
        return False


class _EngineAPI(docker.APIClient):
    """The Engine API client of the suite's, which reads nothing of root's environment or Docker config.

    Not the environment for proxies or .netrc (requests does on every request when trust_env is set):
    engines are reached over unix sockets, and a background thread (an engine starting or stopping)
    iterating os.environ races pytest, which sets and deletes PYTEST_CURRENT_TEST in the main thread
    meanwhile; os.environ's iteration then raises KeyError.  Not ``~/.docker/config.json``, which is the
    docker CLI's: its registry credentials (sent with builds and pulls), its HttpHeaders (sent with every
    request), its proxies (put into every container's environment and build) are root's, not the
    suite's, and would change what the probes do."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._general_configs: dict[str, Any] = {}
        self._proxy_configs = ProxyConfig()
        self._auth_configs = _NoCredentials()

    @property  # requests.Session sets it in __init__: a property keeps it off
    def trust_env(self) -> bool:
        return False

    @trust_env.setter
    def trust_env(self, value: bool) -> None:
        pass


class EngineClient(docker.DockerClient):
    """``docker.DockerClient`` over ``_EngineAPI``: every client of the suite's is one of these."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.api = _EngineAPI(*args, **kwargs)


def served_by_podman(url: str) -> bool:
    """Whether the process listening on *url*'s socket is Podman's service, asked of the kernel (peer
    credentials) before anything connects: so that nothing is started beside Podman for checks that do not
    apply to it.  A socket activated by systemd names systemd, and says no."""
    parsed = urlparse(url)
    try:
        return parsed.scheme == "unix" and comm(_peer(parsed.path)[0]) == "podman"
    except OSError:
        return False


def daemon_pid(socket_path: str) -> int:
    """The dockerd (or ``podman system service``) serving *socket_path*; EngineUnavailable with the reason
    when the suite cannot use what serves it.

    This is the one place that decides whether what answers can be the engine under test: the suite reads
    the engine's namespace, options, firewall and proxies through its process, and knows that process for
    a dockerd and for Podman's service (lab/engines/podman.py).  Peer credentials name the process that listened
    on the socket: the daemon itself, or the service manager when the socket is activated by systemd.  In
    the second case the one dockerd naming this socket (or none, for the default socket) is taken.  Either
    must be root's (``trusted_listener``): the suite runs root's tools for it and reads its namespace.
    """
    pid = trusted_listener(socket_path)
    owner = comm(pid)
    if owner in ("dockerd", "podman"):
        return pid
    candidates = []
    for candidate, argv in processes("dockerd"):
        hosts = [a for a in argv if a.startswith(("unix://", "fd://", "-H=", "--host="))]
        serves = any(socket_path in h or "fd://" in h for h in hosts) or (
            not hosts and socket_path == urlparse(DEFAULT_HOST).path
        )
        if serves:
            candidates.append(candidate)
    if not candidates:
        raise EngineUnavailable(f"its socket is served by {owner} (pid {pid}), not by a dockerd, and the suite "
                                "reads the engine's namespace, options and proxies from its dockerd process")
    if len(candidates) > 1:
        raise EngineUnavailable(f"its socket is held by {owner} (pid {pid}), and {len(candidates)} dockerd "
                                f"processes could be behind it (pids {candidates})")
    reason = _not_roots(candidates[0])
    if reason is not None:
        raise EngineUntrusted(f"its socket is held by {owner} (pid {pid}) for {reason}")
    return candidates[0]


def bridge_of(network) -> str:
    """The Linux bridge of a bridge-driver network (a docker-py Network): the name it was given, else
    Docker's br-<id>, or on Podman its own choice (podman1, ...), which it makes only once a container joins."""
    network.reload()
    named = (network.attrs.get("Options") or {}).get("com.docker.network.bridge.name")
    if named:
        return named
    if podman.is_podman(network.client.version()):
        return podman.network(network.client, network.id)["network_interface"]
    return f"br-{network.id[:12]}"


def answered(version: dict[str, Any]) -> str:
    """What answered, as its version endpoint names it: "Docker Engine 20.10.24 (API 1.41)"."""
    name = (version.get("Components") or [{}])[0].get("Name") or "an unnamed engine"
    name = "Docker Engine" if name == "Engine" else name  # dockerd calls itself "Engine"; Podman "Podman Engine"
    return f"{name} {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"


@dataclass(frozen=True)
class Proxy:
    """One docker-proxy process and the binding it serves."""

    pid: int
    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


@dataclass
class Engine:
    """A running engine the suite talks to."""

    client: docker.DockerClient
    url: str
    pid: int
    private: bool = False
    info: dict[str, Any] = field(init=False)
    version: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.info = self.client.info()
        self.version = self.client.version()

    @classmethod
    def connect(cls, url: str, private: bool = False, timeout: int = 60) -> Engine:
        parsed = urlparse(url)
        shown = redact.text(url)
        if parsed.scheme != "unix":
            raise EngineUnavailable(
                f"{shown}: only unix sockets are supported, because the daemon's network namespace "
                "is found from the socket's peer"
            )
        try:
            trusted_listener(parsed.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoEngine(f"no Docker engine answers at {shown}: {exc.strerror}") from None
        except EngineUntrusted as exc:
            raise EngineUntrusted(f"the engine at {shown} is not root's, and the suite, run as root, uses only "
                                  f"root's: {exc}") from None
        except OSError as exc:
            raise EngineUnavailable(f"cannot connect to {shown}: {exc.strerror}") from None
        client = None
        try:
            client = EngineClient(base_url=url, version="auto", timeout=timeout)
            client.ping()
            version = client.version()
        except (docker.errors.DockerException, OSError) as exc:
            if client is not None:
                client.close()
            raise EngineUnavailable(f"something listens at {shown} but does not answer the Docker API: "
                                    f"{redact.text(str(exc))}") from exc
        try:
            pid = daemon_pid(parsed.path)
        except EngineUnavailable as exc:
            client.close()
            raise type(exc)(f"{answered(version)} answers at {shown}, but the suite cannot use it: {exc}") from None
        return cls(client=client, url=url, pid=pid, private=private)

    @property
    def netns(self) -> Netns:
        return namespace_of(self.pid)

    @cached_property
    def product(self) -> str:
        """"docker" or "podman": which engine serves the Docker API here."""
        return podman.PRODUCT if podman.is_podman(self.version) else "docker"

    @cached_property
    def options(self) -> dict[str, Any]:
        if self.product == podman.PRODUCT:
            return {**podman.options(iptables=self.iptables_variant is not None), "argv": cmdline(self.pid)[1:]}
        return daemon_options(self.pid)

    @cached_property
    def bridge_network(self) -> dict[str, Any]:
        """`docker network inspect bridge`, the default bridge's configuration; {} when the engine has none
        (--bridge=none), so the lab still stands and the claims about that network fail, not error."""
        try:
            return self.client.api.inspect_network("bridge")
        except docker.errors.NotFound:
            return {}

    @cached_property
    def default_network(self) -> str:
        """The name a container on the default bridge has in its NetworkSettings.Networks: "bridge", or, on
        Podman, its default network's own name (its compat API answers to "bridge" but reports "podman")."""
        if self.product == podman.PRODUCT:
            return podman.network(self.client, self.bridge_network["Id"])["name"]
        return "bridge"

    @cached_property
    def bridge(self) -> BridgeFacts:
        net = self.bridge_network
        opts = net.get("Options") or {}
        ipam = (net.get("IPAM") or {}).get("Config") or [{}]
        v4 = next((c for c in ipam if ":" not in c.get("Subnet", "")), ipam[0])
        if self.product == podman.PRODUCT:  # its compat inspect leaves Options empty
            name = podman.network(self.client, net["Id"])["network_interface"]
        else:
            name = opts.get("com.docker.network.bridge.name", DEFAULT_BRIDGE)
        return BridgeFacts(
            name=name,
            subnet=v4.get("Subnet"),
            # 20.10 omits the default bridge's gateway from inspect; the bridge's own address is it.
            gateway=v4.get("Gateway") or self._address_of(name),
            icc=opts.get("com.docker.network.bridge.enable_icc", "true") == "true",
            ip_masq=opts.get("com.docker.network.bridge.enable_ip_masquerade", "true") == "true",
            host_binding_ipv4=opts.get("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            mtu=int(opts.get("com.docker.network.driver.mtu", "1500")),
        )

    def _address_of(self, ifname: str) -> str | None:
        with self.netns.iproute() as ipr:
            index = ipr.link_lookup(ifname=ifname)
            found = ipr.get_addr(family=socket.AF_INET, index=index[0]) if index else []
            return found[0].get("IFA_ADDRESS") if found else None

    @cached_property
    def iptables_variant(self) -> str | None:
        return firewall.daemon_variant(self.pid)

    def facts(self) -> dict[str, Any]:
        """The facts a claim's ``applies`` conditions are evaluated against."""
        bridge = self.bridge
        return {
            "userland_proxy": self.options["userland-proxy"],
            "iptables": self.options["iptables"] and self.iptables_variant is not None,
            "ip_masq": bridge.ip_masq,
            "icc": bridge.icc,
            "host_binding_ipv4": bridge.host_binding_ipv4,
            "bridge_mtu": bridge.mtu,
            "bridge_name": bridge.name,
            "bridge_subnet": bridge.subnet,
            "default_bridge": bridge.name == DEFAULT_BRIDGE and bridge.subnet == DEFAULT_SUBNET,
            "private_engine": self.private,
            "engine_version": self.version.get("Version"),
            "engine_product": self.product,
            "firewall_backend": self.firewall_backend,
            "iptables_variant": self.iptables_variant,
            "default_bridge_overrides": default_bridge_overrides(self.options),
            # the daemon's `dns` or `dns-search` replaces the host's in containers started without --dns
            "daemon_dns": bool(self.options.get("dns") or self.options.get("dns-search")),
        }

    @cached_property
    def binary(self) -> str | None:
        """The daemon's executable, as the kernel names it."""
        try:
            return executable(self.pid)
        except (OSError, psutil.Error):  # gone, or not ours to read
            return None

    @cached_property
    def firewall_backend(self) -> str:
        """What writes this engine's rules: GET /info's FirewallBackend.Driver (API 1.49, Docker 28.1), else
        iptables unless the daemon was told --iptables=false."""
        reported = (self.info.get("FirewallBackend") or {}).get("Driver")
        if reported:
            return reported
        return "iptables" if self.options["iptables"] else "none"

    def describe(self) -> dict[str, Any]:
        """The run_info block of report.json for this engine, its credentials masked (safety/redact.py)."""
        version = self.version
        options = {k: v for k, v in self.options.items() if k != "argv"}
        return {
            "engine_product": self.product,
            "engine_binary": self.binary,
            "engine_url": redact.text(self.url),
            "engine_private": self.private,
            "engine_version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "engine_pid": self.pid,
            "daemon_argv": redact.argv(self.options["argv"]),
            "daemon_options": options,
            "bridge": asdict(self.bridge),
            "firewall_backend": self.firewall_backend,
            "iptables_variant": self.iptables_variant,
            "storage_driver": self.info.get("Driver"),
            "cgroup_version": self.info.get("CgroupVersion"),
        }

    def nat_dump(self) -> str:
        """The NAT configuration as the backend shows it: iptables-save's nat table, or nft's JSON listing of
        Docker's own table; the evidence of a configuration claim."""
        if self.firewall_backend == "nftables":
            return json.dumps(nftables.listing(self.netns), indent=1)
        if self.iptables_variant is None:
            return ""
        return firewall.save(self.netns, self.iptables_variant, "nat")

    def nat_rules(self) -> list[firewall.NatRule]:
        """The NAT rules of whichever backend the engine reports, read the same way (firewall.NatRule)."""
        if self.firewall_backend == "nftables":
            return nftables.nat_rules(self.netns)
        if self.iptables_variant is None:
            return []
        return firewall.nat_rules(firewall.save(self.netns, self.iptables_variant, "nat"))

    def proxies(self) -> list[Proxy]:
        """The docker-proxy processes this daemon started."""
        found = []
        for pid, command in processes("docker-proxy", parent=self.pid):
            args = dict(zip(command[1::2], command[2::2], strict=False))  # a trailing flag has no value
            found.append(
                Proxy(
                    pid=pid,
                    proto=args.get("-proto", "tcp"),
                    host_ip=args.get("-host-ip", ""),
                    host_port=int(args.get("-host-port", 0)),
                    container_ip=args.get("-container-ip", ""),
                    container_port=int(args.get("-container-port", 0)),
                )
            )
        return found


@dataclass(frozen=True)
class BridgeFacts:
    name: str
    subnet: str | None
    gateway: str | None
    icc: bool
    ip_masq: bool
    host_binding_ipv4: str
    mtu: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        if self.subnet is None:
            raise ValueError(f"{self.name} has no IPv4 subnet")
        return ipaddress.IPv4Network(self.subnet)

