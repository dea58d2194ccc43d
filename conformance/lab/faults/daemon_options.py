"""Faults in the daemon's options: dockerd started with one option that breaks what a claim says.

Each is a documented option used as a user could; the engine does exactly what the option asks, which is
not what the claim describes.  An option that asks for something else on purpose, which the claim's
``applies`` then names (--ip=127.0.0.1, the daemon's --dns), is an unusual configuration instead (unusual.py).
"""

from __future__ import annotations

from ... import FIXTURES
from .fault import Fault

NO_NETCONF_PROFILE = FIXTURES / "faults" / "seccomp-no-netconf.json"

FAULTS = (
    Fault("ip-masq-off", "--ip-masq=false: no MASQUERADE rule for the bridge", options=("--ip-masq=false",)),
    Fault("iptables-off", "--iptables=false: the daemon writes no firewall rules", options=("--iptables=false",)),
    Fault("bridge-none", "--bridge=none: the engine makes no default bridge network", options=("--bridge=none",)),
    Fault("netconf-denied", "a --seccomp-profile denying netlink sockets and the SIOCSIF* ioctls: no container "
          "can configure an interface, even with NET_ADMIN", options=(f"--seccomp-profile={NO_NETCONF_PROFILE}",)),
)
