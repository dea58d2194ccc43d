"""Faults of the two-host lab (lab/engines/two_hosts.py): the swarm formed with other options, or, once the lab
stands, a rule on one host or on the segment between them.  Both engines start healthy, the engine under test
too; what breaks is what crosses the segment.
"""

from __future__ import annotations

from ..engines.lab import Target
from ..engines.two_hosts import SEGMENT_IF, VXLAN_PORT, TwoHosts
from .fault import Fault


def _vxlan_dropped(hosts: TwoHosts) -> None:
    hosts.b.iptables("filter", "-I", f"INPUT -p udp --dport {VXLAN_PORT} -j DROP")


def _port_security(hosts: TwoHosts) -> None:
    """Each port of the segment admits frames from its host's own MAC only, as many clouds' switches do."""
    for host in (hosts.a, hosts.b):
        result = hosts.segment.netns.run("ebtables", "-A", "FORWARD", "-i", host.port, "-s", "!", host.mac,
                                         "-j", "DROP")
        if result.returncode != 0:
            raise RuntimeError(f"ebtables in {hosts.segment.netns}: {result.stderr.strip()}")


def _forward_accept(hosts: TwoHosts) -> None:
    hosts.a.iptables("filter", "-P", "FORWARD ACCEPT")


def _dnat_skipped(hosts: TwoHosts) -> None:
    hosts.a.iptables("nat", "-I", f"PREROUTING -i {SEGMENT_IF} -j RETURN")


def _masquerade_skipped(hosts: TwoHosts) -> None:
    hosts.a.iptables("nat", "-I", f"POSTROUTING -o {SEGMENT_IF} -j RETURN")


FAULTS = (
    Fault("hosts-vxlan-dropped", f"host B drops UDP {VXLAN_PORT} (`-I INPUT -p udp --dport {VXLAN_PORT} -j "
          "DROP`): the overlay's VXLAN never arrives", target=Target.TWO_HOSTS, on_two_hosts=_vxlan_dropped),
    Fault("hosts-data-path-port", "the swarm formed with --data-path-port=4790: the overlay works, its VXLAN "
          f"is not on UDP {VXLAN_PORT}", target=Target.TWO_HOSTS, swarm={"data_path_port": 4790}),
    Fault("hosts-port-security", "the segment admits each host's own MAC only (ebtables on its ports): "
          "frames from the containers' macvlan MACs are dropped", target=Target.TWO_HOSTS,
          on_two_hosts=_port_security),
    Fault("hosts-forward-accept", "host A's FORWARD policy ACCEPT (as dockerd 20.10 leaves it when "
          "forwarding was on before it started): its bridge is routed to from the segment", target=Target.TWO_HOSTS,
          on_two_hosts=_forward_accept),
    Fault("hosts-dnat-skipped", f"host A skips its nat PREROUTING for {SEGMENT_IF} (`-I PREROUTING -i "
          f"{SEGMENT_IF} -j RETURN`): no DNAT from the segment, docker-proxy answers instead",
          target=Target.TWO_HOSTS, on_two_hosts=_dnat_skipped),
    Fault("hosts-masquerade-skipped", f"host A skips its nat POSTROUTING for {SEGMENT_IF}: its containers' "
          "packets reach the segment with their container addresses", target=Target.TWO_HOSTS,
          on_two_hosts=_masquerade_skipped),
)
