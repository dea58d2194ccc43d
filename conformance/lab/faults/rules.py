"""Faults in the engine's namespace around its start: rules, sysctls, addresses and links changed there.

After start, every rule of Docker's stays as Docker wrote it and the behaviour around it breaks: a rule
inserted ahead of Docker's or one of Docker's deleted, a sysctl, an address removed, a stale port on the
bridge.  Before start, the namespace holds what the daemon then adopts.  The ``configured-*`` ones change the
configured engine and break what one of its options promises (the resolver --dns names, --icc=false).
"""

from __future__ import annotations

from ..engines import firewall
from ..engines.engine import Engine
from ..engines.lab import Target
from ..engines.probe import EXPOSED_PORT
from ..kernel.netns import Netns
from .fault import Fault


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


def _stale_dnat(engine: Engine) -> None:
    """The rules a crashed daemon left for a container that once held the bridge's first address and
    published its EXPOSEd port: the next container to get that address is published without asking."""
    bridge = engine.bridge
    first, variant, port = bridge.network[2], engine.iptables_variant, EXPOSED_PORT
    firewall.change(engine.netns, variant, "nat", "-I", f"DOCKER ! -i {bridge.name} -p tcp -m tcp --dport {port} "
                                                        f"-j DNAT --to-destination {first}:{port}")
    firewall.change(engine.netns, variant, "filter", "-I", f"DOCKER -d {first}/32 ! -i {bridge.name} -o {bridge.name} "
                                                           f"-p tcp -m tcp --dport {port} -j ACCEPT")


def _stale_dnat_portless(engine: Engine) -> None:
    """A DNAT rule written by hand, or left by a crashed daemon, for port EXPOSED_PORT of the bridge's first
    address with no port in its target (`--to-destination ADDRESS`) and no filter rule admitting it: the next
    container to get that address is DNATed to, although nothing reaches it."""
    bridge = engine.bridge
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"DOCKER ! -i {bridge.name} -p tcp -m tcp --dport {EXPOSED_PORT} "
                    f"-j DNAT --to-destination {bridge.network[2]}")


def _snat_input(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"INPUT -p tcp ! -i lo -j SNAT --to-source {engine.bridge.gateway}")


def _snat_output(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"POSTROUTING ! -o {engine.bridge.name} -j SNAT --to-source {engine.bridge.gateway}")


STALE_PORT_PAIR = ("cfstale0", "cfstale1")


def _stale_bridge_port(engine: Engine) -> None:
    """A veth pair left up with one end on the default bridge, as a crashed daemon or a tool can leave one."""
    port, peer = STALE_PORT_PAIR
    engine.netns.add_veth(port, peer)
    engine.netns.up(peer)
    engine.netns.up(port, master=engine.bridge.name)


def _dns_unheard(engine: Engine) -> None:
    bridge = engine.bridge
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I",
                    f"INPUT -i {bridge.name} -d {bridge.gateway} -p udp --dport 53 -j DROP")


def _icc_bypassed(engine: Engine) -> None:
    bridge = engine.bridge.name
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I", f"FORWARD -i {bridge} -o {bridge} -j ACCEPT")


def _catchall_dnat(engine: Engine) -> None:
    """Every TCP connection to a local address from off the bridge DNATed to the bridge's gateway, whatever its
    port (a rule naming none): a server listening on every address still answers, at another address."""
    bridge = engine.bridge
    firewall.change(engine.netns, engine.iptables_variant, "nat", "-I",
                    f"PREROUTING -p tcp ! -i {bridge.name} -m addrtype --dst-type LOCAL "
                    f"-j DNAT --to-destination {bridge.gateway}")


ORPHAN_CHAIN = "CF-ORPHAN"


def _masquerade_orphaned(engine: Engine) -> None:
    """The bridge's MASQUERADE rule moved, text unchanged, from POSTROUTING to a chain nothing jumps to."""
    bridge, variant = engine.bridge, engine.iptables_variant
    rule = f"-s {bridge.subnet} ! -o {bridge.name} -j MASQUERADE"
    firewall.change(engine.netns, variant, "nat", "-N", ORPHAN_CHAIN)
    firewall.change(engine.netns, variant, "nat", "-A", f"{ORPHAN_CHAIN} {rule}")
    firewall.change(engine.netns, variant, "nat", "-D", f"POSTROUTING {rule}")


