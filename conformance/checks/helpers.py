"""Small helpers shared by the checks."""

from __future__ import annotations

HTTPD_PORT = 8080
PROBE_PAGE = "hello from the probe"


def httpd(port: int = HTTPD_PORT, bind: str = "", root: str = "/www") -> list[str]:
    """busybox httpd in the foreground; ``bind`` may restrict it to one address."""
    return ["httpd", "-f", "-p", f"{bind}:{port}" if bind else str(port), "-h", root]


def plain_address(peer: str) -> str:
    """'[::ffff:198.51.100.2]' as busybox httpd reports it -> '198.51.100.2'."""
    return peer.strip().strip("[]").removeprefix("::ffff:")


def wget(scope, box, url: str, timeout: int = 5):
    """Fetch *url* from inside *box*.

    Bounded by the exec's own `timeout`: `wget -T` crashes Debian 12's busybox-static 1.35.
    """
    return scope.exec(box, "wget", "-q", "-O", "-", url, timeout=timeout)
