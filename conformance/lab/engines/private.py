"""A private dockerd in a network namespace of its own, started and stopped by the suite.

It is the embedded default when no engine answers, and the ground for the
self-tests' faults: each has its own namespace, data-root, exec-root, pidfile
and socket, so it can never disturb the system daemon or another run.  It is
entered with nsenter, not `ip netns exec`, which would remount /sys and hide the
cgroups dockerd needs.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from ..kernel.netns import NamedNetns, Netns
from ..kernel.procs import cgroups, processes
from ..managed import Managed
from ..safety import redact
from ..safety.identity import RUN_DIR, STATE_DIR, Run
from ..safety.trust import Untrusted, private_dir
from ..wait import WaitTimeout, wait_for
from . import builds, watch
from .engine import Engine, EngineUnavailable


def unmount_below(path: Path) -> None:
    """Lazily unmount whatever a dead daemon left mounted under *path* (deepest first)."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(path) or point.startswith(str(path) + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def kill_engine_processes(marker: str, states: Iterable[Path]) -> list[str]:
    """SIGKILL every process of private engines: those whose command line holds *marker* (a path of their
    directories: the daemon, its containerd, the containerd shims) and those in the cgroup of a container of
    theirs (the ids under each of *states*' data-root: docker-init, what it runs).  One line each."""
    container_ids = [entry.name for state in states  # dockerd's, and Podman's
                     for kind in ("containers", "overlay-containers") for entry in (state / "data" / kind).glob("*")
                     if entry.is_dir()]
    killed = []
    for pid, argv in processes():
        try:
            ours = any(marker in arg for arg in argv) or any(cid in cgroups(pid) for cid in container_ids)
            if ours and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                # A zombie (a killed container's process its dead run never reaped) has no command line.
                killed.append(f"process {pid} ({os.path.basename(argv[0]) if argv else 'no command line'})")
        except OSError:
            continue
    return killed


def package_tree(dockerd: Path) -> Path | None:
    """The root of the unpacked package tree *dockerd* sits in (``ROOT/usr/sbin/dockerd``), if it does."""
    if dockerd.parent.name in ("sbin", "bin") and dockerd.parent.parent.name == "usr":
        return dockerd.parent.parent.parent
    return None