def _user_networks_tcp_bridged(engine: Engine) -> None:
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I",
                    "DOCKER-USER -i br-+ -o br-+ -p tcp -j ACCEPT")


FAULTS = (
    Fault("masquerade-deleted", "the bridge's MASQUERADE rule deleted after start", after_start=_delete_masquerade),
    Fault("forward-drop", "`-I DOCKER-USER -j DROP` after start: nothing is forwarded", after_start=_drop_forwarded),
    Fault("bridge-masquerade", "`-I POSTROUTING -o <bridge> -j MASQUERADE` after start: traffic into the "
          "bridge, container to container included, takes the bridge's address", after_start=_masquerade_bridged),
    Fault("bridge-input-drop", "`-I INPUT -i <bridge> -j DROP` after start: the host ignores its containers",
          after_start=_drop_bridge_input),
    Fault("ip-forward-off", "net.ipv4.ip_forward=0 in the engine's namespace after start",
          after_start=_forwarding_off),
    Fault("docker0-preaddressed", f"a docker0 holding {DOCKER0_PREADDRESSED} before the daemon starts, "
          "which the daemon adopts: not the documented 172.17.0.0/16 although no option asks for it",
          before_start=_docker0_preaddressed),
    Fault("bridge-address-removed", "the bridge's gateway address deleted after start; rules intact",
          after_start=_bridge_address_removed),
    Fault("routed-accept", "`-t raw -I PREROUTING` and `-I FORWARD` accepting routed traffic to the bridge "
          "subnet, ahead of Docker's rules, which stay intact", after_start=_routed_accept),
    Fault("stale-dnat", f"the nat and filter rules a crashed daemon left for port {EXPOSED_PORT} of the bridge's "
          "first address, inserted after start", after_start=_stale_dnat),
    Fault("stale-dnat-portless", f"a DNAT rule for port {EXPOSED_PORT} to the bridge's first address with no port "
          "in its target and no filter rule admitting it, inserted after start: the next container there is "
          "DNATed to, unreachable", after_start=_stale_dnat_portless),
    Fault("input-snat", "`-t nat -I INPUT -p tcp ! -i lo -j SNAT --to-source <gateway>` after start: a server "
          "on the host sees every TCP client as the bridge's address", after_start=_snat_input),
    Fault("output-snat", "`-t nat -I POSTROUTING ! -o <bridge> -j SNAT --to-source <gateway>` after start: "
          "what leaves the host takes the bridge's address", after_start=_snat_output),
    Fault("bridge-stale-port", f"a veth pair ({'/'.join(STALE_PORT_PAIR)}) left up on the default bridge after "
          "start: the bridge has carrier with no container attached", after_start=_stale_bridge_port),
    Fault("catchall-dnat", "`-t nat -I PREROUTING -p tcp ! -i <bridge> -m addrtype --dst-type LOCAL -j DNAT "
          "--to-destination <gateway>` after start: every TCP connection to the host from outside is DNATed, "
          "by a rule that names no port, to another of its addresses", after_start=_catchall_dnat),
    Fault("masquerade-orphaned", f"the bridge's MASQUERADE rule moved, its text unchanged, from nat POSTROUTING "
          f"to a chain {ORPHAN_CHAIN} that nothing jumps to, after start", after_start=_masquerade_orphaned),
    Fault("user-networks-tcp-bridged", "`-I DOCKER-USER -i br-+ -o br-+ -p tcp -j ACCEPT` after start: TCP "
          "between user-defined networks is forwarded ahead of the isolation rules, ICMP still dropped",
          after_start=_user_networks_tcp_bridged),
    Fault("configured-dns-unheard", "`-I INPUT -i <bridge> -d <gateway> -p udp --dport 53 -j DROP` in the "
          "configured engine's namespace: the --dns resolver never hears its containers",
          target=Target.CONFIGURED, after_start=_dns_unheard),
    Fault("configured-icc-bypassed", "`-I FORWARD -i <bridge> -o <bridge> -j ACCEPT` ahead of Docker's rules "
          "in the configured engine's namespace: --icc=false is not enforced", target=Target.CONFIGURED,
          after_start=_icc_bypassed),
)
