"""The networks an engine starts with and its default bridge device (--bridge: test_configured.py)."""

import ipaddress
import time

import docker
import pytest

from conformance.lab.engines.engine import DEFAULT_BRIDGE, DEFAULT_SUBNET
from conformance.lab.safety import redact
from conformance.lab.safety.identity import PREFIX
from conformance.plugin import claims

from .helpers import bridge_of, ipv4_of, subnet_network

IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
DEFAULT_GATEWAY = "172.17.0.1"


@claims("defaults/three-networks", tier="audit")
def test_three_networks(claim, engine, evidence):
    networks = {n["Name"]: n for n in engine.client.api.networks()}
    seen = {name: (networks[name]["Driver"], networks[name]["Scope"]) for name in ("bridge", "host", "none")
            if name in networks}
    evidence.json("networks", {name: {"Driver": n["Driver"], "Scope": n["Scope"]} for name, n in networks.items()})
    assert seen == {"bridge": ("bridge", "local"), "host": ("host", "local"), "none": ("null", "local")}, (
        f"the engine's own networks (driver, scope): {seen}"
    )


@claims("defaults/four-modes")
def test_four_modes(claim, standing, scope, lab, evidence):
    try:
        bridged, host, none = standing("client", "host", "none")
    except docker.errors.APIError as exc:
        raise AssertionError(f"the engine refuses to start a container in one of the modes: {exc}") from None
    boxes = {"bridge": bridged, "host": host, "none": none,
             "container": scope.container("joined", network=f"container:{bridged.name}")}
    inode = {mode: box.netns.inode for mode, box in boxes.items()}
    running = {mode: box.status for mode, box in boxes.items()}
    engine = lab.engine.netns.inode
    evidence.json("namespaces", {"engine": engine, "containers": inode, "status": running})
    assert set(running.values()) == {"running"}, f"not every mode runs: {running}"
    assert inode["host"] == engine, "host mode did not get the engine's namespace"
    assert inode["container"] == inode["bridge"], "container mode did not get the named container's namespace"
    own = [inode["bridge"], inode["none"], engine]
    assert len(set(own)) == 3, "bridge and none mode did not each get a namespace of their own"
    attached = sorted(bridged.attrs["NetworkSettings"]["Networks"])
    links = {mode: sorted(boxes[mode].netns.links()) for mode in ("bridge", "none")}
    evidence.json("bridge-and-none", {"bridge_mode_networks": attached, "links": links})
    assert attached == [lab.engine.default_network] and "eth0" in links["bridge"], (
        f"a bridge-mode container is not on the bridge network: networks {attached}, links {links['bridge']}")


# `docker network inspect bridge` as the articles print it under the daemon's defaults.
DOCUMENTED_INSPECT = {
    "Driver": "bridge", "Scope": "local", "EnableIPv6": False, "Internal": False,
    "IPAM": [{"Subnet": DEFAULT_SUBNET, "Gateway": DEFAULT_GATEWAY}],
    "Options": {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": DEFAULT_BRIDGE,
        "com.docker.network.driver.mtu": "1500",
    },
}


def _bridge_address(engine, name: str) -> list[str]:
    return ipv4_of(engine.netns, name) if name in engine.netns.links() else []


@claims("defaults/bridge-inspect", tier="audit")
def test_bridge_inspect(claim, engine, evidence):
    """Against the documented output, not the engine's own facts; the claim's ``applies`` makes it not
    applicable, naming the option, when a daemon option moves the bridge off its defaults.  Engines that
    leave the default bridge's gateway out of inspect (20.10) must hold it on docker0 instead."""
    inspect = engine.bridge_network
    ipam = [{k: c[k] for k in ("Subnet", "Gateway") if k in c} for c in inspect["IPAM"]["Config"]]
    seen = {"Driver": inspect["Driver"], "Scope": inspect["Scope"], "EnableIPv6": inspect["EnableIPv6"],
            "Internal": inspect["Internal"], "IPAM": ipam, "Options": inspect["Options"]}
    on_bridge = _bridge_address(engine, DEFAULT_BRIDGE)
    evidence.json("docker-network-inspect-bridge", {"inspect": redact.inspect_evidence(inspect, PREFIX),
                                                    "documented": DOCUMENTED_INSPECT,
                                                    f"{DEFAULT_BRIDGE} holds": on_bridge})
    if len(ipam) == 1 and "Gateway" not in ipam[0]:
        assert f"{DEFAULT_GATEWAY}/16" in on_bridge, (
            f"inspect gives no gateway and {DEFAULT_BRIDGE} holds {on_bridge}, not {DEFAULT_GATEWAY}/16")
        ipam[0]["Gateway"] = DEFAULT_GATEWAY
    differ = {key: {"documented": want, "engine": seen[key]} for key, want in DOCUMENTED_INSPECT.items()
              if seen[key] != want}
    assert not differ, (f"inspect differs from the documented output although no daemon option overrides the "
                        f"defaults: {differ} ({DEFAULT_BRIDGE} holds {on_bridge})")


