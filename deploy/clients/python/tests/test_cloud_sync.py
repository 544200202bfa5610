"""A domain's cloud sync configuration (`cloud_sync` in the document) against a real
provd without the lab and without a tenant session: the document accepted and planned
(the plan names the `cloud-sync <domain>` step), refused where provctl refuses it, the
daemon's own checks naming the field, the notification email never in provd's log, and
CloudSyncService reachable through the client's stubs."""

from __future__ import annotations

from pathlib import Path

import pytest

import provd
from provd import errors
from provd.v1 import cloud_sync_pb2

from harness import Daemon, plan_verdict_of_provctl, plan_verdict_of_python, provctl_binary

DOMAIN = "lab.example.test"
EMAIL = "cloud-sync-ops-7f3a@example.test"
# PlanConfiguration needs a credential for a document naming a domain; planning a domain
# that is not added yet reads no directory, so no lab account is needed.
USER = "Administrator@lab.example.test"
PASSWORD = "not-a-lab-password"

CLOUD_SYNC_TOML = f"""
[[domains]]
domain = "{DOMAIN}"
[domains.cloud_sync]
enabled = true
password_hash_sync = true
organizational_units = ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
notification_email = "{EMAIL}"
[domains.cloud_sync.accidental_deletes]
threshold = 500
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_cloud_sync_document_is_planned_with_its_step(daemon: Daemon, tmp_path: Path) -> None:
    desired = provd.load_document(write(tmp_path, "sync.toml", CLOUD_SYNC_TOML))
    sync = desired.domains[0].cloud_sync
    assert sync.enabled and sync.password_hash_sync
    assert list(sync.organizational_units) == ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
    assert sync.accidental_deletes.threshold == 500
    with daemon.client("viewer") as client:
        changes = client.plan(desired, provd.Credential(USER, PASSWORD))
    steps = [(c.step, c.action) for c in changes]
    # No tenant session: the section is listed as a whole ("the tenant is not read").
    assert steps == [(f"domain {DOMAIN}", "add"), (f"cloud-sync {DOMAIN}", "configure")], changes
    assert "tenant is not read" in changes[1].detail
    assert provd.change_to_dict(changes[1])["step"] == f"cloud-sync {DOMAIN}"
    assert EMAIL not in daemon.log(), "the notification email is a secret's value"


def test_both_scope_lists_are_refused_by_the_daemon_naming_the_field(daemon: Daemon) -> None:
    desired = provd.desired_from_dict(
        {
            "domains": [
                {
                    "domain": DOMAIN,
                    "cloud_sync": {
                        "enabled": True,
                        "organizational_units": ["OU=A,DC=lab,DC=example,DC=test"],
                        "security_groups": ["CN=G,DC=lab,DC=example,DC=test"],
                    },
                }
            ]
        }
    )
    with daemon.client("viewer") as client, pytest.raises(errors.InvalidArgument) as caught:
        client.plan(desired, provd.Credential(USER, PASSWORD))
    assert caught.value.fields == ["desired.domains[0].cloud_sync.security_groups"], caught.value


def test_get_cloud_sync_answers_without_a_tenant_session(daemon: Daemon) -> None:
    with daemon.client("viewer") as client:
        response = client.call(client.stubs.cloud_sync.GetCloudSync, cloud_sync_pb2.GetCloudSyncRequest())
        assert not response.tenant_readable
        assert response.tenant_message
        with pytest.raises(errors.NotFound):
            client.call(
                client.stubs.cloud_sync.GetCloudSync,
                cloud_sync_pb2.GetCloudSyncRequest(domain="not-added.example.test"),
            )


PARITY = {
    # Accepted by both, planned the same.
    "sync.toml": CLOUD_SYNC_TOML,
    "sync.yaml": f"""
domains:
  - domain: {DOMAIN}
    cloud_sync:
      enabled: false
      security_groups: ["CN=Sync Users,DC=lab,DC=example,DC=test"]
      accidental_deletes: {{disabled: true}}
""",
    "sync.json": f'{{"domains": [{{"domain": "{DOMAIN}", "cloud_sync": {{"enabled": true}}}}]}}',
    # Passed on by both; the daemon refuses it, naming the field.
    "both-lists.toml": f"""
[[domains]]
domain = "{DOMAIN}"
[domains.cloud_sync]
enabled = true
organizational_units = ["OU=A,DC=lab,DC=example,DC=test"]
security_groups = ["CN=G,DC=lab,DC=example,DC=test"]
""",
    "outside.yaml": f"""
domains:
  - domain: {DOMAIN}
    cloud_sync: {{enabled: true, organizational_units: ["OU=A,DC=contoso,DC=com"]}}
""",
    # Refused by both as a document.
    "unknown.toml": f'[[domains]]\ndomain = "{DOMAIN}"\n[domains.cloud_sync]\nenabled = true\nou = ["OU=A"]\n',
    "nested-unknown.yaml": (
        f"domains:\n  - domain: {DOMAIN}\n    cloud_sync:\n      enabled: true\n"
        "      accidental_deletes: {threshhold: 5}\n"
    ),
    "no-enabled.toml": f'[[domains]]\ndomain = "{DOMAIN}"\n[domains.cloud_sync]\npassword_hash_sync = true\n',
    "negative.toml": (
        f'[[domains]]\ndomain = "{DOMAIN}"\n[domains.cloud_sync]\nenabled = true\n'
        "[domains.cloud_sync.accidental_deletes]\nthreshold = -1\n"
    ),
    "too-large.json": (
        f'{{"domains": [{{"domain": "{DOMAIN}", "cloud_sync": '
        '{"enabled": true, "accidental_deletes": {"threshold": 4294967296}}}]}'
    ),
    "quoted-threshold.yaml": (
        f"domains:\n  - domain: {DOMAIN}\n    cloud_sync:\n      enabled: true\n"
        "      accidental_deletes: {threshold: '500'}\n"
    ),
    "email-list.yaml": f"domains:\n  - domain: {DOMAIN}\n    cloud_sync: {{enabled: true, notification_email: [a]}}\n",
}

REFUSED_AS_DOCUMENTS = {
    "unknown.toml": "unknown field `ou`",
    "nested-unknown.yaml": "unknown field `threshhold`",
    "no-enabled.toml": "missing field `enabled`",
    "negative.toml": "expected u32",
    "too-large.json": "expected u32",
    "quoted-threshold.yaml": "expected u32",
    "email-list.yaml": "expected a string",
}


@pytest.mark.parametrize("name", sorted(REFUSED_AS_DOCUMENTS))
def test_cloud_sync_mistakes_are_named(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, PARITY[name])
    with pytest.raises(provd.DocumentError) as caught:
        provd.load_document(path)
    assert REFUSED_AS_DOCUMENTS[name] in str(caught.value), caught.value


@pytest.mark.parametrize("name", sorted(PARITY))
def test_cloud_sync_documents_read_as_provctl_reads_them(name: str, daemon: Daemon, tmp_path: Path) -> None:
    """As test_lab.py's parity test, for cloud_sync tables: both refuse the file as a
    document, or the same daemon answers both the same."""
    if not provctl_binary().exists():
        pytest.skip(f"{provctl_binary()} is not built")
    path = write(tmp_path, name, PARITY[name])
    password_file = write(tmp_path, "admin.pw", PASSWORD + "\n")
    theirs = plan_verdict_of_provctl(path, daemon, USER, password_file)
    ours = plan_verdict_of_python(path, daemon, provd.Credential(USER, PASSWORD))
    assert ours == theirs
    assert (theirs[0] == "document") == (name in REFUSED_AS_DOCUMENTS), theirs
