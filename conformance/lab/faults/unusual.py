"""Unusual but healthy configurations: a private engine started the way a fault is (fault.py), on which every
behaviour claim must still pass; only claims about the documented defaults may be reported not applicable,
and a claim the configuration rightly makes fail on some engines is named in ``expected``.
"""

from __future__ import annotations

from ..engines.engine import Engine
from ..engines.lab import Target
from ..engines.probe import ensure_probe_image
from ..kernel.netns import Netns
from .fault import Fault
from .wrapper import real


def _legacy_iptables() -> dict[str, str]:
    return {name: f'#!/bin/sh\nexec {real(f"{name}-legacy")} "$@"\n' for name in ("iptables", "ip6tables")}


def _forwarding_on(netns: Netns) -> None:
    """As on a host that routed before Docker started (a Kubernetes node, a router, a libvirt host)."""
    netns.sysctl("net/ipv4/ip_forward", "1")


# A node with tunnel modules loaded (`modprobe ipip sit ip_gre`, as on Calico and many Kubernetes nodes) and
# net.core.fb_tunnels_only_for_init_net=0: the kernel makes each module's fallback device, down, in every new
# network namespace.  Modelled per namespace, by down links of those names: loading the modules is host-wide
# (every other namespace and run would get the devices, and unloading them could break what the host itself
# uses), and this suite's kernels may lack them (no /proc/modules, no ipip/sit/gre link kinds).  Bridges stand
# in for the tunnel kinds, the one link kind these lab kernels all have that a namespace holds alone.
FALLBACK_TUNNELS = ("tunl0", "sit0", "gre0", "gretap0", "erspan0")


def _fallback_tunnels(netns: Netns) -> None:
    with netns.iproute() as ipr:
        for name in FALLBACK_TUNNELS:
            ipr.link("add", ifname=name, kind="bridge")  # left down, as the kernel leaves its fallback devices


