"""The claims about daemon options (--bridge, --icc=false, --dns), on a second private engine started with them.

The three checks share that engine (conformance/lab/engines/configured.py), so they live in one module: under
xdist a module goes whole to one worker, which starts the engine once.
"""

import ipaddress
from concurrent.futures import ThreadPoolExecutor

from conformance.lab.world.resolver import PROBE_NAME
from conformance.plugin import claims

from .helpers import EXPOSED_PORT, SILENCE_S, host_end, httpd, ipv4_of


@claims("defaults/daemon-bridge-option")
def test_daemon_bridge_option(claim, configured, configured_scope, evidence):
    box = configured_scope.container("box")
    box_netns, engine_netns = box.netns, configured.engine.netns
    end, link = host_end(engine_netns, box_netns)
    links = engine_netns.links()
    bridge = configured.bridge_name
    bridge_nets = [ipaddress.ip_interface(a).network for a in ipv4_of(engine_netns, bridge)]
    addresses = ipv4_of(box_netns)  # what the container has, not what the engine says it gave
    evidence.json("configured-engine", {"options": configured.options, "container": addresses,
                                        "bridge_addresses": [str(n) for n in bridge_nets], "host_end": end,
                                        "links": links})
    assert links[bridge]["index"] == link["master"], f"the container's veth {end} is not on {bridge}"
    assert "docker0" not in links, "the daemon created docker0 although --bridge names another bridge"
    assert addresses and all(any(ipaddress.ip_interface(a).ip in net for net in bridge_nets) for a in addresses), (
        f"the container's eth0 has {addresses}, not from {bridge}'s own subnet {[str(n) for n in bridge_nets]}"
    )


@claims("dns/link-restricts-access")
def test_link_restricts_access(claim, configured_scope, evidence):
    """The stranger's fetch, which must get no answer and so waits SILENCE_S, runs while the linked container
    (which needs the target to exist) starts."""
    scope = configured_scope
    target, stranger = scope.containers(target={"command": httpd(EXPOSED_PORT)}, stranger={})
    target.wait_listening(EXPOSED_PORT)
    url = f"http://{target.address()}:{EXPOSED_PORT}/"
    with ThreadPoolExecutor(max_workers=1) as pool:
        unanswered = pool.submit(stranger.fetch, url, timeout=SILENCE_S)
        linked = scope.container("linked", links={target.name: "target"})
        results = {"linked": linked.fetch(url), "stranger": unanswered.result()}
    evidence.text("icc-false", "\n".join(f"{who}: wget {url} exit {r.exit_code}" for who, r in results.items()))
    assert results["linked"].exit_code == 0, f"the linked container cannot reach {url} with --icc=false"
    assert results["stranger"].exit_code != 0, f"a container without the link reached {url} with --icc=false"


@claims("dns/daemon-dns-setting")
def test_daemon_dns_setting(claim, configured, configured_scope, evidence):
    box = configured_scope.container("box", dns=[])  # no --dns: the daemon's setting applies
    seen = box.resolv()
    asked = len(configured.resolver.queries)
    lookup = box.exec("nslookup", PROBE_NAME)
    queries = configured.resolver.queries[asked:]
    evidence.json("daemon-dns", {"daemon_options": configured.options, "resolv_conf": seen,
                                 "nslookup": lookup.output, "queries": queries})
    assert seen["nameserver"] == [configured.gateway], (
        f"nameservers {seen['nameserver']}, the daemon was given {configured.gateway}"
    )
    assert any(name == PROBE_NAME for _, name, _ in queries), f"the daemon's server got no query for {PROBE_NAME}"
    assert lookup.exit_code == 0, f"nslookup through the daemon's server failed: {lookup.output}"
