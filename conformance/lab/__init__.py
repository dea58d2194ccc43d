"""Everything that touches the machine; knows nothing about claims.

``Lab`` and ``Scope`` are loaded on first use: importing one module of the lab (the engine, for the
preflight of xdist's controller or a report tool) does not load them all, scapy included.
"""

from .engines.engine import Engine, EngineUnavailable

__all__ = ["Engine", "EngineUnavailable", "Lab", "Scope"]


def __getattr__(name: str):
    if name == "Lab":
        from .engines.under_test import Lab
        return Lab
    if name == "Scope":
        from .engines.scope import Scope
        return Scope
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
