"""A small DNS server for the names the suite owns, inside the upstream namespace.

Containers get ``--dns`` pointing here, so no query ever leaves the machine: a
name the suite did not register gets NXDOMAIN.  Every query is logged as
evidence.  Packets are parsed and built with scapy.
"""

from __future__ import annotations

import socket
import threading
from contextlib import ExitStack

from scapy.layers.dns import DNS, DNSRR

from ..kernel.netns import Netns
from ..managed import Managed

# The one name every resolver of the suite answers (RFC 6761 reserves .test), with the address it serves on.
PROBE_NAME = "probe.conformance.test"


class Resolver(Managed):
    """``with Resolver(netns, "192.0.2.1", {name: address}) as resolver: resolver.queries``"""

    def __init__(self, netns: Netns, address: str, records: dict[str, str] | None = None):
        self.netns = netns
        self.address = address
        self.records = {k.rstrip(".").lower(): v for k, v in (records or {}).items()}
        self.queries: list[tuple[str, str, str]] = []  # (client, name, answer)
        self._stop = threading.Event()

    def _setup(self, stack: ExitStack) -> None:
        self._sock = stack.enter_context(self.netns.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self._sock.bind((self.address, 53))
        self._sock.settimeout(0.2)
        thread = threading.Thread(target=self._serve, name="resolver", daemon=True)
        thread.start()
        stack.callback(thread.join, timeout=5)
        stack.callback(self._stop.set)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = DNS(data)
                question = query.qd[0]
                name = question.qname.decode().rstrip(".").lower()
            except Exception:  # a malformed packet is not the resolver's problem
                continue
            answer = self.records.get(name) if question.qtype == 1 else None
            reply = DNS(id=query.id, qr=1, aa=1, rd=query.rd, ra=0, qd=[question],
                        rcode=0 if name in self.records else 3,
                        an=[DNSRR(rrname=question.qname, type="A", ttl=5, rdata=answer)] if answer else [])
            self.queries.append((client[0], name, answer or ("NODATA" if name in self.records else "NXDOMAIN")))
            try:
                self._sock.sendto(bytes(reply), client)
            except OSError:  # no route back to the client (a host broken on purpose): it sees no answer
                continue
