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
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import firewall
from .engine import Engine
from .netns import Netns


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
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I", f"POSTROUTING -o {engine.bridge.name} -j MASQUERADE")


def _drop_bridge_input(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I", f"INPUT -i {engine.bridge.name} -j DROP")


def _forwarding_off(engine: Engine) -> None:
    engine.netns.sysctl("net/ipv4/ip_forward", "0")


@dataclass(frozen=True)
class Variant:
    name: str
    why: str
    healthy: bool
    options: tuple[str, ...] = ()
    tools: Callable[[], dict[str, str]] = dict  # name -> script, put first on the daemon's PATH
    after_start: Callable[[Engine], None] | None = None
    # Applied to every namespace a check creates (conftest's ``namespaces``): a fault for the claims that
    # need no engine, as a distribution's hook or sysctl default would set each new namespace up.
    namespaces: Callable[[Netns], None] | None = None


FAULTS = (
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