def _fallback_tunnels_in_container(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A prestart hook (runc runs it once the container's namespaces exist, before its process starts) that adds
    the fallback devices, down, to each container with a network namespace of its own: none-mode ones too."""
    import shutil
    if mode == "host" or mode.startswith("container:"):
        return
    ip, nsenter = shutil.which("ip"), shutil.which("nsenter")
    names = ("tunl0", "sit0", "gre0", "gretap0", "erspan0")
    adds = "; ".join(f"{nsenter} -t $pid -n {ip} link add {name} type bridge" for name in names)
    script = f"""pid=$(sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p'); {adds}"""
    hooks = spec.setdefault("hooks", {})
    hooks["prestart"] = [*hooks.get("prestart", []), {"path": shutil.which("sh"), "args": ["sh", "-c", script]}]


# A systemd-resolved host: /etc/resolv.conf names only the stub 127.0.0.53, and the servers it forwards to are in
# /run/systemd/resolve/resolv.conf, which Docker copies instead (libnetwork resolvconf.Path).  Modelled for the
# private daemon alone, in a mount namespace of its own: `nsenter` is the first program its start runs, looked up
# on its PATH, so a wrapper of that name there (and only there) unshares the mounts, gives the daemon a /run of
# its own (a tmpfs, every entry of the host's but systemd bound back, so its sockets and state are the host's),
# mounts both files, and execs the real nsenter.  The host's /etc/resolv.conf and /run are never changed.
RESOLVED_SERVERS = "nameserver 192.0.2.153\nsearch cf-resolved.example\n"


def _systemd_resolved() -> dict[str, str]:
    stub = ("# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n"
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch cf-resolved.example\n")
    servers = "# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).\n" + RESOLVED_SERVERS
    return {"nsenter": (
        "#!/bin/sh\n"
        "# unusual configuration systemd-resolved: the private daemon's own view of the host's resolver files\n"
        'case "$1" in --net=*) ;; *) exec ' + real("nsenter") + ' "$@" ;; esac\n'
        'prev=; for a; do [ "$prev" = --data-root ] && data=$a; prev=$a; done\n'
        'hold="$(dirname "$data")/host-run"; mkdir -p "$hold"\n'
        f"printf '%s' '{stub}' > \"$hold.stub\"; printf '%s' '{servers}' > \"$hold.servers\"\n"
        "exec " + real("unshare") + " --mount --propagation private /bin/sh -c '\n"
        'set -e; hold=$1; shift\n'
        'mount --rbind /run "$hold"; mount -t tmpfs cf-run /run\n'
        'for entry in "$hold"/* "$hold"/.[!.]*; do\n'
        '  [ -e "$entry" ] || [ -L "$entry" ] || continue; name=${entry##*/}; [ "$name" = systemd ] && continue\n'
        '  if [ -L "$entry" ]; then cp -P "$entry" "/run/$name"; continue; fi\n'
        '  if [ -d "$entry" ]; then mkdir -p "/run/$name"; elif [ ! -e "/run/$name" ]; then : > "/run/$name"; fi\n'
        '  mount --rbind "$entry" "/run/$name"\n'
        'done\n'
        'mkdir -p /run/systemd/resolve; cp "$hold.servers" /run/systemd/resolve/resolv.conf\n'
        'mount --bind "$hold.stub" /etc/resolv.conf\n'
        "exec " + real("nsenter") + ' "$@"\n'
        "' sh \"$hold\" \"$@\"\n"
    )}


def _own_containers(engine: Engine) -> None:
    """Two containers of the host's own on the default bridge, left running: one publishing ports (its 8080 on an
    ephemeral port, and -P), one plain.  They go with the private engine they run in (its data root too)."""
    image = ensure_probe_image(engine.client)
    engine.client.containers.run(image, ["httpd", "-f", "-p", "8080", "-h", "/www"], detach=True,
                                 name="cf-own-web", ports={"8080/tcp": None}, publish_all_ports=True)
    engine.client.containers.run(image, ["sleep", "1000000"], detach=True, name="cf-own-idle")


CONFIGURATIONS = (
    Fault("custom-bip", "--bip=192.168.240.1/24 instead of 172.17.0.1/16", options=("--bip=192.168.240.1/24",)),
    Fault("bip-254", "--bip=192.168.241.254/24: the gateway is the subnet's last address, so the first container "
          "gets .1, not .2", options=("--bip=192.168.241.254/24",)),
    # with its --bip, as documented: 20.10 given --fixed-cidr alone puts the range's first address on docker0
    Fault("narrow-fixed-cidr", "--bip=172.17.0.1/16 --fixed-cidr=172.17.5.0/24: containers get addresses from "
          "172.17.5.0/24 only", options=("--bip=172.17.0.1/16", "--fixed-cidr=172.17.5.0/24")),
    # Both were faults once; each asks for what it does on purpose, and the claims it changes say so in their
    # `applies` (host_binding_ipv4, daemon_dns) or check at the address the port is bound to.
    Fault("binds-loopback", "--ip=127.0.0.1 (a common hardening): ports published without an address bind "
          "loopback only", options=("--ip=127.0.0.1",)),
    Fault("daemon-dns", "--dns=192.0.2.53: containers started without --dns get the daemon's resolver, not the "
          "host's", options=("--dns=192.0.2.53",)),
    Fault("systemd-resolved", "a systemd-resolved host: /etc/resolv.conf names only the stub 127.0.0.53, the "
          "servers are in /run/systemd/resolve/resolv.conf, which the engine copies (modelled in the private "
          "daemon's own mount namespace)", tools=_systemd_resolved),
    Fault("busy-default-bridge", "a host that already runs containers of its own on the default bridge, one "
          "publishing ports (-p 8080 and -P): the bridge's first addresses are taken and DNAT rules stand before "
          "the suite's", after_start=_own_containers),
    Fault("address-pools", "default-address-pools base=10.123.0.0/16, size 24",
          options=("--default-address-pool=base=10.123.0.0/16,size=24",)),
    Fault("mtu-1400", "--mtu=1400", options=("--mtu=1400",)),
    Fault("iptables-legacy", "the iptables-legacy backend (on the daemon's PATH only)", tools=_legacy_iptables),
    Fault("userland-proxy-off", "--userland-proxy=false: hairpin NAT instead of docker-proxy",
          options=("--userland-proxy=false",)),
    Fault("ipv6", "--ipv6 --fixed-cidr-v6=fd00:cf::/64: the default bridge is dual-stack",
          options=("--ipv6", "--fixed-cidr-v6=fd00:cf::/64")),
    Fault("icc-off", "--icc=false (the CIS benchmark's advice): containers on the default bridge are isolated",
          options=("--icc=false",)),
    Fault("forwarded-before-start", "net.ipv4.ip_forward=1 before dockerd starts, as on a host that routed "
          "already: the daemon leaves the FORWARD policy ACCEPT", before_start=_forwarding_on,
          expected={"bridge/not-addressable-from-outside":
                    "FORWARD policy ACCEPT, and Docker before 28.0 adds no filter rule for routed access to a "
                    "container's unpublished ports (28.0 drops it in the DOCKER chain: moby c9fdeaf70e)"},
          expected_when={"engine_version": "<28"}),
    Fault("tunnel-fallbacks", "a node with tunnel modules loaded (ipip, sit, ip_gre) and "
          "net.core.fb_tunnels_only_for_init_net=0: the fallback devices tunl0, sit0, gre0, gretap0 and erspan0, "
          "down, in the engine's namespace and in each container's own (modelled per namespace by down links of "
          "those names)", before_start=_fallback_tunnels, in_bundle=_fallback_tunnels_in_container),
    Fault("netns-tunnel-fallbacks", "tunnel modules loaded and net.core.fb_tunnels_only_for_init_net=0: the "
          "fallback devices tunl0, sit0, gre0, gretap0 and erspan0, down, in every new namespace (modelled by down "
          "links of those names)", target=Target.NAMESPACES, on_namespace=_fallback_tunnels),
)
