"""Faults that break one thing, and unusual but healthy configurations: what ``--variant NAME`` starts a run as.

A *fault* makes a host wrong the way a bad option, a stray rule or a regressed tool would; the catalog says
which claims' checks must then fail (``faults:``), so every check is shown to be able to fail (principle 5).
An *unusual* configuration is healthy: every behaviour claim must still pass on it, and only claims about the
documented defaults may be reported not applicable.  Both are a ``Fault`` (fault.py) aimed at one target
(``Target``): the engine under test, the configured engine, the two-host lab or every new namespace; a fault
changes only what the suite starts, never the host's own engine or tools.  ``python -m conformance
--variant NAME`` runs the checks with one; ``python -m conformance mutate`` runs the whole map.

They are grouped by how they break things, a module each: the daemon's options (daemon_options.py), tools on
the daemon's PATH (tools.py), rules and sysctls around its start (rules.py), the runtime wrapper (runtime.py,
its generator wrapper.py), every new namespace (namespaces.py) and the two-host lab (hosts.py); the unusual
configurations are unusual.py.  The registry is built here, once.
"""

from __future__ import annotations

from . import daemon_options, hosts, namespaces, rules, runtime, tools, unusual
from .fault import Fault

FAULTS: tuple[Fault, ...] = (*daemon_options.FAULTS, *tools.FAULTS, *rules.FAULTS, *runtime.FAULTS,
                             *namespaces.FAULTS, *hosts.FAULTS)
UNUSUAL: tuple[Fault, ...] = unusual.CONFIGURATIONS
BY_NAME: dict[str, Fault] = {fault.name: fault for fault in FAULTS + UNUSUAL}
