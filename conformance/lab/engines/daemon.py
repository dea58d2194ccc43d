"""What a running dockerd was told: its command line and its config file.

Only the options the catalog's ``applies`` conditions and the reports need are
read; everything else the daemon is asked through the Engine API.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..kernel.procs import cmdline

DEFAULT_CONFIG = Path("/etc/docker/daemon.json")

# option -> (default, kind) as dockerd documents them
OPTIONS: dict[str, tuple[Any, str]] = {
    "userland-proxy": (True, "bool"),
    "iptables": (True, "bool"),
    "ip-masq": (True, "bool"),
    "icc": (True, "bool"),
    "ip-forward": (True, "bool"),
    "dns": ([], "list"),
    "dns-search": ([], "list"),
    "resolv-conf": (None, "str"),  # daemon.json only: the host resolv.conf containers get (moby setupResolvConf)
    "mtu": (None, "int"),
    "bip": (None, "str"),
    "bridge": (None, "str"),
    "ip": (None, "str"),
    "ipv6": (False, "bool"),
    "fixed-cidr": (None, "str"),
    "fixed-cidr-v6": (None, "str"),
    "default-gateway": (None, "str"),
    "default-address-pool": ([], "list"),  # the flag; daemon.json calls it default-address-pools
    "default-address-pools": ([], "list"),
}

# The options that make the default bridge network differ from its documented defaults
# (`docker network inspect bridge`: 172.17.0.0/16 on docker0, icc, masquerade, 0.0.0.0, MTU 1500, no IPv6).
DEFAULT_BRIDGE_SHAPERS = ("bip", "bridge", "fixed-cidr", "default-gateway", "default-address-pool",
                          "default-address-pools", "icc", "ip-masq", "ip", "mtu", "ipv6", "fixed-cidr-v6")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "t", "true"):
        return True
    if text.lower() in ("0", "f", "false"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config-file")
    for name, (_, kind) in OPTIONS.items():
        if kind == "bool":
            parser.add_argument(f"--{name}", nargs="?", const="true")
        elif kind == "list":
            parser.add_argument(f"--{name}", action="append")
        else:
            parser.add_argument(f"--{name}")
    return parser


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return value if isinstance(value, bool) else _bool(str(value))
    if kind == "int":
        return int(value)
    return value


def daemon_options(pid: int) -> dict[str, Any]:
    """Effective options of the dockerd with *pid*: command line over config file over defaults."""
    argv = [a for a in cmdline(pid)[1:] if a]
    args, _ = _parser().parse_known_args(argv)
    config_path = Path(args.config_file) if args.config_file else DEFAULT_CONFIG
    config: dict[str, Any] = {}
    if config_path.is_file():
        config = json.loads(config_path.read_text() or "{}")
    options: dict[str, Any] = {}
    for name, (default, kind) in OPTIONS.items():
        value = getattr(args, name.replace("-", "_"))
        if value is None:
            value = config.get(name, default)
        options[name] = _convert(kind, value)
    options["config-file"] = str(config_path) if config_path.is_file() else None
    options["argv"] = argv
    return options


def default_bridge_overrides(options: dict[str, Any]) -> list[str]:
    """The options, as ``--name=value``, by which *options* move the default bridge off its documented
    defaults; [] when it should look as documented."""
    def shown(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return [f"--{name}={shown(options[name])}" for name in DEFAULT_BRIDGE_SHAPERS
            if options.get(name) not in (OPTIONS[name][0], None)
            and not (name == "mtu" and options[name] == 1500)]
