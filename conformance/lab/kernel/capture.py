"""Packet capture inside a namespace: an AF_PACKET socket opened there, parsed with scapy.

The socket is opened in the target namespace (pyroute2 hands it over), so the
suite can watch an interface of the upstream or engine namespace without
entering it.  Captures are written as pcap files for the report.
"""

from __future__ import annotations

import errno
import io
import select
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

from scapy.arch.common import compile_filter
from scapy.data import SO_ATTACH_FILTER
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.libs.structures import bpf_insn, sock_fprog
from scapy.packet import Packet
from scapy.utils import PcapWriter

from ..managed import Managed
from .netns import Netns

ETH_P_ALL = 0x0003
DLT_RAW = 12  # pcap's link type for packets that start at the IP header
BPF_RET = 0x06  # "return k": the one instruction of a filter that accepts nothing (k = 0 bytes)


class Capture(Managed):
    """``with Capture(ns, "eth0") as cap: ...; cap.packets()``

    With ``ipv4_filter`` (a pcap filter expression such as "net 192.0.2.0/24"), the
    capture sees only the IPv4 packets it matches, filtered in the kernel, from
    the network header on; with ``ifname`` None, on every interface of *netns*.
    ``keep``, given the raw bytes of each packet and the interface it was seen
    on, decides what is stored: for filters the kernel cannot express, at the
    cost of a Python call a packet.  The socket is opened on entering, and closed
    however entering or the block ends.
    """

    def __init__(self, netns: Netns, ifname: str | None, ipv4_filter: str | None = None,
                 keep: Callable[[bytes, str], bool] | None = None):
        self.netns = netns
        self.ifname = ifname
        self.ipv4_filter = ipv4_filter
        self._keep = keep
        self._parse: Callable[[bytes], Packet] = Ether if ipv4_filter is None else IP
        self._frames: list[tuple[float, bytes]] = []  # appended to by the reading thread only
        self._parsed: list[Packet] = []  # the first len(_parsed) frames, parsed
        self._parsing = threading.Lock()
        self._stop = threading.Event()

    def _setup(self, stack: ExitStack) -> None:
        # With a filter, from the network header on (SOCK_DGRAM); ETH_P_ALL either way: a socket for one
        # protocol sees only what arrives, never what is sent.
        kind = socket.SOCK_RAW if self.ipv4_filter is None else socket.SOCK_DGRAM
        self._sock = stack.enter_context(self.netns.socket(socket.AF_PACKET, kind, socket.htons(ETH_P_ALL)))
        if self.ifname is not None:
            self._sock.bind((self.ifname, 0))
        if self.ipv4_filter is not None:
            # What the socket queued before its filter was attached passed no filter: as libpcap does, reject
            # everything, drop what is queued, then attach the filter (IPv4 only, by the version nibble).
            self._attach((bpf_insn * 1)(bpf_insn(BPF_RET, 0, 0, 0)), 1)
            self._drain()
            program = compile_filter(f"(ip[0] & 0xf0) = 0x40 and ({self.ipv4_filter})", linktype=DLT_RAW)
            self._attach(program.bf_insns, program.bf_len)
        thread = threading.Thread(target=self._read, name=f"capture-{self.ifname or 'all'}", daemon=True)
        thread.start()
        stack.callback(thread.join, timeout=5)
        stack.callback(self._stop.set)

    def _attach(self, instructions, length: int) -> None:
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, sock_fprog(length, instructions))

    def _drain(self) -> None:
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(65535)
        except BlockingIOError:
            pass
        finally:
            self._sock.setblocking(True)

    def _read(self) -> None:
        try:
            self._receive()
        except OSError as exc:
            if exc.errno != errno.ENETDOWN:  # the interface went down: it carries nothing more
                raise

    def _receive(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.1)
            if ready:
                self._store(*self._sock.recvfrom(65535))
        # Frames queued before the capture stopped still count, however fast the exchange was.
        self._sock.setblocking(False)
        while True:
            try:
                self._store(*self._sock.recvfrom(65535))
            except BlockingIOError:
                return

    def _store(self, frame: bytes, address: tuple) -> None:
        if self._keep is None or self._keep(frame, address[0]):
            self._frames.append((time.time(), frame))

    def packets(self, match: Callable[[Packet], bool] | None = None) -> list[Packet]:
        """What was captured so far (that *match* accepts), each frame parsed once: wait() asks every 20 ms."""
        with self._parsing:
            for stamp, frame in self._frames[len(self._parsed):]:
                packet = self._parse(frame)
                packet.time = stamp
                self._parsed.append(packet)
            return [packet for packet in self._parsed if match is None or match(packet)]

    def wait(self, match: Callable[[Packet], bool], timeout: float = 3.0) -> list[Packet]:
        """The matching packets as soon as one has arrived; an empty list after *timeout*."""
        deadline = time.monotonic() + timeout
        while not (found := self.packets(match)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    def pcap(self) -> bytes:
        """The matching packets as a pcap file's bytes; the report's writer puts them where it writes (the lab writes no
        report file itself)."""
        return pcap_bytes(self.packets())


def inject(netns: Netns, ifname: str, frame: bytes) -> None:
    """Send one raw Ethernet *frame* out of *ifname* in *netns*."""
    with netns.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        sock.send(frame)


def pcap_bytes(packets: list) -> bytes:
    """*packets* as a pcap file's bytes.  scapy's PcapWriter is flushed, never closed: closing would close the
    buffer before its bytes are read."""
    buffer = io.BytesIO()
    writer = PcapWriter(buffer)
    writer.write(packets)
    writer.flush()
    return buffer.getvalue()
