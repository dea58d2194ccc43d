"""Everything that touches the machine; knows nothing about claims."""

from .engine import Engine, EngineUnavailable
from .session import Lab
from .scope import Scope

__all__ = ["Engine", "EngineUnavailable", "Lab", "Scope"]
