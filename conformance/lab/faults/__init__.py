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

import ctypes
import inspect
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ... import FIXTURES
from ..engines import firewall
from ..engines.engine import Engine
from ..engines.private import PrivateEngine
from ..kernel.netns import Netns
from ..safety.identity import Run


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
BundleEdit = Callable[[dict, str, str, str], None]  # (spec, network mode, bundle, engine netns): _runtime


def _runtime(action: str | None, engine_netns: str, bundle: BundleEdit | None = None,
             data_root: Path | None = None) -> str:
    """runc, and before `runc start` *action* in the new container's network namespace, which the engine
    has configured by then (20.10 in a prestart hook of `runc create`; 26 and later between create and
    start, daemon/start.go initializeCreatedTask) while the container's process has not started yet;
    $ENGINE_NETNS names the engine's.  Host-mode containers, which share the engine's, are left alone.

    Before `runc create`, *bundle* (a self-contained function: its source is copied into the wrapper) edits
    the OCI bundle's config.json as `bundle(spec, mode, bundle_dir, engine_netns)`, *mode* being the
    container's network mode as the engine keeps it (*data_root*/containers/ID/hostconfig.json: "default",
    "none", "container:X", a network's name)."""
    runc, nsenter, sh, search_path = _real("runc"), _real("nsenter"), _real("sh"), "/usr/sbin:/usr/bin:/sbin:/bin"
    lines = [f"#!{sys.executable}", "import json, os, subprocess, sys", "args = sys.argv[1:]"]
    if bundle is not None:
        lines += [
            inspect.getsource(bundle),
            "if 'create' in args:",
            "    bundle_dir = args[args.index('--bundle') + 1]",
            "    config = os.path.join(bundle_dir, 'config.json')",
            "    with open(config) as f:",
            "        spec = json.load(f)",
            f"    with open(os.path.join({str(data_root)!r}, 'containers', args[-1], 'hostconfig.json')) as f:",
            "        mode = json.load(f)['NetworkMode']",
            f"    {bundle.__name__}(spec, mode, bundle_dir, {engine_netns!r})",
            "    with open(config, 'w') as f:",
            "        json.dump(spec, f)",
        ]
    if action is not None:
        script = f"""[ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i "$ENGINE_NETNS")" ] && exit 0
ip -o link show eth0 >/dev/null 2>&1 || exit 0
{action}"""
        lines += [
            "if 'start' in args:",
            "    state = subprocess.run([" + repr(runc) + ", *args[:args.index('start')], 'state', args[-1]],",
            "                           capture_output=True, text=True)",
            "    pid = str(json.loads(state.stdout)['pid'])",
            f"    subprocess.run([{nsenter!r}, '-t', pid, '-n', {sh!r}, '-c', {script!r}],",
            f"                   env={{'PATH': {search_path!r}, 'ENGINE_NETNS': {engine_netns!r}}})",
        ]
    lines.append(f"os.execv({runc!r}, [{runc!r}, *args])")
    return "\n".join(lines) + "\n"


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
    in_bundle: BundleEdit | None = None  # edits each container's OCI config before `runc create` (_runtime)
    expected: Mapping[str, str] = field(default_factory=dict)  # claim id -> why it fails here
    expected_when: Mapping[str, str] = field(default_factory=dict)
    # The lab it changes (shape.EngineLab.role): "engine" (the engine under test), "configured" (the engine
    # run with the options some claims are about, configured.py) or "hosts" (the two-host lab, hosts.py,
    # which applies its HostFault); the other labs start healthy.
    lab: str = "engine"

    def start(self, stack: ExitStack, run: Run, name: str, options: tuple[str, ...] = (),
              prepare: Callable[[Netns], None] | None = None, dockerd: str | Path | None = None) -> Engine:
        """Start this variant's private engine (stopped when *stack* closes), with extra *options* and the
        lab's own *prepare* (run in its namespace before this variant's ``before_start``), from *dockerd*
        (a build of --dockerd) or the one on PATH."""
        def prepared(netns: Netns) -> None:
            for step in (prepare, self.before_start):
                if step is not None:
                    step(netns)

        private = PrivateEngine(run, name, self.options + tuple(options), prepare=prepared,
                                tools=self.tools(), dockerd=dockerd)
        if self.in_container is not None or self.in_bundle is not None:
            private.tools[RUNTIME] = _runtime(self.in_container, str(private.netns.path), self.in_bundle,
                                              private.state / "data")
            private.options += [f"--add-runtime={RUNTIME}={private.tooldir / RUNTIME}", f"--default-runtime={RUNTIME}"]
        engine = stack.enter_context(private).engine
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