@claims("defaults/docker0-linux-bridge", tier="audit")
def test_docker0_linux_bridge(claim, engine, evidence):
    """docker0 holding 172.17.0.1/16, as documented, unless a daemon option names another bridge or
    address: --bip (that address), --bridge or default address pools (the network's gateway)."""
    options, bridge = engine.options, engine.bridge
    name = options["bridge"] or DEFAULT_BRIDGE
    if options["bip"]:
        expected, why = str(ipaddress.ip_interface(options["bip"])), f"--bip={options['bip']}"
    elif options["bridge"] or options["default-address-pool"] or options["default-address-pools"]:
        expected = f"{bridge.gateway}/{bridge.network.prefixlen}"
        why = "the network's gateway, as --bridge or default-address-pools choose it"
    else:
        expected, why = f"{DEFAULT_GATEWAY}/16", "the documented default"
    device = engine.netns.links().get(name)
    held = _bridge_address(engine, name)
    evidence.json("bridge-device", {"network": vars(bridge), "expected": [name, expected, why], "device": device,
                                    "addresses": held})
    assert device is not None, f"no device {name} in the engine's namespace"
    assert device["kind"] == "bridge", f"{name} is a {device['kind']} device, not a Linux bridge"
    assert expected in held, f"{name} holds {held}, not {expected} ({why})"


def _containers_on(lab, network: str) -> list[str]:
    """The containers the engine itself lists on *network*: ports it did not attach are not containers."""
    return sorted(c["Name"] for c in (lab.engine.client.api.inspect_network(network).get("Containers") or {}).values())


def _fresh_bridge(scope, lab) -> tuple[str, str]:
    """A bridge network of this check's own, nothing attached: (network, bridge device)."""
    fresh, _, _ = subnet_network(scope, lab, "empty")
    return fresh.name, bridge_of(fresh)


def _settled(netns, name: str) -> dict[str, dict]:
    """*netns*' links once *name* is DOWN or 1.5 s passed: the kernel updates operstate lazily (linkwatch: up
    to a second) after the last port leaves, and a container of this run or another may have left a moment
    ago."""
    links = netns.links()
    if name not in links:
        pytest.skip(f"not applicable: the engine has no device {name} while nothing is attached (netavark "
                    "creates its bridge with the first container and removes it with the last)")
    for _ in range(30):
        if links[name]["operstate"] == "DOWN":
            break
        time.sleep(0.05)
        links = netns.links()
    return links


@claims("defaults/bridge-no-carrier-when-empty")
def test_bridge_no_carrier_when_empty(claim, scope, lab, evidence):
    """On the default bridge when the engine lists no container on it; on a busy host (or beside another run)
    on a fresh bridge network, the same driver's bridge with nothing attached yet.  Whether it is empty is
    the engine's word, not the bridge's ports: a port no container owns still gives the bridge carrier."""
    netns, name, network = lab.engine.netns, lab.engine.bridge.name, lab.engine.default_network
    if _containers_on(lab, network):
        network, name = _fresh_bridge(scope, lab)
    links = _settled(netns, name)
    if network == lab.engine.default_network and links[name]["operstate"] != "DOWN" and _containers_on(lab, network):
        network, name = _fresh_bridge(scope, lab)  # another run's container attached meanwhile
        links = _settled(netns, name)
    empty, ports = links[name], sorted(n for n, link in links.items() if link["master"] == links[name]["index"])
    scope.container("attached", network=network)
    attached = netns.links()[name]
    evidence.json("bridge-states", {"network": network, "bridge": name, "empty": empty, "ports_when_empty": ports,
                                    "attached": attached})
    assert empty["flags"] & IFF_UP, f"{name} is administratively down"
    assert not empty["flags"] & IFF_LOWER_UP and empty["operstate"] == "DOWN", (
        f"{name} has carrier with no container attached (operstate {empty['operstate']}; its ports: {ports})"
    )
    assert attached["flags"] & IFF_LOWER_UP, f"{name} has no carrier once a container is attached"