class PrivateEngine(Managed):
    """``with PrivateEngine(run, "eng", ["--ip-masq=false"]) as private: private.engine ...``

    ``prepare(netns)`` runs in between creating the namespace and starting the
    daemon, for options that name something the daemon expects to find there
    (``--bridge`` needs its bridge to exist).  ``tools`` ({"iptables": script})
    go first on this daemon's PATH only: a firewall backend or a broken tool for
    one engine, never the host's alternatives.  ``dockerd`` is the binary to
    start (default: the one on PATH); when it sits in an unpacked package tree
    (``.../usr/sbin/dockerd``), that tree's ``usr/sbin`` and ``usr/bin`` come
    first on its PATH, so the build's own containerd and docker-proxy serve it.
    """

    def __init__(self, run: Run, name: str = "eng", options: Sequence[str] = (),
                 prepare: Callable[[Netns], None] | None = None, tools: Mapping[str, str] | None = None,
                 dockerd: str | Path | None = None):
        self.run = run
        self.dockerd = Path(dockerd).absolute() if dockerd else None
        self.name = name
        self.options = list(options)
        self.prepare = prepare
        self.tools = dict(tools or {})
        self.netns = NamedNetns(run.name(name))
        self.state = STATE_DIR / run.name(name)
        self.rundir = RUN_DIR / run.name(name)
        self.socket = self.rundir / "docker.sock"
        self.tooldir = self.rundir / "bin"  # where ``tools`` are written: first on this daemon's PATH
        self.log = self.state / "dockerd.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def command(self) -> list[str]:
        dockerd = self.binary()
        return [
            "nsenter", f"--net={self.netns.path}", dockerd,
            "--data-root", str(self.state / "data"),
            "--exec-root", str(self.rundir / "exec"),
            "--pidfile", str(self.rundir / "dockerd.pid"),
            "-H", self.url,
            *self.options,
        ]

    def binary(self) -> str:
        """The dockerd to start; one of a tree builds.py unpacked only while its executables are those it
        recorded (a tree elsewhere is the operator's own, run as given)."""
        if self.dockerd is not None:
            if not os.access(self.dockerd, os.X_OK):
                raise EngineUnavailable(f"--dockerd {self.dockerd}: not an executable file")
            tree = package_tree(self.dockerd)
            if tree is not None and builds.is_build(tree):
                try:
                    builds.verify(tree)
                except builds.FetchFailed as exc:
                    raise EngineUnavailable(str(exc)) from None
            return str(self.dockerd)
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise EngineUnavailable("no dockerd on PATH to start a private engine (apt-get install docker.io)")
        return dockerd

    def _setup(self, stack: ExitStack) -> None:
        stack.enter_context(self.netns)
        stack.callback(self.remove_state)
        self._as_booted()
        if self.prepare is not None:
            self.prepare(self.netns)
        stack.callback(self._stop)
        self.engine = self._start()

    def _as_booted(self) -> None:
        """Start the daemon from the state of a freshly booted host.

        A new namespace copies the root namespace's IPv4 settings, so it would
        inherit ip_forward=1 from a host where Docker already runs; and dockerd
        20.10 sets the FORWARD policy to DROP only when it turns forwarding on
        itself.  Without this the private engine would differ from the host it
        stands in for.
        """
        try:
            self.netns.sysctl("net/ipv4/ip_forward", "0")
        except OSError as exc:
            raise EngineUnavailable(f"cannot reset ip_forward: {exc}") from None

    def _start(self) -> Engine:
        try:
            for directory in (STATE_DIR, RUN_DIR, self.state, self.rundir):
                private_dir(directory)
        except Untrusted as exc:
            raise EngineUnavailable(str(exc)) from None
        with open(self.log, "wb") as log:
            process = self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=self._environment(),
            )

        def answering() -> Engine | None:
            if process.poll() is not None:
                raise EngineUnavailable(f"private dockerd exited ({process.returncode}):\n{self.log_tail()}")
            if not self.socket.exists():
                return None
            try:
                return Engine.connect(self.url, private=True)
            except EngineUnavailable:
                return None

        try:
            return wait_for(answering, "the private dockerd to answer", timeout=60, interval=0.1)
        except WaitTimeout as exc:
            raise EngineUnavailable(f"{exc}\n{self.log_tail()}") from None

    def _environment(self) -> dict[str, str]:
        environment = _environ_copy()
        tree = package_tree(self.dockerd) if self.dockerd else None
        if tree is not None:
            environment["PATH"] = f"{tree / 'usr/sbin'}:{tree / 'usr/bin'}:{environment.get('PATH', os.defpath)}"
        if self.tools:
            bindir = self.tooldir
            bindir.mkdir(exist_ok=True)
            for name, script in self.tools.items():
                (bindir / name).write_text(script)
                (bindir / name).chmod(0o755)
            environment["PATH"] = f"{bindir}:{environment.get('PATH', os.defpath)}"
        return environment

    def log_tail(self, lines: int = 20) -> str:
        """The end of the daemon's log, for a problem line: credentials masked (it can echo its options)."""
        try:
            return redact.text("\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]))
        except OSError:
            return ""

    def remove_state(self) -> None:
        """Its directories, once it has stopped, with whatever it left mounted there."""
        for directory in (self.rundir, self.state):
            unmount_below(directory)
            shutil.rmtree(directory, ignore_errors=True)

    def _stop(self) -> None:
        """Stop the daemon; then whatever of it outlived it: all of it where the daemon died under the run
        (its containerd, the shims, the containers' processes), which nothing else would stop."""
        if self.process is None:
            return
        watch.stopping(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        kill_engine_processes(f"/docker-net-conformance/{self.run.name(self.name)}/", [self.state])


class PodmanService(PrivateEngine):
    """``with PodmanService(run) as service: service.engine`` — ``podman system service`` in a namespace of its own.

    Everything Podman keeps goes under the run's own directories: storage
    (``--root``), run state (``--runroot``, where netavark and aardvark-dns keep
    theirs), temporary files and network definitions (``--network-config-dir``),
    so the host's /etc/containers and /var/lib/containers are never touched.
    Stopped, unmounted and swept like a private dockerd.
    """

    def __init__(self, run, name: str = "pod", options=()):
        super().__init__(run, name, options)

    def binary(self) -> str:
        podman = shutil.which("podman")
        if podman is None:
            raise EngineUnavailable("no podman on PATH to start a Podman engine "
                                    "(apt-get install podman netavark aardvark-dns)")
        return podman

    def command(self) -> list[str]:
        return [
            "nsenter", f"--net={self.netns.path}", self.binary(),
            "--root", str(self.state / "data"),
            "--runroot", str(self.rundir / "exec"),
            "--tmpdir", str(self.rundir / "tmp"),
            "--network-config-dir", str(self.state / "networks"),
            "--network-backend", "netavark",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            *self.options,
            "system", "service", "--time=0", self.url,
        ]

    def _environment(self) -> dict[str, str]:
        """A containers.conf of this engine's own.  Podman 4.3 gives a root container nofile=1048576 whatever
        its own hard limit, and nproc=pid_max (lowering its own nproc to that first); where the service's
        hard nofile is lower (a sandbox, a CI runner) runc cannot set it and no container starts, so both are
        set to what the service can pass on: its hard nofile, and Podman's own nproc choice.  Its locks go
        in files of the run's own, so nothing of the run is host-wide."""
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
        conf = self.rundir / "containers.conf"
        conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
                        # locks in files under --tmpdir, not in the host-wide /dev/shm/libpod_lock
                        '[engine]\nlock_type = "file"\n')
        return {**super()._environment(), "CONTAINERS_CONF": str(conf)}

    def _stop(self) -> None:
        """Stop the service, then the conmon monitors it double-forked (not its children): an exec session's
        waits 300 s (exit_command_delay, which keeps the exit code readable) before its cleanup, outliving
        the run.  Every process whose command line names this engine's directories."""
        super()._stop()
        for pid, argv in processes():
            if pid != os.getpid() and any(str(self.state) in a or str(self.rundir) in a for a in argv):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def _environ_copy() -> dict[str, str]:
    """os.environ as it is, without pytest's PYTEST_CURRENT_TEST.  Engines start in background threads while
    pytest sets and deletes that variable in the main one, and copying os.environ reads its keys first and
    their values after, so a key deleted in between raises KeyError: copy again until no change intervenes."""
    while True:
        try:
            environment = dict(os.environ)
        except KeyError:
            continue
        environment.pop("PYTEST_CURRENT_TEST", None)
        return environment
