"""Private engines started as named variants: faults that break one thing, and healthy but unusual setups.

A *fault* makes a host wrong the way a bad option, a stray rule or a regressed
tool would; the catalog says which claims' checks must then fail (``faults:``),
so every check is shown to be able to fail (principle 5).  An *unusual*
configuration is healthy: every behaviour claim must still pass on it, and only
claims about the documented defaults may be reported not applicable.

A variant changes only a private engine the suite starts: its daemon options,
tools on the daemon's own PATH (never the host's alternatives), and rules or
sysctls in the engine's own namespace once it runs.  ``python -m conformance
--variant NAME`` runs the checks against one; ``python -m conformance mutate``
runs the whole map.

Some faults leave every rule's text as Docker wrote it and break the behaviour
around it: a rule inserted ahead of Docker's, a sysctl, an address or route
removed, or a runtime (``in_container``) that changes each container's network
namespace after the engine configured it and before the container's process
starts, as a misbehaving hook or agent would.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from . import firewall
from .engine import Engine
from .netns import Netns
from .private import PrivateEngine
from .run import Run


def _real(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FileNotFoundError(f"{tool} is not installed (apt-get install iptables)")
    return path


def _legacy_iptables() -> dict[str, str]:
    return {name: f'#!/bin/sh\nexec {_real(f"{name}-legacy")} "$@"\n' for name in ("iptables", "ip6tables")}


def _dnat_dropped() -> dict[str, str]:
    return {"iptables": (
        "#!/bin/sh\n"
        "# fault dnat-dropped: DNAT rules are reported added and never reach the kernel\n"
        'for arg; do\n'
        '  case "$arg" in -A|-I) add=1 ;; DNAT) dnat=1 ;; esac\n'
        'done\n'
        '[ -n "$add" ] && [ -n "$dnat" ] && exit 0\n'
        f'exec {_real("iptables")} "$@"\n'
    )}


def _inert_proxy() -> dict[str, str]:
    # The daemon waits for "0\n" on fd 3; then this holds no socket.  "$0" keeps the run's
    # directory in the argv, so a sweep after a crash still finds the process.
    return {"docker-proxy": (
        "#!/bin/sh\n"
        "printf '0\\n' >&3\n"
        "exec 3>&-\n"
        f"exec {sys.executable} -c 'import signal; signal.pause()' \"$0\"\n"
    )}


def _delete_masquerade(engine: Engine) -> None:
    bridge = engine.bridge
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-D",
                    f"POSTROUTING -s {bridge.subnet} ! -o {bridge.name} -j MASQUERADE")


def _drop_forwarded(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I", "DOCKER-USER -j DROP")


def _masquerade_bridged(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"POSTROUTING -o {engine.bridge.name} -j MASQUERADE")


def _drop_bridge_input(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I", f"INPUT -i {engine.bridge.name} -j DROP")


def _forwarding_off(engine: Engine) -> None:
    engine.netns.sysctl("net/ipv4/ip_forward", "0")


def _forwarding_on(netns: Netns) -> None:
    """As on a host that routed before Docker started (a Kubernetes node, a router, a libvirt host)."""
    netns.sysctl("net/ipv4/ip_forward", "1")


DOCKER0_PREADDRESSED = "192.168.239.1/24"


def _docker0_preaddressed(netns: Netns) -> None:
    """A docker0 left with another address before the daemon starts: the daemon adopts its subnet."""
    with netns.iproute() as ipr:
        ipr.link("add", ifname="docker0", kind="bridge")
        index = ipr.link_lookup(ifname="docker0")[0]
        address, prefix = DOCKER0_PREADDRESSED.split("/")
        ipr.addr("add", index=index, address=address, prefixlen=int(prefix))


def _bridge_address_removed(engine: Engine) -> None:
    bridge = engine.bridge
    with engine.netns.iproute() as ipr:
        ipr.addr("del", index=ipr.link_lookup(ifname=bridge.name)[0], address=bridge.gateway,
                 prefixlen=bridge.network.prefixlen)


def _routed_accept(engine: Engine) -> None:
    """Routed traffic to the bridge subnet accepted ahead of Docker's rules: raw first (Docker 28's
    direct-access drops), then FORWARD (the DOCKER chain's drops and the FORWARD policy)."""
    subnet, bridge, variant = engine.bridge.subnet, engine.bridge.name, engine.iptables_variant
    firewall.change(engine.netns, variant, "raw", "-I", f"PREROUTING -d {subnet} ! -i {bridge} -j ACCEPT")
    firewall.change(engine.netns, variant, "filter", "-I", f"FORWARD -d {subnet} -o {bridge} -j ACCEPT")


STALE_PORT = 9999  # the port the probe image EXPOSEs


def _stale_dnat(engine: Engine) -> None:
    """The rules a crashed daemon left for a container that once held the bridge's first address and
    published its EXPOSEd port: the next container to get that address is published without asking."""
    bridge = engine.bridge
    first, variant = bridge.network[2], engine.iptables_variant
    firewall.change(engine.netns, variant, "nat", "-I", f"DOCKER ! -i {bridge.name} -p tcp -m tcp --dport {STALE_PORT} "
                                                        f"-j DNAT --to-destination {first}:{STALE_PORT}")
    firewall.change(engine.netns, variant, "filter", "-I", f"DOCKER -d {first}/32 ! -i {bridge.name} -o {bridge.name} "
                                                           f"-p tcp -m tcp --dport {STALE_PORT} -j ACCEPT")


RUNTIME = "cf-fault-runtime"


def _runtime(action: str, engine_netns: str) -> str:
    """runc, and before `runc start` *action* in the new container's network namespace, which the engine
    has configured by then (20.10 in a prestart hook of `runc create`; 26 and later between create and
    start, daemon/start.go initializeCreatedTask) while the container's process has not started yet;
    $ENGINE_NETNS names the engine's.  Host-mode containers, which share the engine's, are left alone."""
    runc, nsenter, sh = _real("runc"), _real("nsenter"), _real("sh")
    script = f"""[ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i "$ENGINE_NETNS")" ] && exit 0
ip -o link show eth0 >/dev/null 2>&1 || exit 0
{action}"""
    return (
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "if 'start' in args:\n"
        "    state = subprocess.run([" + repr(runc) + ", *args[:args.index('start')], 'state', args[-1]],\n"
        "                           capture_output=True, text=True)\n"
        "    pid = str(json.loads(state.stdout)['pid'])\n"
        f"    subprocess.run([{nsenter!r}, '-t', pid, '-n', {sh!r}, '-c', {script!r}],\n"
        f"                   env={{'PATH': {'/usr/sbin:/usr/bin:/sbin:/bin'!r}, 'ENGINE_NETNS': {engine_netns!r}}})\n"
        f"os.execv({runc!r}, [{runc!r}, *args])\n"
    )


_KEEP_ROUTE = 'gw=$(ip -4 route show default | cut -d" " -f3)'
_RESTORE_ROUTE = '[ -n "$gw" ] && ip route add default via "$gw"'
FOREIGN_ADDRESS = "10.254.77.2/24"
FIXED_MAC = "02:42:0a:fe:4d:02"


@dataclass(frozen=True)
class Variant:
    """One way to start a private engine.

    ``expected`` (healthy variants only) names the claims this configuration rightly makes fail on the
    engines ``expected_when`` describes (same syntax as a claim's ``applies``), with the reason: the
    mutation run reports them as expected failures through an expectations file, never as passes, and
    reports them failed if they pass there (the expectation went stale) or fail elsewhere.
    """

    name: str
    why: str
    healthy: bool
    options: tuple[str, ...] = ()
    tools: Callable[[], dict[str, str]] = dict  # name -> script, put first on the daemon's PATH
    before_start: Callable[[Netns], None] | None = None  # in the engine's namespace, before dockerd starts
    after_start: Callable[[Engine], None] | None = None
    # Applied to every namespace a check creates (conftest's ``namespaces``): a fault for the claims that
    # need no engine, as a distribution's hook or sysctl default would set each new namespace up.
    namespaces: Callable[[Netns], None] | None = None
    in_container: str | None = None  # shell run in each new container's namespace before its process starts
    expected: Mapping[str, str] = field(default_factory=dict)  # claim id -> why it fails here
    expected_when: Mapping[str, str] = field(default_factory=dict)

    def start(self, stack: ExitStack, run: Run, name: str, options: tuple[str, ...] = (),
              dockerd: str | Path | None = None) -> Engine:
        """Start this variant's private engine (stopped when *stack* closes), with extra *options*, from
        *dockerd* (a build of --dockerd) or the one on PATH."""
        private = PrivateEngine(run, name, self.options + tuple(options), prepare=self.before_start,
                                tools=self.tools(), dockerd=dockerd)
        if self.in_container is not None:
            private.tools[RUNTIME] = _runtime(self.in_container, str(private.netns.path))
            private.options += [f"--add-runtime={RUNTIME}={private.tooldir / RUNTIME}", f"--default-runtime={RUNTIME}"]
        engine = stack.enter_context(private)
        if self.after_start is not None:
            self.after_start(engine)
        return engine


FAULTS: tuple[Variant, ...] = (
    Variant("ip-masq-off", "--ip-masq=false: no MASQUERADE rule for the bridge", False, ("--ip-masq=false",)),
    Variant("iptables-off", "--iptables=false: the daemon writes no firewall rules", False, ("--iptables=false",)),
    Variant("binds-loopback", "--ip=127.0.0.1: ports published without an address bind loopback only", False,
            ("--ip=127.0.0.1",)),
    Variant("daemon-dns", "--dns=192.0.2.53: containers get the daemon's resolver, not the host's", False,
            ("--dns=192.0.2.53",)),
    Variant("proxy-inert", "a docker-proxy that reports ready and serves nothing", False, tools=_inert_proxy),
    Variant("dnat-dropped", "an iptables that drops the daemon's DNAT rules and reports success", False,
            tools=_dnat_dropped),
    Variant("masquerade-deleted", "the bridge's MASQUERADE rule deleted after start", False,
            after_start=_delete_masquerade),
    Variant("forward-drop", "`-I DOCKER-USER -j DROP` after start: nothing is forwarded", False,
            after_start=_drop_forwarded),
    Variant("bridge-masquerade", "`-I POSTROUTING -o <bridge> -j MASQUERADE` after start: traffic into the "
            "bridge, container to container included, takes the bridge's address", False,
            after_start=_masquerade_bridged),
    Variant("bridge-input-drop", "`-I INPUT -i <bridge> -j DROP` after start: the host ignores its containers",
            False, after_start=_drop_bridge_input),
    Variant("ip-forward-off", "net.ipv4.ip_forward=0 in the engine's namespace after start", False,
            after_start=_forwarding_off),
    Variant("bridge-none", "--bridge=none: the engine makes no default bridge network", False, ("--bridge=none",)),
    Variant("docker0-preaddressed", f"a docker0 holding {DOCKER0_PREADDRESSED} before the daemon starts, "
            "which the daemon adopts: not the documented 172.17.0.0/16 although no option asks for it", False,
            before_start=_docker0_preaddressed),
    Variant("bridge-address-removed", "the bridge's gateway address deleted after start; rules intact", False,
            after_start=_bridge_address_removed),
    Variant("routed-accept", "`-t raw -I PREROUTING` and `-I FORWARD` accepting routed traffic to the bridge "
            "subnet, ahead of Docker's rules, which stay intact", False, after_start=_routed_accept),
    Variant("stale-dnat", f"the nat and filter rules a crashed daemon left for port {STALE_PORT} of the bridge's "
            "first address, inserted after start", False, after_start=_stale_dnat),
    Variant("eth0-mtu-shrunk", "a runtime that sets each container's eth0 to MTU 1280 before it starts", False,
            in_container="ip link set eth0 mtu 1280"),
    Variant("eth0-readdressed", f"a runtime that replaces each container's IPv4 address with {FOREIGN_ADDRESS} "
            "(no default route left) before it starts", False,
            in_container=f"ip -4 addr flush dev eth0 && ip addr add {FOREIGN_ADDRESS} dev eth0"),
    Variant("eth0-mac-fixed", f"a runtime that gives every container's eth0 the MAC {FIXED_MAC} before it starts",
            False, in_container=f"{_KEEP_ROUTE}; ip link set eth0 down && ip link set eth0 address {FIXED_MAC} && "
                                f"ip link set eth0 up; {_RESTORE_ROUTE}"),
    Variant("veth-unbridged", "a runtime that takes each container's host-side veth off the bridge before it "
            "starts", False,
            in_container='peer=$(ip -o link show eth0 | sed -n "s/^[0-9]*: eth0@if\\([0-9]*\\):.*/\\1/p"); '
                         'host=$(nsenter --net="$ENGINE_NETNS" ip -o link | sed -n "s/^$peer: \\([^@:]*\\).*/\\1/p"); '
                         'nsenter --net="$ENGINE_NETNS" ip link set dev "$host" nomaster'),
)

UNUSUAL = (
    Variant("custom-bip", "--bip=192.168.240.1/24 instead of 172.17.0.1/16", True, ("--bip=192.168.240.1/24",)),
    Variant("address-pools", "default-address-pools base=10.123.0.0/16, size 24", True,
            ("--default-address-pool=base=10.123.0.0/16,size=24",)),
    Variant("mtu-1400", "--mtu=1400", True, ("--mtu=1400",)),
    Variant("iptables-legacy", "the iptables-legacy backend (on the daemon's PATH only)", True,
            tools=_legacy_iptables),
    Variant("userland-proxy-off", "--userland-proxy=false: hairpin NAT instead of docker-proxy", True,
            ("--userland-proxy=false",)),
    Variant("ipv6", "--ipv6 --fixed-cidr-v6=fd00:cf::/64: the default bridge is dual-stack", True,
            ("--ipv6", "--fixed-cidr-v6=fd00:cf::/64")),
    Variant("icc-off", "--icc=false (the CIS benchmark's advice): containers on the default bridge are isolated",
            True, ("--icc=false",)),
    Variant("forwarded-before-start", "net.ipv4.ip_forward=1 before dockerd starts, as on a host that routed "
            "already: the daemon leaves the FORWARD policy ACCEPT", True, before_start=_forwarding_on,
            expected={"bridge/not-addressable-from-outside":
                      "FORWARD policy ACCEPT, and Docker before 28.0 adds no filter rule for routed access to a "
                      "container's unpublished ports (28.0 drops it in the DOCKER chain: moby c9fdeaf70e)"},
            expected_when={"engine_version": "<28"}),
)

VARIANTS = {variant.name: variant for variant in FAULTS + UNUSUAL}


# Faults aimed at the claims of the host, none, container, usernet, dns and netns topics.  The two *-snat ones
# are rules in the engine's namespace that leave every rule of Docker's intact, netconf-denied a seccomp
# profile, and the netns-* ones change each namespace a check creates, needing no engine at all.
def _snat_input(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"INPUT -p tcp ! -i lo -j SNAT --to-source {engine.bridge.gateway}")


def _snat_output(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"POSTROUTING ! -o {engine.bridge.name} -j SNAT --to-source {engine.bridge.gateway}")


def _lo_up(netns: Netns) -> None:
    netns.up("lo")


def _icmp_ignored(netns: Netns) -> None:
    netns.sysctl("net/ipv4/icmp_echo_ignore_all", "1")


def _bridge_filtered(netns: Netns) -> None:
    result = netns.run("ebtables", "-A", "FORWARD", "-j", "DROP")
    if result.returncode != 0:
        raise OSError(f"ebtables in {netns}: {result.stderr.strip()}")


NO_NETCONF_PROFILE = Path(__file__).resolve().parents[2] / "fixtures" / "faults" / "seccomp-no-netconf.json"

HOST_AND_NAMESPACE_FAULTS = (
    Variant("input-snat", "`-t nat -I INPUT -p tcp ! -i lo -j SNAT --to-source <gateway>` after start: a server "
            "on the host sees every TCP client as the bridge's address", False, after_start=_snat_input),
    Variant("output-snat", "`-t nat -I POSTROUTING ! -o <bridge> -j SNAT --to-source <gateway>` after start: "
            "what leaves the host takes the bridge's address", False, after_start=_snat_output),
    Variant("netconf-denied", "a --seccomp-profile denying netlink sockets and the SIOCSIF* ioctls: no container "
            "can configure an interface, even with NET_ADMIN", False, (f"--seccomp-profile={NO_NETCONF_PROFILE}",)),
    Variant("netns-lo-up", "lo brought up in every new namespace, as a distribution hook might", False,
            namespaces=_lo_up),
    Variant("netns-icmp-ignored", "net.ipv4.icmp_echo_ignore_all=1 in every new namespace: no echo is answered",
            False, namespaces=_icmp_ignored),
    Variant("netns-bridge-filtered", "`ebtables -A FORWARD -j DROP` in every new namespace: its bridges forward "
            "nothing", False, namespaces=_bridge_filtered),
)
FAULTS += HOST_AND_NAMESPACE_FAULTS
VARIANTS.update({variant.name: variant for variant in HOST_AND_NAMESPACE_FAULTS})

# two-host lab: faults of the two hosts and the segment between them (conformance/lab/hosts.py applies them by
# name; the engine under test is left healthy).
from .hosts import HOST_FAULTS  # noqa: E402 - hosts.py does not import this module

FAULTS += tuple(Variant(fault.name, fault.why, False) for fault in HOST_FAULTS)
VARIANTS.update({variant.name: variant for variant in FAULTS[-len(HOST_FAULTS):]})
