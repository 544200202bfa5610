"""ConfigurationService through the Python client against the Samba lab: a
directory-only document (the lab domain with preferred DCs, a gMSA of this
run's own, BASIC_READ) is planned, applied (SUCCEEDED, changed=true, events
streamed), applied again (changed=false), verified; and the document reader
is compared with provctl's on the same files through the same daemon.

Cleanup: the run's gMSA ACEs are removed from the domain root and the gMSA
deleted. The computer account PROVPYHOST$ (lab.sh prepare-host) stays.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import provd
from provd import errors
from provd.v1 import operations_pb2, verify_pb2

from harness import (
    Daemon,
    Lab,
    plan_verdict_of_provctl,
    plan_verdict_of_python,
    provctl_binary,
    unique_gmsa,
)

HOST = "PROVPYHOST"
PROFILES = ["basic_read"]


@pytest.fixture(scope="module")
def lab_daemon(lab: Lab, pki: Path, tmp_path_factory: pytest.TempPathFactory):
    lab.prepare_host(HOST)
    d = Daemon(pki, tmp_path_factory.mktemp("lab") / "state", lab=lab).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def gmsa(lab: Lab, lab_daemon: Daemon):
    name = unique_gmsa("provPy")
    yield name
    with lab_daemon.client("admin") as client:
        lab.remove_gmsa(client, name)


@pytest.fixture(scope="module")
def document(lab: Lab, gmsa: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's document, as an operator would write it (TOML)."""
    path = tmp_path_factory.mktemp("doc") / "agent-host.toml"
    dcs = ", ".join(f'"{dc}"' for dc in lab.dcs)
    path.write_text(
        f"""# directory only: no [agent], no [writeback] (those need the Windows host)
[[domains]]
domain = "{lab.domain}"
preferred_domain_controllers = [{dcs}]

[service_account]
domain = "{lab.domain}"
permissions = {json.dumps(PROFILES)}

[service_account.create]
name = "{gmsa}"
principals = ["{HOST}$"]
"""
    )
    return path


@dataclass
class Applied:
    plan: list
    operation: operations_pb2.Operation
    events: list


@pytest.fixture(scope="module")
def applied(lab: Lab, lab_daemon: Daemon, document: Path) -> Applied:
    """The first plan and apply of the document."""
    desired = provd.load_document(document)
    with lab_daemon.client("admin") as client:
        plan = client.plan(desired, lab.credential())
        events: list = []
        op = client.apply(desired, lab.credential())
        final = client.wait(op, on_event=events.append, timeout=120)
    return Applied(plan, final, events)


def test_plan_lists_what_apply_then_does(lab: Lab, applied: Applied, gmsa: str) -> None:
    summary = [(c.step, c.action) for c in applied.plan]
    assert summary == [
        (f"domain {lab.domain}", "add"),
        ("service-account", "create"),
        ("permissions", "grant"),
    ], applied.plan
    assert lab.dcs[0] in applied.plan[0].detail
    assert gmsa in applied.plan[1].detail

    op = applied.operation
    assert op.kind == operations_pb2.OPERATION_KIND_APPLY_CONFIGURATION
    assert op.state == operations_pb2.OPERATION_STATE_SUCCEEDED
    assert op.result["changed"] == "true"
    assert op.result["changes"] == str(len(applied.plan))
    assert op.initiator == "admin"

    # watch streamed every event, in order, ending with the state change.
    events = applied.events
    assert [e.sequence for e in events] == list(range(1, op.event_count + 1))
    assert events[-1].kind == operations_pb2.EVENT_KIND_STATE_CHANGED
    # One PROGRESS event per planned change, in the plan's order.
    sections = ("domain ", "service-account", "permissions")
    progress = [
        (e.step, e.message)
        for e in events
        if e.kind == operations_pb2.EVENT_KIND_PROGRESS and e.step.startswith(sections)
    ]
    assert progress == [(c.step, f"{c.action}: {c.detail}") for c in applied.plan]
    # The nested workflows' own steps ran inside it.
    started = {e.step for e in events if e.kind == operations_pb2.EVENT_KIND_STEP_STARTED}
    assert {"connect", "create-account", "write"} <= started, started


def test_a_second_apply_changes_nothing(lab: Lab, lab_daemon: Daemon, applied: Applied, document: Path) -> None:
    desired = provd.load_document(document)
    with lab_daemon.client("admin") as client:
        assert client.plan(desired, lab.credential()) == []
        events: list = []
        request_id = f"py-reapply-{applied.operation.id[:8]}"
        op = client.apply(desired, lab.credential(), request_id=request_id)
        final = client.wait(op, on_event=events.append, timeout=120)
        assert final.result["changed"] == "false"
        assert final.result["changes"] == "0"
        skipped = [
            e.step
            for e in events
            if e.kind == operations_pb2.EVENT_KIND_STEP_SKIPPED and e.message == "as desired"
        ]
        assert skipped == [f"domain {lab.domain}", "service-account", "permissions", "agent-domains"]
        # Retrying with the same request id returns that operation, no new work.
        again = client.apply(desired, lab.credential(), request_id=request_id)
        assert again.id == final.id
        assert again.state == operations_pb2.OPERATION_STATE_SUCCEEDED


