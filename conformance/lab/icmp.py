"""ICMP echo sent from inside a namespace: the articles prove reachability with `ping`.

The host may have no ping binary, and a raw socket opened in the namespace
needs none; an error such as ENETUNREACH ("connect: Network is unreachable")
surfaces as the OSError the kernel returns.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from .netns import Netns

ECHO_REQUEST, ECHO_REPLY = 8, 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, _checksum(header + payload), ident, seq) + payload


def ping(netns: Netns, address: str, timeout: float = 2.0) -> bool:
    """Send one echo request to *address* from *netns*; True if its reply arrives within *timeout*.

    Raises OSError when the kernel refuses to send (no route, network unreachable).
    """
    ident, payload = os.getpid() & 0xFFFF, os.urandom(16)
    with netns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.sendto(_echo_request(ident, 1, payload), (address, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet, (source, _) = sock.recvfrom(65535)
            except TimeoutError:
                return False
            icmp = packet[(packet[0] & 0x0F) * 4:]
            kind, _, _, their_ident, _ = struct.unpack("!BBHHH", icmp[:8])
            if kind == ECHO_REPLY and their_ident == ident and source == address and icmp[8:] == payload:
                return True
        return False
