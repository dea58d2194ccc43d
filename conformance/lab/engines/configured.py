"""The engine run with non-default daemon options, for the claims about those options.

    private namespace cf<id>-cfg
    bridge cf<id>b0  198.18.x.1/24   created before dockerd starts, handed to it with --bridge
    resolver on 198.18.x.1:53        handed to it with --dns
    dockerd --bridge=cf<id>b0 --icc=false --dns=198.18.x.1

One engine serves three claims (defaults/daemon-bridge-option,
dns/daemon-dns-setting, dns/link-restricts-access).  It is a lab of the one
shape (lab.py's EngineLab): started from the same dockerd binary as a private engine
under test would be (--dockerd), so it tests the installation, not some other
build, and as a fault aimed at it when ``--variant`` names one (the
``configured-*`` faults of lab/faults/, Target.CONFIGURED).  It needs no outside world: everything
its checks exchange stays on its own bridge.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack

from ..faults.fault import Fault
from ..kernel.netns import Netns
from ..safety.identity import Run
from ..world.resolver import PROBE_NAME, Resolver
from .engine import Engine
from .lab import EngineLab, Target

# The namespace is private to this engine, so one fixed subnet of the benchmarking range is free by construction.
BRIDGE_NET = ipaddress.IPv4Network("198.18.0.0/24")


class ConfiguredLab(EngineLab):
    """``with ConfiguredLab(run) as cfg: cfg.engine, cfg.bridge_name, cfg.gateway, cfg.scope()``"""

    target = Target.CONFIGURED
    role = "the configured engine (--bridge, --icc=false, --dns)"

    def __init__(self, run: Run, dockerd: str | None = None, fault: Fault | None = None):
        super().__init__(run, dockerd, fault)
        self.bridge_name = run.ifname("b0")
        self.gateway = str(BRIDGE_NET[1])
        self.subnet = str(BRIDGE_NET)
        self.options = (f"--bridge={self.bridge_name}", "--icc=false", f"--dns={self.gateway}")

    def _prepare(self, netns: Netns) -> None:
        with netns.iproute() as ipr:
            ipr.link("add", ifname=self.bridge_name, kind="bridge")
        netns.up(self.bridge_name, f"{self.gateway}/{BRIDGE_NET.prefixlen}")

    def _start_engine(self, stack: ExitStack) -> Engine:
        return self._private(stack, "cfg", self.options, prepare=self._prepare)

    def _resolver(self, stack: ExitStack) -> Resolver:
        """The resolver --dns names, on the bridge's own address."""
        return Resolver(self.engine.netns, self.gateway, {PROBE_NAME: self.gateway})
