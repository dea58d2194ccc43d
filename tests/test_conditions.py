"""Version conditions of ``applies``: build suffixes dropped, pre-release suffixes kept (catalog/conditions.py)."""

import pytest

from conformance.catalog.conditions import _leading_version, unmet_conditions


@pytest.mark.parametrize(("text", "version"), [
    ("6.18.44-fc-v595", "6.18.44"),
    ("6.18.44-fc-v1300", "6.18.44"),
    ("5.15.0-1034-azure", "5.15.0"),
    ("26.1.5+dfsg1", "26.1.5"),
    ("28.5.1-1ubuntu1", "28.5.1"),
    ("29.1.0-rc.1", "29.1.0rc1"),
    ("28.0.0-beta.2", "28.0.0b2"),
    ("5.0.0-rc1", "5.0.0rc1"),
    ("6.2.0-rc3-amd64", "6.2.0rc3"),
    ("4.0.0-dev", "4.0.0.dev0"),
    ("20.10.24", "20.10.24"),
])
def test_leading_version(text, version):
    assert str(_leading_version(text)) == version


@pytest.mark.parametrize(("have", "wanted", "met"), [
    ("29.1.0", ">=29.1", True),
    ("29.1.0-rc.1", ">=29.1", False),  # was treated as 29.1.0
    ("29.1.0-rc.1", "<29.1", False),  # nor on the old side of a change made in 29.1
    ("29.1.0-rc.1", ">=29.0", True),
    ("29.1.0-rc.1", "<30", True),
    ("28.0.0-beta.2", "<28.0", False),
    ("27.5.1", "<28.0", True),
    ("26.1.5+dfsg1", "<26", False),
    ("25.0.3", "<26", True),
    ("6.18.44-fc-v595", ">=6.2", True),
    (None, "<26", False),
    ("not a version", "<26", False),
])
def test_version_condition(have, wanted, met):
    unmet = unmet_conditions({"engine_version": wanted}, {"engine_version": have})
    assert (not unmet) is met


def test_value_condition():
    assert unmet_conditions({"userland_proxy": True}, {"userland_proxy": True}) == {}
    assert unmet_conditions({"userland_proxy": True}, {"userland_proxy": False}) == {"userland_proxy": True}


def test_engine_resolv_conf_follows_systemd_resolved(tmp_path):
    """The host fact host_resolvers_copyable and the resolv.conf claims read the file Docker copies: behind
    systemd-resolved's stub (the only nameserver 127.0.0.53), /run/systemd/resolve/resolv.conf."""
    from conformance.lab.kernel.machine import engine_resolv_conf

    (tmp_path / "etc").mkdir()
    (tmp_path / "run/systemd/resolve").mkdir(parents=True)
    etc, behind = tmp_path / "etc/resolv.conf", tmp_path / "run/systemd/resolve/resolv.conf"
    behind.write_text("nameserver 192.0.2.53\nsearch example.org\n")
    etc.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n")
    assert engine_resolv_conf(root=tmp_path) == behind
    etc.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.1\n")  # not the stub alone: read as it is
    assert engine_resolv_conf(root=tmp_path) == etc
    etc.write_text("nameserver 192.0.2.1\n")
    assert engine_resolv_conf(root=tmp_path) == etc
    assert engine_resolv_conf("/etc/other.conf", root=tmp_path) == tmp_path / "etc/other.conf"
