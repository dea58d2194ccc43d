"""Podman behind the Docker API: recognising it, and what it has instead of dockerd's options.

``podman system service`` serves Docker's Engine API (version 1.41 for Podman
4.3), so the whole catalog runs against it unchanged; what differs is judged by
behaviour.  Podman has no dockerd: no daemon options, no docker-proxy (rootful
netavark publishes ports with iptables DNAT alone, conmon only holds the host
port), and its default network "podman" (bridge ``podman0``, 10.88.0.0/16) answers
to Docker's name "bridge".  ``is_podman`` is the one test for "this engine is
Podman", for anyone deciding what to do with an engine that answers;
``private.PodmanService`` starts one.
"""

from __future__ import annotations

from typing import Any

PRODUCT = "podman"
# The libpod API path prefix; any version Podman 4 serves will do for the calls made here.
LIBPOD = "/v4.0.0/libpod"


def is_podman(version: dict[str, Any]) -> bool:
    """Whether an engine's ``GET /version`` answer is Podman's (its first component is "Podman Engine")."""
    return any((c.get("Name") or "").startswith("Podman") for c in version.get("Components") or [])


def options(iptables: bool) -> dict[str, Any]:
    """The Docker daemon options' Podman equivalents, for the catalog's ``applies`` facts.

    Rootful Podman with netavark: rules in iptables, masquerade and inter-container
    traffic on, no userland proxy (ports are DNAT rules; conmon holds the host port).
    """
    return {"userland-proxy": False, "iptables": iptables, "ip-masq": True, "icc": True, "ip-forward": True,
            "dns": [], "mtu": None, "bip": None, "bridge": None, "ip": None, "config-file": None}


def network(client, name_or_id: str) -> dict[str, Any]:
    """Podman's own description of a network (libpod API): its ``network_interface`` names the bridge."""
    response = client.api.get(client.api.base_url + f"{LIBPOD}/networks/{name_or_id}/json")
    response.raise_for_status()
    return response.json()
