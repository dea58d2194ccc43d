"""The runtime wrapper: a runc that changes each new container before it starts, as a misbehaving hook would.

The runtime faults (runtime.py) start the daemon with ``--add-runtime`` and ``--default-runtime`` naming this
script in the engine's own tool directory, so the host's runc and every other engine are left alone.  It, and
each tool a fault puts on the daemon's PATH, execs the host's own binary (``real``) for everything it does not
change.
"""

from __future__ import annotations

import inspect
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

RUNTIME = "cf-fault-runtime"
BundleEdit = Callable[[dict, str, str, str], None]  # (spec, network mode, bundle, engine netns): runtime_script


def real(tool: str) -> str:
    """The host's *tool*, which a wrapper of the same name on the daemon's PATH execs."""
    path = shutil.which(tool)
    if path is None:
        raise FileNotFoundError(f"{tool} is not installed (apt-get install iptables)")
    return path


def runtime_script(action: str | None, engine_netns: str, bundle: BundleEdit | None = None,
                   data_root: Path | None = None) -> str:
    """runc, and before `runc start` *action* in the new container's network namespace, which the engine
    has configured by then (20.10 in a prestart hook of `runc create`; 26 and later between create and
    start, daemon/start.go initializeCreatedTask) while the container's process has not started yet;
    $ENGINE_NETNS names the engine's.  Host-mode containers, which share the engine's, are left alone.

    Before `runc create`, *bundle* (a self-contained function: its source is copied into the wrapper) edits
    the OCI bundle's config.json as `bundle(spec, mode, bundle_dir, engine_netns)`, *mode* being the
    container's network mode as the engine keeps it (*data_root*/containers/ID/hostconfig.json: "default",
    "none", "container:X", a network's name)."""
    runc, nsenter, sh, search_path = real("runc"), real("nsenter"), real("sh"), "/usr/sbin:/usr/bin:/sbin:/bin"
    lines = [f"#!{sys.executable}", "import json, os, subprocess, sys", "args = sys.argv[1:]"]
    if bundle is not None:
        lines += [
            inspect.getsource(bundle),
            "if 'create' in args:",
            "    bundle_dir = args[args.index('--bundle') + 1]",
            "    config = os.path.join(bundle_dir, 'config.json')",
            "    with open(config) as f:",
            "        spec = json.load(f)",
            f"    with open(os.path.join({str(data_root)!r}, 'containers', args[-1], 'hostconfig.json')) as f:",
            "        mode = json.load(f)['NetworkMode']",
            f"    {bundle.__name__}(spec, mode, bundle_dir, {engine_netns!r})",
            "    with open(config, 'w') as f:",
            "        json.dump(spec, f)",
        ]
    if action is not None:
        script = f"""[ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i "$ENGINE_NETNS")" ] && exit 0
ip -o link show eth0 >/dev/null 2>&1 || exit 0
{action}"""
        lines += [
            "if 'start' in args:",
            "    state = subprocess.run([" + repr(runc) + ", *args[:args.index('start')], 'state', args[-1]],",
            "                           capture_output=True, text=True)",
            "    pid = str(json.loads(state.stdout)['pid'])",
            f"    subprocess.run([{nsenter!r}, '-t', pid, '-n', {sh!r}, '-c', {script!r}],",
            f"                   env={{'PATH': {search_path!r}, 'ENGINE_NETNS': {engine_netns!r}}})",
        ]
    lines.append(f"os.execv({runc!r}, [{runc!r}, *args])")
    return "\n".join(lines) + "\n"