def test_verify_sees_the_account_and_its_permissions(
    lab: Lab, lab_daemon: Daemon, applied: Applied, gmsa: str
) -> None:
    seen: list = []
    with lab_daemon.client("viewer") as client:
        result = client.verify(
            domains=[lab.domain],
            credential=lab.credential(),
            categories=["directory"],
            on_check=seen.append,
        )
    assert seen == result.checks
    assert result.report is not None
    assert result.status in ("PASS", "WARN"), result.to_dict()
    by_id = {(c.id, c.subject): c for c in result.checks}
    account = by_id[("directory.gmsa.account", lab.domain)]
    assert account.status == verify_pb2.CHECK_STATUS_PASS, account
    assert gmsa in account.message
    permissions = by_id[("directory.permissions", lab.domain)]
    assert permissions.status == verify_pb2.CHECK_STATUS_PASS, permissions
    assert ("directory.dc.reachable", lab.domain) in by_id
    assert all(c.category == verify_pb2.CHECK_CATEGORY_DIRECTORY for c in result.checks)
    report = result.to_dict()["report"]
    assert report["pass_count"] + report["warn_count"] == len(result.checks)


def test_a_wrong_password_is_unauthenticated(lab: Lab, lab_daemon: Daemon, document: Path) -> None:
    wrong = provd.Credential(lab["LAB_ADMIN_UPN"], "not-the-password")
    with lab_daemon.client("viewer") as client, pytest.raises(errors.Unauthenticated):
        client.plan(provd.load_document(document), wrong)


def test_the_password_is_never_in_the_daemon_log(lab: Lab, lab_daemon: Daemon, applied: Applied) -> None:
    assert lab["LAB_PASSWORD"] not in lab_daemon.log()


# -- the document reader against provctl's ------------------------------------------------


PARITY = {
    # Accepted: every spelling provctl takes.
    "spellings.yaml": """
domains:
  - domain: {domain}
    preferred_domain_controllers: [{dc1}, {dc2}]
service_account:
  domain: {domain}
  permissions: [Basic-Read, PERMISSION_PROFILE_CONSISTENCY_GUID, password hash sync]
  create:
    name: provParity1
    principals: [{host}$]
    encryption_types: [AES256, rc4]
""",
    "spellings.toml": """
[[domains]]
domain = "{domain}"
preferred_domain_controllers = ["{dc2}"]
[service_account]
domain = "{domain}"
permissions = ["all"]
[service_account.custom]
name = "provParity2$"
host_account = "{host}$"
""",
    "spellings.json": """{{"domains": [{{"domain": "{domain}"}}],
 "service_account": {{"domain": "{domain}", "create": {{"name": "provParity3", "principals": ["{host}$"]}}}}}}""",
    "bools.yaml": "writeback:\n  enabled: True\n",
    "number.yaml": "domains:\n  - domain: 123\n",
    "empty.toml": "",
    "agent.yaml": "agent:\n  source: file:///srv/none.msi\n  sha256: 00\n  accept_license: true\n  cloud: Azure_US_Government\n",
    "nulls.yaml": "agent: ~\nservice_account: null\ndomains:\n  - domain: {domain}\n",
    # Refused by both, before any call.
    "unknown.toml": '[agnet]\nsource = "x"\n',
    "nested-unknown.yaml": "service_account:\n  domain: {domain}\n  create:\n    princpals: [A$]\n",
    "profile.yaml": "service_account:\n  domain: {domain}\n  permissions: [everything]\n  custom: {{name: g, host_account: H$}}\n",
    "both.yaml": "service_account:\n  domain: {domain}\n  create: {{}}\n  custom: {{name: g, host_account: H$}}\n",
    "quoted-bool.yaml": "writeback:\n  enabled: 'true'\n",
    "yes.yaml": "writeback:\n  enabled: yes\n",
    "cloud.toml": '[agent]\nsource = "s"\nsha256 = "h"\ncloud = "moon"\n',
    "missing.toml": '[agent]\nsource = "s"\n',
    "type.json": '{{"domains": [{{"domain": ["a"]}}]}}',
    "extension.ini": "",
}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_documents_read_as_provctl_reads_them(
    name: str, lab: Lab, lab_daemon: Daemon, tmp_path: Path
) -> None:
    """The same file through provctl and through this package, planned by the same
    daemon: both refuse it as a document, or the daemon answers both the same
    (a plan whose details name the values read, or the same status)."""
    if not provctl_binary().exists():
        pytest.skip(f"{provctl_binary()} is not built")
    path = tmp_path / name
    dcs = lab.dcs + lab.dcs
    path.write_text(PARITY[name].format(domain=lab.domain, dc1=dcs[0], dc2=dcs[1], host=HOST))
    password_file = tmp_path / "admin.pw"
    password_file.write_text(lab["LAB_PASSWORD"] + "\n")
    password_file.chmod(0o600)
    theirs = plan_verdict_of_provctl(path, lab_daemon, lab["LAB_ADMIN_UPN"], password_file)
    ours = plan_verdict_of_python(path, lab_daemon, lab.credential())
    assert ours == theirs


def test_the_example_script(lab: Lab, lab_daemon: Daemon, applied: Applied, document: Path, tmp_path: Path) -> None:
    """examples/apply_and_verify.py on the applied document: nothing to change, verify passes."""
    import sys

    password_file = tmp_path / "admin.pw"
    password_file.write_text(lab["LAB_PASSWORD"] + "\n")
    script = Path(__file__).resolve().parent.parent / "examples" / "apply_and_verify.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            lab_daemon.endpoint,
            str(lab_daemon.pki),
            str(document),
            lab["LAB_ADMIN_UPN"],
            str(password_file),
            "--category",
            "directory",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plan: 0 change(s)" in done.stdout
    assert "changed=false" in done.stdout
    assert "PASS  directory.gmsa.account" in done.stdout
    assert lab["LAB_PASSWORD"] not in done.stdout + done.stderr
    # A refused call exits 2 and names the field.
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains:\n  - domain: not a domain\n")
    done = subprocess.run(
        [sys.executable, str(script), lab_daemon.endpoint, str(lab_daemon.pki), str(bad),
         lab["LAB_ADMIN_UPN"], str(password_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "desired.domains[0].domain" in done.stderr
