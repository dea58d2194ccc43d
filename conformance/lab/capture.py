"""Packet capture inside a namespace: an AF_PACKET socket opened there, parsed with scapy.

The socket is opened in the target namespace (pyroute2 hands it over), so the
suite can watch an interface of the upstream or engine namespace without
entering it.  Captures are written as pcap files for the report.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from .netns import Netns

ETH_P_ALL = 0x0003


class Capture:
    """``with Capture(ns, "eth0") as cap: ...; cap.packets()``"""

    def __init__(self, netns: Netns, ifname: str):
        self.ifname = ifname
        self._sock = netns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind((ifname, 0))
        self._frames: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"capture-{ifname}", daemon=True)

    def __enter__(self) -> "Capture":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.1)
            if ready:
                self._frames.append((time.time(), self._sock.recv(65535)))
        # Frames queued before the capture stopped still count, however fast the exchange was.
        self._sock.setblocking(False)
        while True:
            try:
                self._frames.append((time.time(), self._sock.recv(65535)))
            except BlockingIOError:
                return

    def packets(self, match: Callable[[Packet], bool] | None = None) -> list[Packet]:
        result = []
        for stamp, frame in list(self._frames):
            packet = Ether(frame)
            packet.time = stamp
            if match is None or match(packet):
                result.append(packet)
        return result

    def wait(self, match: Callable[[Packet], bool], timeout: float = 3.0) -> list[Packet]:
        """The matching packets as soon as one has arrived; an empty list after *timeout*."""
        deadline = time.monotonic() + timeout
        while not (found := self.packets(match)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    def write(self, path: Path) -> Path:
        wrpcap(str(path), self.packets())
        return path


def inject(netns: Netns, ifname: str, frame: bytes) -> None:
    """Send one raw Ethernet *frame* out of *ifname* in *netns*."""
    with netns.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        sock.send(frame)
