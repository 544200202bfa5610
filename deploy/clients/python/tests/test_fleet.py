"""provd.fleet against real provd daemons (no lab): status and verify over several hosts
concurrently, one row per host, an unreachable host a row too, and the same rows — the
failed flag and reason codes included — as `provctl fleet status|verify --output json`
over the same inventory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import provd
from provd import fleet
from provd.v1 import agent_pb2

from harness import Daemon, free_port_run, provctl_binary


@pytest.fixture(scope="module")
def daemons(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    started = [Daemon(pki, tmp_path_factory.mktemp(f"fleet{i}") / "state").start() for i in range(3)]
    # One operation that ends FAILED: an Install of a package that is not there.
    with started[1].client("admin") as client:
        op = client.call(
            client.stubs.agent.Install,
            agent_pb2.InstallRequest(
                source="file:///nonexistent/agent.msi", sha256="0" * 64, accept_license=True
            ),
        ).operation
        assert client.watch(op, timeout=30).state != 0
    yield started
    for d in started:
        d.stop()


@pytest.fixture()
def inventory(daemons: list[Daemon], pki: Path, tmp_path: Path) -> Path:
    """provctl's inventory format: relative paths, a [defaults] table, a dead host."""
    dead = free_port_run(1, start=18900)
    text = "[defaults]\nca = 'pki/ca.pem'\ncert = 'pki/client-viewer.pem'\nkey = 'pki/client-viewer.key'\n\n"
    for i, d in enumerate(daemons):
        text += f'[[hosts]]\nname = "h{i}"\nendpoint = "https://{d.endpoint}"\n\n'
    text += f'[[hosts]]\nname = "down"\nendpoint = "localhost:{dead}"\n'
    (tmp_path / "pki").symlink_to(pki)
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def provctl_rows(what: str, inventory: Path) -> tuple[int, list[dict]]:
    done = subprocess.run(
        [str(provctl_binary()), "--output", "json", "fleet", what, "--inventory", str(inventory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def codes(row: dict) -> list[str]:
    return [r.split(":")[0] for r in row["reasons"]]


def test_the_inventory_reads_as_provctl_reads_it(inventory: Path, pki: Path) -> None:
    hosts = fleet.load_inventory(inventory)
    assert [h.name for h in hosts] == ["h0", "h1", "h2", "down"]
    assert Path(hosts[0].ca).resolve() == (pki / "ca.pem").resolve()
    bad = inventory.parent / "bad.toml"
    bad.write_text('[[hosts]]\nname = "a"\nendpoint = "x:1"\n')
    with pytest.raises(ValueError, match="no ca"):
        fleet.load_inventory(bad)


def test_status_judges_every_host_as_provctl_does(inventory: Path) -> None:
    rows = fleet.status(fleet.load_inventory(inventory), concurrency=2, timeout=5)
    assert [r.host for r in rows] == ["down", "h0", "h1", "h2"]
    down, h0, h1, _ = rows
    assert (down.status, down.failed, codes(down.to_dict())) == ("UNREACHABLE", True, ["UNREACHABLE"])
    # Linux daemons: no host backend, so every reachable host fails for that.
    assert h0.status == "FAIL" and h0.failed
    assert codes(h0.to_dict()) == ["HOST_UNAVAILABLE"]
    assert h0.drift_watch == "OFF" and h0.last_operation is None
    assert isinstance(h0.response, provd.v1.status_pb2.GetHostStatusResponse)
    assert codes(h1.to_dict()) == ["HOST_UNAVAILABLE", "LAST_OPERATION_FAILED"]
    assert h1.last_operation["kind"] == "INSTALL" and h1.last_operation["state"] == "FAILED"

    code, expected = provctl_rows("status", inventory)
    assert code == 1
    for mine, theirs in zip((r.to_dict() for r in rows), expected, strict=True):
        if mine["status"] == "UNREACHABLE":
            # The error texts are each library's own; the verdict is the same.
            assert (mine["host"], mine["failed"], codes(mine)) == (
                theirs["host"],
                theirs["failed"],
                codes(theirs),
            )
        else:
            assert mine == theirs


def test_status_takes_dicts_and_a_single_host(daemons: list[Daemon], pki: Path) -> None:
    host = {
        "name": "only",
        "endpoint": daemons[0].endpoint,
        "ca": pki / "ca.pem",
        "cert": pki / "client-viewer.pem",
        "key": pki / "client-viewer.key",
    }
    (row,) = fleet.status([host])
    assert row.host == "only" and row.reasons[0].startswith("HOST_UNAVAILABLE")
    # The same judgement as one host's Client.host_status.
    with daemons[0].client("viewer") as client:
        assert fleet.judge(client.host_status()) == row.reasons


def test_verify_without_a_credential_as_provctl_does(inventory: Path) -> None:
    rows = fleet.verify(fleet.load_inventory(inventory), concurrency=3)
    assert [r.host for r in rows] == ["down", "h0", "h1", "h2"]
    assert rows[0].status == "UNREACHABLE" and rows[0].failed
    for r in rows[1:]:
        # No host backend: host.backend.available FAILs; no directory was added.
        assert r.status == "FAIL" and r.failed, r.to_dict()
        assert "host.backend.available" in r.failed_checks
        assert r.report is not None and r.checks
    code, expected = provctl_rows("verify", inventory)
    assert code == 1
    for mine, theirs in zip((r.to_dict() for r in rows), expected, strict=True):
        if mine["status"] == "UNREACHABLE":
            assert (mine["host"], mine["failed"]) == (theirs["host"], theirs["failed"])
        else:
            assert mine == theirs
    assert not fleet.verify_fails("WARN") and fleet.verify_fails("SKIP")
