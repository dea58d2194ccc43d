"""ICMP echo over a raw socket: the articles prove reachability with `ping` (Netns.pings asks it here).

scapy builds the echo request and parses the reply; the kernel sends it, through a raw
socket the caller opened in a namespace (the host may have no ping binary, and scapy's own
senders route by the host's table, not the namespace's).  So an error such as
ENETUNREACH ("connect: Network is unreachable") surfaces as the OSError the kernel returns.
"""

from __future__ import annotations

import os
import socket
import time

from scapy.layers.inet import ICMP, IP
from scapy.packet import Raw


def echo(sock: socket.socket, address: str, timeout: float) -> bool:
    """Send one echo request to *address* through *sock* (raw, IPPROTO_ICMP); True if its reply arrives
    within *timeout*.

    Raises OSError when the kernel refuses to send (no route, network unreachable).
    """
    ident, payload = os.getpid() & 0xFFFF, os.urandom(16)
    request = ICMP(type="echo-request", id=ident, seq=1) / Raw(payload)
    sock.sendto(bytes(request), (address, 0))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            reply = IP(sock.recv(65535))
        except TimeoutError:
            return False
        if (reply.src == address and ICMP in reply and reply[ICMP].type == 0 and reply[ICMP].id == ident
                and Raw in reply and reply[Raw].load == payload):
            return True
    return False
