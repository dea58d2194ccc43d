"""--network container:X — the b1/b2 experiment: one network stack, two filesystems, two process lists."""

import os

from conformance.plugin import claims

from .helpers import PROBE_PAGE, httpd, wget


def _joined(scope, b1_command=None, b2_command=None):
    b1 = scope.container("b1", b1_command)
    b2 = scope.container("b2", b2_command, network=f"container:{b1.name}")
    return b1, b2


@claims("container/shares-network-stack")
def test_shares_network_stack(claim, scope, evidence):
    b1, b2 = _joined(scope)
    links1, links2 = scope.netns(b1).links(), scope.netns(b2).links()
    view1 = scope.exec(b1, "ip", "-o", "addr").output
    view2 = scope.exec(b2, "ip", "-o", "addr").output
    evidence.json("netlink-links", {"b1": links1, "b2": links2})
    evidence.text("ip-addr", f"# b1\n{view1}\n# b2\n{view2}")
    assert scope.netns(b1).inode == scope.netns(b2).inode, "b2 has a network namespace of its own"
    assert {n: l["address"] for n, l in links2.items()} == {n: l["address"] for n, l in links1.items()}
    assert "eth0" in view2 and view1 == view2, "b1 and b2 see different addresses"


@claims("container/loopback-between-members")
def test_loopback_between_members(claim, scope, evidence):
    b1, b2 = _joined(scope, b1_command=httpd(bind="127.0.0.1"))
    scope.wait_listening(b1, 8080)
    fetched = wget(scope, b2, "http://127.0.0.1:8080/")
    evidence.text("wget-127.0.0.1", f"exit {fetched.exit_code}\n{fetched.output}")
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget 127.0.0.1 from b2: {fetched.output}"


@claims("container/served-at-shared-address")
def test_served_at_shared_address(claim, scope, evidence):
    site = "echo 'hellp world' > /tmp/index.html && exec httpd -f -p 80 -h /tmp"
    b1, b2 = _joined(scope, b2_command=["sh", "-c", site])
    scope.wait_listening(b2, 80)
    address = scope.address(b1)
    fetched = wget(scope, b1, f"{address}:80")
    evidence.text("wget-shared-address", f"wget {address}:80 from b1: exit {fetched.exit_code}\n{fetched.output}")
    assert fetched.exit_code == 0 and "hellp world" in fetched.output, f"b1 got: {fetched.output}"


@claims("container/filesystem-isolated")
def test_filesystem_isolated(claim, scope, evidence):
    b1, b2 = _joined(scope)
    made = scope.exec(b1, "sh", "-c", "mkdir /tmp/data && ls /tmp")
    seen = scope.exec(b2, "ls", "/tmp")
    evidence.text("tmp-listings", f"# b1: mkdir /tmp/data; ls /tmp\n{made.output}\n# b2: ls /tmp\n{seen.output}")
    assert made.exit_code == 0 and "data" in made.output.split(), f"mkdir in b1 failed: {made.output}"
    assert "data" not in seen.output.split(), "b2 sees the directory made in b1"


@claims("container/process-list-isolated")
def test_process_list_isolated(claim, scope, evidence):
    marker = "3599"
    b1, b2 = _joined(scope, b1_command=["sleep", marker])
    in_b1 = scope.exec(b1, "ps", "-o", "pid,args").output
    in_b2 = scope.exec(b2, "ps", "-o", "pid,args").output
    pidns = {name: os.stat(f"/proc/{scope.pid(box)}/ns/pid").st_ino for name, box in (("b1", b1), ("b2", b2))}
    evidence.text("process-lists", f"# b1\n{in_b1}\n# b2\n{in_b2}\n# pid namespaces {pidns}")
    assert f"sleep {marker}" in in_b1, "control: b1 does not list its own process"
    assert pidns["b1"] != pidns["b2"], "b1 and b2 share a PID namespace"
    assert f"sleep {marker}" not in in_b2, "b2 lists b1's process"
