"""Faults in the tools on the daemon's PATH: a script named for a tool the daemon runs, put first on the PATH of
that daemon only (its own tool directory, never the host's alternatives), which misbehaves and reports success.
"""

from __future__ import annotations

import sys

from .fault import Fault
from .wrapper import real


def _inert_proxy() -> dict[str, str]:
    # The daemon waits for "0\n" on fd 3; then this holds no socket.  "$0" keeps the run's
    # directory in the argv, so a sweep after a crash still finds the process.
    return {"docker-proxy": (
        "#!/bin/sh\n"
        "printf '0\\n' >&3\n"
        "exec 3>&-\n"
        f"exec {sys.executable} -c 'import signal; signal.pause()' \"$0\"\n"
    )}


def _dnat_dropped() -> dict[str, str]:
    return {"iptables": (
        "#!/bin/sh\n"
        "# fault dnat-dropped: DNAT rules are reported added and never reach the kernel\n"
        'for arg; do\n'
        '  case "$arg" in -A|-I) add=1 ;; DNAT) dnat=1 ;; esac\n'
        'done\n'
        '[ -n "$add" ] && [ -n "$dnat" ] && exit 0\n'
        f'exec {real("iptables")} "$@"\n'
    )}


def _user_bridge_unaddressed() -> dict[str, str]:
    return {"iptables": (
        "#!/bin/sh\n"
        "# fault user-bridge-unaddressed: each user-defined bridge the daemon writes rules for loses its IPv4\n"
        'for arg; do\n'
        '  case "$arg" in br-*) ip -4 addr flush dev "$arg" 2>/dev/null ;; esac\n'
        'done\n'
        f'exec {real("iptables")} "$@"\n'
    )}


def _dnat_unbound() -> dict[str, str]:
    return {"iptables": (
        "#!/bin/sh\n"
        "# fault dnat-unbound: every DNAT rule the daemon adds, checks or deletes loses its `-d ADDRESS`\n"
        'for arg; do [ "$arg" = DNAT ] && dnat=1; done\n'
        'if [ -n "$dnat" ]; then\n'
        '  for arg; do\n'
        '    shift\n'
        '    if [ -n "$skip" ]; then skip=; continue; fi\n'
        '    if [ "$arg" = -d ]; then skip=1; continue; fi\n'
        '    set -- "$@" "$arg"\n'
        '  done\n'
        'fi\n'
        f'exec {real("iptables")} "$@"\n'
    )}


def _proxy_host_ip_ignored() -> dict[str, str]:
    return {"docker-proxy": (
        "#!/bin/sh\n"
        "# fault proxy-host-ip-ignored: a binding to one host address is served on every address\n"
        'for arg; do\n'
        '  shift\n'
        '  if [ -n "$skip" ]; then\n'
        '    skip=; case "$arg" in 0.0.0.0|::) set -- "$@" -host-ip "$arg" ;; esac; continue\n'
        '  fi\n'
        '  if [ "$arg" = -host-ip ]; then skip=1; continue; fi\n'
        '  set -- "$@" "$arg"\n'
        'done\n'
        f'exec {real("docker-proxy")} "$@"\n'
    )}


FAULTS = (
    Fault("proxy-inert", "a docker-proxy that reports ready and serves nothing", tools=_inert_proxy),
    Fault("dnat-dropped", "an iptables that drops the daemon's DNAT rules and reports success", tools=_dnat_dropped),
    Fault("user-bridge-unaddressed", "an iptables on the daemon's PATH that flushes the IPv4 addresses of each "
          "user-defined bridge the daemon writes rules for, as a network manager taking over new bridges does",
          tools=_user_bridge_unaddressed),
    Fault("dnat-unbound", "an iptables on the daemon's PATH that leaves `-d ADDRESS` out of every DNAT rule: "
          "`-p IP:HOSTPORT:CONTAINERPORT` is DNATed at every address of the host", tools=_dnat_unbound),
    Fault("proxy-host-ip-ignored", "a docker-proxy that drops `-host-ip ADDRESS` (a wildcard one kept), as a "
          "build that ignores it would: a binding to one host address is served at every address",
          tools=_proxy_host_ip_ignored),
)
