"""A second, private engine started with non-default daemon options, for the claims about those options.

    private namespace cf<id>-cfg
    bridge cf<id>b0  198.18.x.1/24   created before dockerd starts, handed to it with --bridge
    resolver on 198.18.x.1:53        handed to it with --dns
    dockerd --bridge=cf<id>b0 --icc=false --dns=198.18.x.1

One engine serves three claims (defaults/daemon-bridge-option,
dns/daemon-dns-setting, dns/link-restricts-access).  It is started from the
same dockerd binary as a private engine under test would be, so it tests the
installation, not some other build.  It needs no outside world: everything its
checks exchange stays on its own bridge.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack

from .engine import Engine
from .netns import Netns
from .private import PrivateEngine
from .probe import ensure_probe_image
from .resolver import PROBE_NAME, Resolver
from .run import Run
from .scope import Scope

# The namespace is private to this engine, so one fixed subnet of the benchmarking range is free by construction.
BRIDGE_NET = ipaddress.IPv4Network("198.18.0.0/24")


class ConfiguredLab:
    """``with ConfiguredLab(run) as cfg: cfg.engine, cfg.bridge_name, cfg.gateway, cfg.scope()``"""

    def __init__(self, run: Run, dockerd: str | None = None):
        self.run = run
        self.dockerd = dockerd
        self.bridge_name = run.ifname("b0")
        self.gateway = str(BRIDGE_NET[1])
        self.subnet = str(BRIDGE_NET)
        self.options = (f"--bridge={self.bridge_name}", "--icc=false", f"--dns={self.gateway}")
        self._stack = ExitStack()

    def _prepare(self, netns: Netns) -> None:
        with netns.iproute() as ipr:
            ipr.link("add", ifname=self.bridge_name, kind="bridge")
        netns.up(self.bridge_name, f"{self.gateway}/{BRIDGE_NET.prefixlen}")

    def __enter__(self) -> ConfiguredLab:
        try:
            self.engine: Engine = self._stack.enter_context(
                PrivateEngine(self.run, "cfg", self.options, prepare=self._prepare, dockerd=self.dockerd))
            self.image = ensure_probe_image(self.engine.client)
            self.resolver = self._stack.enter_context(
                Resolver(self.engine.netns, self.gateway, {PROBE_NAME: self.gateway}))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def scope(self) -> Scope:
        return Scope(self)
