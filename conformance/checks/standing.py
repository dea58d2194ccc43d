"""Standing containers: one long-lived container per plain topology, started on first use and read by the checks
of every module (on one xdist worker) that only look at it or exec in it, then removed when the run ends.

A container costs the engines about half a CPU-second to start and remove, and most checks that use one only
read it: its namespace, its addresses, what it can reach.  Those take ``standing`` (through their module's
fixture) instead of starting their own.  A check that changes a container (adds an interface, runs a server on a
port another check reads, publishes a port) keeps starting its own, in ``scope`` or the module's ``shared``.
Before each check that uses them, their gateway neighbour entries are made fresh (Scope.refresh_gateways), so a
check meets them as it would containers started for it.
"""

from __future__ import annotations

from conformance.lab import Scope
from conformance.lab.engines.box import Box

from .helpers import EXPOSED_PORT, HTTPD_PORT

# What each role is run with (Scope.container's arguments; network "bridge" when not given).
ROLES: dict[str, dict] = {
    "plain": {"network": None},  # `docker run` without --network: the default bridge
    "client": {},  # --network bridge
    # --network bridge, serving the probe page on HTTPD_PORT and on the port the image EXPOSEs
    "server": {"command": ["sh", "-c", f"httpd -p {EXPOSED_PORT} -h /www && exec httpd -f -p {HTTPD_PORT} -h /www"]},
    "host": {"network": "host"},
    "none": {"network": "none"},
}


class Standing:
    """``standing("plain", "server")``: those containers, each started (at once) the first time it is asked for."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self._boxes: dict[str, Box] = {}

    def __call__(self, *roles: str) -> list[Box]:
        missing = [role for role in dict.fromkeys(roles) if role not in self._boxes]
        if missing:
            started = self.scope.containers(**{role: ROLES[role] for role in missing})
            self._boxes.update(zip(missing, started, strict=True))
            if "server" in missing:
                for port in (HTTPD_PORT, EXPOSED_PORT):
                    self._boxes["server"].wait_listening(port)
        for role in roles:
            if role not in missing:
                _still_running(role, self._boxes[role])
        return [self._boxes[role] for role in roles]

    def refresh_gateways(self) -> list[str]:
        return self.scope.refresh_gateways()


def _still_running(role: str, box: Box) -> None:
    """A standing container that stopped is not replaced: whatever stopped it would go unseen."""
    box.reload()
    state = box.attrs["State"]
    if not state["Running"]:
        raise RuntimeError(f"the standing {role} container {box.name} stopped after an earlier check used it: "
                           f"{state['Status']}, exit code {state['ExitCode']}")
