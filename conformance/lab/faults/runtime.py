"""Faults in the runtime: the daemon's default runtime a wrapper of runc (wrapper.py) that changes each new
container after the engine configured it and before its process starts, as a misbehaving hook or agent would.

``in_container`` is shell run in the container's network namespace before `runc start` (an address, a MAC,
an MTU, an interface, the host-side veth's bridge changed); ``in_bundle`` edits its OCI config before
`runc create` (a namespace repointed or dropped, a mount added or repointed, the hostname).  Each bundle edit
is copied into the wrapper by its source, so it is self-contained (its imports inside); "container:ID"
members find X through the namespace path the engine gave them, and the ``host-*`` ones change host-mode
containers only.  No fault drops a container's mount namespace: runc refuses masked paths without one, and
without those the container would run in the host's own mounts and root.  The ``configured-*`` ones change
the configured engine's containers: off the --bridge bridge, or off its subnet.
"""

from __future__ import annotations

from ..engines.lab import Target
from .fault import Fault

_KEEP_ROUTE = 'gw=$(ip -4 route show default | cut -d" " -f3)'
_RESTORE_ROUTE = '[ -n "$gw" ] && ip route add default via "$gw"'
FOREIGN_ADDRESS = "10.254.77.2/24"
FIXED_MAC = "02:42:0a:fe:4d:02"
_READDRESS = f"ip -4 addr flush dev eth0 && ip addr add {FOREIGN_ADDRESS} dev eth0"
_UNBRIDGE = ('peer=$(ip -o link show eth0 | sed -n "s/^[0-9]*: eth0@if\\([0-9]*\\):.*/\\1/p"); '
             'host=$(nsenter --net="$ENGINE_NETNS" ip -o link | sed -n "s/^$peer: \\([^@:]*\\).*/\\1/p"); '
             'nsenter --net="$ENGINE_NETNS" ip link set dev "$host" nomaster')


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


def _host_link_created(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A bridge dh<id> made in the engine's namespace for each host-mode container: an interface, no veth."""
    import os
    import subprocess
    if mode == "host":
        short = os.path.basename(bundle)[:10]  # the bundle directory is named for the container's id
        subprocess.run(["ip", "link", "add", f"dh{short}", "type", "bridge"],
                       check=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _host_pid_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """A host-mode container's PID namespace dropped: it runs in the host's, as --pid=host would."""
    if mode == "host":
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "pid"]


def _host_tmp_shared(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """The host's /tmp bind-mounted at a host-mode container's /tmp (runc runs in the host's mounts)."""
    if mode == "host":
        spec["mounts"].append({"destination": "/tmp", "type": "bind", "source": "/tmp", "options": ["rbind", "rw"]})


def _hostname_unrouted(spec: dict, mode: str, bundle: str, engine_netns: str) -> None:
    """Each container started with --hostname (its OCI hostname is not its id's first 12 digits, the bundle
    directory's name) gets net.ipv4.ip_default_ttl=1 in its OCI sysctls: its packets die at the first router."""
    import os
    if mode != "host" and not mode.startswith("container:") and spec.get("hostname") != os.path.basename(bundle)[:12]:
        spec["linux"].setdefault("sysctl", {})["net.ipv4.ip_default_ttl"] = "1"


FAULTS = (
    Fault("eth0-mtu-shrunk", "a runtime that sets each container's eth0 to MTU 1280 before it starts",
          in_container="ip link set eth0 mtu 1280"),
    Fault("eth0-readdressed", f"a runtime that replaces each container's IPv4 address with {FOREIGN_ADDRESS} "
          "(no default route left) before it starts", in_container=_READDRESS),
    Fault("eth0-mac-fixed", f"a runtime that gives every container's eth0 the MAC {FIXED_MAC} before it starts",
          in_container=f"{_KEEP_ROUTE}; ip link set eth0 down && ip link set eth0 address {FIXED_MAC} && "
                       f"ip link set eth0 up; {_RESTORE_ROUTE}"),
    Fault("veth-unbridged", "a runtime that takes each container's host-side veth off the bridge before it "
          "starts", in_container=_UNBRIDGE),
    Fault("eth1-squatted", "a runtime that adds a veth pair eth1/cfsquat1 to each container's namespace before "
          "it starts, as pipework or a CNI hook would: the namespace holds interfaces the engine did not make, and "
          "`docker network connect` cannot add its own eth1",
          in_container="ip link add eth1 type veth peer name cfsquat1"),
    Fault("joined-netns-split", "a runtime that gives each --network container:X member a network namespace of "
          "its own (the spec's path to X's dropped), so it shares nothing of X's stack", in_bundle=_joined_netns_split),
    Fault("joined-tmp-shared", "a runtime that bind-mounts X's /tmp at /tmp of each --network container:X member",
          in_bundle=_joined_tmp_shared),
    Fault("joined-pid-shared", "a runtime that puts each --network container:X member into X's PID namespace",
          in_bundle=_joined_pid_shared),
    Fault("own-netns-dropped", "a runtime that runs each bridge, user-network and none-mode container in the "
          "engine's network namespace instead of one of its own", in_bundle=_own_netns_dropped),
    Fault("hosts-stock", "a runtime that mounts a stock /etc/hosts (localhost lines only) over the one the engine "
          "wrote, so no --link, --add-host or --hostname entry reaches the container", in_bundle=_hosts_stock),
    Fault("resolv-conf-embedded", "a runtime that mounts a resolv.conf naming only the embedded resolver "
          "127.0.0.11 over the one the engine wrote (--dns and the host's servers lost)",
          in_bundle=_resolv_conf_embedded),
    Fault("hostname-unrouted", "a runtime that sets net.ipv4.ip_default_ttl=1 in each container started with "
          "--hostname: what it sends dies at the first router, so it pings nothing beyond the bridge, as the "
          "article says", in_bundle=_hostname_unrouted),
    Fault("hostname-overridden", "a runtime that sets every container's hostname to cf-fault-host in its OCI "
          "config, whatever --hostname or the container id says", in_bundle=_hostname_overridden),
    Fault("host-netns-unshared", "a runtime that gives each host-mode container a network namespace of its own "
          "(a new, empty one) in its OCI config", in_bundle=_host_netns_unshared),
    Fault("host-veth-created", "a runtime that adds a veth pair to the engine's namespace for each host-mode "
          "container before it is created, as a network hook that ignores host mode would",
          in_bundle=_host_veth_created),
    Fault("host-link-created", "a runtime that adds a bridge interface dh<id> to the engine's namespace for each "
          "host-mode container before it is created, as a network hook that ignores host mode would: no veth",
          in_bundle=_host_link_created),
    Fault("host-pid-shared", "a runtime that removes the PID namespace from each host-mode container's OCI config: "
          "it runs in the host's, as --pid=host would", in_bundle=_host_pid_shared),
    Fault("host-tmp-shared", "a runtime that bind-mounts the host's /tmp over each host-mode container's /tmp in "
          "its OCI config", in_bundle=_host_tmp_shared),
    Fault("configured-veth-unbridged", "the configured engine's runtime takes each container's host-side veth "
          "off the --bridge bridge before it starts", target=Target.CONFIGURED, in_container=_UNBRIDGE),
    Fault("configured-eth0-readdressed", "the configured engine's runtime replaces each container's IPv4 "
          f"address with {FOREIGN_ADDRESS}, off the --bridge bridge's subnet, before it starts",
          target=Target.CONFIGURED, in_container=_READDRESS),
)