NO_NETCONF_PROFILE = FIXTURES / "faults" / "seccomp-no-netconf.json"

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

# Faults aimed at the claims of the container, none, usernet, bridge and defaults topics: how the engine wires a
# container's namespaces and bridges.  The bundle edits are copied into the runtime wrapper (_runtime), so each
# is self-contained; "container:ID" members find X through the namespace path the engine gave them.
def _joined_netns_split(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A container: member's network namespace path dropped: runc makes it one of its own (a down lo only)."""
    if mode.startswith("container:"):
        for namespace in spec["linux"]["namespaces"]:
            if namespace["type"] == "network":
                namespace.pop("path", None)


def _joined_tmp_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """X's /tmp bind-mounted at a container: member's /tmp.  X is the sibling bundle whose init.pid is the
    process the member's namespace path names; its rootfs is mounted where runc runs (a mount of X's own
    mount namespace cannot be bind-mounted from here)."""
    import json
    import os
    if mode.startswith("container:"):
        (net,) = (n for n in spec["linux"]["namespaces"] if n["type"] == "network")
        pid, bundles = net["path"].split("/")[2], os.path.dirname(bundle)
        for sibling in os.listdir(bundles):
            try:
                with open(os.path.join(bundles, sibling, "init.pid")) as f:
                    if f.read().strip() != pid:
                        continue
                with open(os.path.join(bundles, sibling, "config.json")) as f:
                    root = os.path.join(bundles, sibling, json.load(f)["root"]["path"])
            except OSError:
                continue
            spec["mounts"].append({"destination": "/tmp", "type": "bind", "options": ["rbind", "rw"],
                                   "source": os.path.join(root, "tmp")})


def _joined_pid_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A container: member put into X's PID namespace, as --pid container:X would."""
    if mode.startswith("container:"):
        namespaces = spec["linux"]["namespaces"]
        (net,) = (n for n in namespaces if n["type"] == "network")
        for namespace in namespaces:
            if namespace["type"] == "pid":
                namespace["path"] = net["path"].replace("/ns/net", "/ns/pid")


def _own_netns_dropped(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """Each container that should get a namespace of its own (default bridge, user networks, none) run in the
    engine's instead; 20.10's libnetwork-setkey prestart hook, which would move its interface in, and the
    net.* sysctls, which runc refuses to set in the namespace it runs in, dropped.  Docker 26 and later set
    the sandbox up in the created task's namespace, so there a bridge container's start fails (its address
    conflicts with the bridge's route): a none-mode container still starts in the engine's namespace."""
    if mode != "host" and not mode.startswith("container:"):
        for namespace in spec["linux"]["namespaces"]:
            if namespace["type"] == "network":
                namespace["path"] = engine_netns
        sysctls = spec["linux"].get("sysctl") or {}
        spec["linux"]["sysctl"] = {key: value for key, value in sysctls.items() if not key.startswith("net.")}
        hooks = spec.get("hooks", {})
        hooks["prestart"] = [h for h in hooks.get("prestart", []) if "libnetwork-setkey" not in h.get("args", [])]


STALE_PORT_PAIR = ("cfstale0", "cfstale1")


def _stale_bridge_port(engine: Engine) -> None:
    """A veth pair left up with one end on the default bridge, as a crashed daemon or a tool can leave one."""
    port, peer = STALE_PORT_PAIR
    engine.netns.add_veth(port, peer)
    engine.netns.up(peer)
    engine.netns.up(port, master=engine.bridge.name)


def _user_bridge_unaddressed() -> dict[str, str]:
    return {"iptables": (
        "#!/bin/sh\n"
        "# fault user-bridge-unaddressed: each user-defined bridge the daemon writes rules for loses its IPv4\n"
        'for arg; do\n'
        '  case "$arg" in br-*) ip -4 addr flush dev "$arg" 2>/dev/null ;; esac\n'
        'done\n'
        f'exec {_real("iptables")} "$@"\n'
    )}


WIRING_FAULTS = (
    Variant("joined-netns-split", "a runtime that gives each --network container:X member a network namespace of "
            "its own (the spec's path to X's dropped), so it shares nothing of X's stack", False,
            in_bundle=_joined_netns_split),
    Variant("joined-tmp-shared", "a runtime that bind-mounts X's /tmp at /tmp of each --network container:X member",
            False, in_bundle=_joined_tmp_shared),
    Variant("joined-pid-shared", "a runtime that puts each --network container:X member into X's PID namespace",
            False, in_bundle=_joined_pid_shared),
    Variant("own-netns-dropped", "a runtime that runs each bridge, user-network and none-mode container in the "
            "engine's network namespace instead of one of its own", False, in_bundle=_own_netns_dropped),
    Variant("bridge-stale-port", f"a veth pair ({'/'.join(STALE_PORT_PAIR)}) left up on the default bridge after "
            "start: the bridge has carrier with no container attached", False, after_start=_stale_bridge_port),
    Variant("user-bridge-unaddressed", "an iptables on the daemon's PATH that flushes the IPv4 addresses of each "
            "user-defined bridge the daemon writes rules for, as a network manager taking over new bridges does",
            False, tools=_user_bridge_unaddressed),
    Variant("eth1-squatted", "a runtime that adds a veth pair eth1/cfsquat1 to each container's namespace before "
            "it starts, as pipework or a CNI hook would: the namespace holds interfaces the engine did not make, and "
            "`docker network connect` cannot add its own eth1", False,
            in_container="ip link add eth1 type veth peer name cfsquat1"),
)
FAULTS += WIRING_FAULTS
VARIANTS.update({variant.name: variant for variant in WIRING_FAULTS})

# Faults aimed at the engine run with the options the configured claims are about (configured.py): ``--variant``
# and ``mutate`` start that engine as the fault, the engine under test healthy.  Each leaves the options as given
# and breaks what one of them promises: a runtime taking each container's veth off the --bridge bridge or giving
# it an address off that bridge's subnet, a rule that keeps the --dns resolver from hearing the containers, a
# rule inserted ahead of Docker's --icc=false drop.
def _dns_unheard(engine: Engine) -> None:
    bridge = engine.bridge
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I",
                    f"INPUT -i {bridge.name} -d {bridge.gateway} -p udp --dport 53 -j DROP")


def _icc_bypassed(engine: Engine) -> None:
    bridge = engine.bridge.name
    firewall.change(engine.netns, engine.iptables_variant, "filter", "-I", f"FORWARD -i {bridge} -o {bridge} -j ACCEPT")


CONFIGURED_FAULTS = (
    Variant("configured-veth-unbridged", "the configured engine's runtime takes each container's host-side veth "
            "off the --bridge bridge before it starts", False, in_container=VARIANTS["veth-unbridged"].in_container,
            lab="configured"),
    Variant("configured-eth0-readdressed", "the configured engine's runtime replaces each container's IPv4 "
            f"address with {FOREIGN_ADDRESS}, off the --bridge bridge's subnet, before it starts", False,
            in_container=VARIANTS["eth0-readdressed"].in_container, lab="configured"),
    Variant("configured-dns-unheard", "`-I INPUT -i <bridge> -d <gateway> -p udp --dport 53 -j DROP` in the "
            "configured engine's namespace: the --dns resolver never hears its containers", False,
            after_start=_dns_unheard, lab="configured"),
    Variant("configured-icc-bypassed", "`-I FORWARD -i <bridge> -o <bridge> -j ACCEPT` ahead of Docker's rules "
            "in the configured engine's namespace: --icc=false is not enforced", False, after_start=_icc_bypassed,
            lab="configured"),
)
FAULTS += CONFIGURED_FAULTS
VARIANTS.update({variant.name: variant for variant in CONFIGURED_FAULTS})

# Faults aimed at the dns and netns claims.  The bundle edits (self-contained: _runtime copies them into the
# wrapper) point the bind mount of a file the engine wrote at one of the bundle's own, or set the hostname, as
# a hook rewriting the spec would; the netns-* ones change each namespace a check creates, as a distribution's
# hook would, needing no engine at all.
def _hosts_stock(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """/etc/hosts a stock one of the bundle's, localhost lines only: no --link, --add-host or --hostname entry."""
    (hosts,) = (mount for mount in spec["mounts"] if mount["destination"] == "/etc/hosts")
    hosts["source"] = f"{bundle}/cf-fault-hosts"
    with open(hosts["source"], "w") as f:
        f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")


def _resolv_conf_embedded(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """/etc/resolv.conf one of the bundle's naming only the embedded resolver, whatever --dns or the host said."""
    (conf,) = (mount for mount in spec["mounts"] if mount["destination"] == "/etc/resolv.conf")
    conf["source"] = f"{bundle}/cf-fault-resolv.conf"
    with open(conf["source"], "w") as f:
        f.write("nameserver 127.0.0.11\n")


def _hostname_overridden(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    spec["hostname"] = "cf-fault-host"


MNT_DETACH = 2  # umount2(2): detach now, unmount once unused


def _netns_unmounted(netns: Netns) -> None:
    """The namespace's bind mount taken away (umount2(2), lazily), leaving its empty file under /run/netns."""
    if ctypes.CDLL(None, use_errno=True).umount2(netns.path.encode(), MNT_DETACH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"umount {netns.path}: {os.strerror(error)}")


def _netns_extra_link(netns: Netns) -> None:
    with netns.iproute() as ipr:
        ipr.link("add", ifname="cf-extra0", kind="bridge")


DNS_AND_NETNS_FAULTS = (
    Variant("hosts-stock", "a runtime that mounts a stock /etc/hosts (localhost lines only) over the one the engine "
            "wrote, so no --link, --add-host or --hostname entry reaches the container", False,
            in_bundle=_hosts_stock),
    Variant("resolv-conf-embedded", "a runtime that mounts a resolv.conf naming only the embedded resolver "
            "127.0.0.11 over the one the engine wrote (--dns and the host's servers lost)", False,
            in_bundle=_resolv_conf_embedded),
    Variant("hostname-overridden", "a runtime that sets every container's hostname to cf-fault-host in its OCI "
            "config, whatever --hostname or the container id says", False, in_bundle=_hostname_overridden),
    Variant("netns-unmounted", "the bind mount of every new named namespace removed, as a namespace manager that "
            "unmounts and forgets to unlink would: its file under /run/netns stays, naming no namespace", False,
            namespaces=_netns_unmounted),
    Variant("netns-extra-link", "a bridge cf-extra0 added to every new namespace, as a distribution's "
            "hook might", False, namespaces=_netns_extra_link),
)
FAULTS += DNS_AND_NETNS_FAULTS
VARIANTS.update({variant.name: variant for variant in DNS_AND_NETNS_FAULTS})

# Faults aimed at the host topic's isolation claims: a runtime that edits each host-mode container's OCI config
# before `runc create` (or acts for it in the engine's namespace, where runc runs), as a misbehaving runtime or
# hook would; every other container is left alone.  Dropping the mount namespace is not one of them: runc refuses
# masked paths without one, and without those the container would run in the host's own mounts and root.
def _host_netns_unshared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A host-mode container given a network namespace of its own (a new, empty one) instead of the engine's."""
    if mode == "host":
        namespaces = spec["linux"]["namespaces"]
        spec["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "network"] + [{"type": "network"}]


def _host_veth_created(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A veth pair (vh<id>/vp<id>, both ends in the engine's namespace) made for each host-mode container."""
    import os
    import subprocess
    if mode == "host":
        short = os.path.basename(bundle)[:10]  # the bundle directory is named for the container's id
        subprocess.run(["ip", "link", "add", f"vh{short}", "type", "veth", "peer", "name", f"vp{short}"],
                       check=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _host_pid_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A host-mode container's PID namespace dropped: it runs in the host's, as --pid=host would."""
    if mode == "host":
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "pid"]


def _host_tmp_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """The host's /tmp bind-mounted at a host-mode container's /tmp (runc runs in the host's mounts)."""
    if mode == "host":
        spec["mounts"].append({"destination": "/tmp", "type": "bind", "source": "/tmp", "options": ["rbind", "rw"]})


HOST_MODE_FAULTS = (
    Variant("host-netns-unshared", "a runtime that gives each host-mode container a network namespace of its own "
            "(a new, empty one) in its OCI config", False, in_bundle=_host_netns_unshared),
    Variant("host-veth-created", "a runtime that adds a veth pair to the engine's namespace for each host-mode "
            "container before it is created, as a network hook that ignores host mode would", False,
            in_bundle=_host_veth_created),
    Variant("host-pid-shared", "a runtime that removes the PID namespace from each host-mode container's OCI config: "
            "it runs in the host's, as --pid=host would", False, in_bundle=_host_pid_shared),
    Variant("host-tmp-shared", "a runtime that bind-mounts the host's /tmp over each host-mode container's /tmp in "
            "its OCI config", False, in_bundle=_host_tmp_shared),
)
FAULTS += HOST_MODE_FAULTS
VARIANTS.update({variant.name: variant for variant in HOST_MODE_FAULTS})

# two-host lab: faults of the two hosts and the segment between them (two_hosts.py applies them by
# name; the engine under test is left healthy).
from ..engines.two_hosts import HOST_FAULTS  # noqa: E402 - hosts.py does not import this module

FAULTS += tuple(Variant(fault.name, fault.why, False, lab="hosts") for fault in HOST_FAULTS)
VARIANTS.update({variant.name: variant for variant in FAULTS[-len(HOST_FAULTS):]})
