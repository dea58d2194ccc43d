"""The networks an engine starts with and its default bridge device (--bridge: test_configured.py)."""

import time

from conformance.plugin import claims

from .helpers import bridge_of, ipv4_of, subnet_network

IFF_UP, IFF_LOWER_UP = 0x1, 0x10000


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
def test_four_modes(claim, scope, lab, evidence):
    bridged, host, none = scope.containers(bridge={"network": "bridge"}, host={"network": "host"},
                                           none={"network": "none"})
    boxes = {"bridge": bridged, "host": host, "none": none,
             "container": scope.container("joined", network=f"container:{bridged.name}")}
    inode = {mode: scope.netns(box).inode for mode, box in boxes.items()}
    running = {mode: box.status for mode, box in boxes.items()}
    engine = lab.engine.netns.inode
    evidence.json("namespaces", {"engine": engine, "containers": inode, "status": running})
    assert set(running.values()) == {"running"}, f"not every mode runs: {running}"
    assert inode["host"] == engine, "host mode did not get the engine's namespace"
    assert inode["container"] == inode["bridge"], "container mode did not get the named container's namespace"
    own = [inode["bridge"], inode["none"], engine]
    assert len(set(own)) == 3, "bridge and none mode did not each get a namespace of their own"


@claims("defaults/bridge-inspect", tier="audit")
def test_bridge_inspect(claim, engine, evidence):
    inspect = engine.bridge_network
    evidence.json("docker-network-inspect-bridge", inspect)
    ipam = inspect["IPAM"]["Config"]
    assert (inspect["Driver"], inspect["Scope"]) == ("bridge", "local")
    assert (inspect["EnableIPv6"], inspect["Internal"]) == (False, False)
    assert [c["Subnet"] for c in ipam] == ["172.17.0.0/16"], f"IPAM config {ipam}"
    assert ipam[0].get("Gateway", "172.17.0.1") == "172.17.0.1", f"IPAM config {ipam}"
    assert inspect["Options"] == {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": "docker0",
        "com.docker.network.driver.mtu": "1500",
    }


@claims("defaults/docker0-linux-bridge", tier="audit")
def test_docker0_linux_bridge(claim, engine, evidence):
    bridge = engine.bridge
    links = engine.netns.links()
    device = links.get(bridge.name)
    evidence.json("bridge-device", {"network": vars(bridge), "device": device})
    assert device is not None, f"no device {bridge.name} in the engine's namespace"
    assert device["kind"] == "bridge", f"{bridge.name} is a {device['kind']} device, not a Linux bridge"
    expected = f"{bridge.gateway}/{bridge.network.prefixlen}"
    assert expected in ipv4_of(engine.netns, bridge.name), f"{bridge.name} does not hold {expected}"


@claims("defaults/bridge-no-carrier-when-empty")
def test_bridge_no_carrier_when_empty(claim, scope, lab, evidence):
    """On the default bridge when nothing is attached to it; on a busy host (or beside another run) on a
    fresh bridge network, the same driver's bridge with nothing attached yet."""
    netns, name, network = lab.engine.netns, lab.engine.bridge.name, "bridge"
    links = netns.links()
    if any(link["master"] == links[name]["index"] for link in links.values()):
        fresh, _, _ = subnet_network(scope, lab, "empty")
        network, name, links = fresh.name, bridge_of(fresh), netns.links()
    # The kernel updates operstate lazily (linkwatch: up to a second) after the last port leaves, and a
    # container of this run (removed while this check starts) or of another may have left a moment ago.
    for _ in range(30):
        if links[name]["operstate"] == "DOWN":
            break
        time.sleep(0.05)
        links = netns.links()
    empty = links[name]
    scope.container("attached", network=network)
    attached = netns.links()[name]
    evidence.json("bridge-states", {"network": network, "bridge": name, "empty": empty, "attached": attached})
    assert empty["flags"] & IFF_UP, f"{name} is administratively down"
    assert not empty["flags"] & IFF_LOWER_UP and empty["operstate"] == "DOWN", (
        f"{name} has carrier with no port attached (operstate {empty['operstate']})"
    )
    assert attached["flags"] & IFF_LOWER_UP, f"{name} has no carrier once a container is attached"
