"""The desired-state document, as provctl reads it (crates/provctl/src/document.rs).
No daemon needed. test_lab.py compares this reader with provctl itself."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import provd
from provd.document import DocumentError, desired_from_dict, load_document, parse_document
from provd.v1 import common_pb2, configuration_pb2, host_pb2, service_account_pb2

from harness import REPO

EXAMPLES = REPO / "deploy" / "examples"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_examples_say_the_same_in_toml_and_yaml() -> None:
    a = load_document(EXAMPLES / "agent-host.toml")
    b = load_document(EXAMPLES / "agent-host.yaml")
    assert a == b
    assert a.agent.accept_license and a.agent.sha256 == "0" * 64
    assert [d.domain for d in a.domains] == ["contoso.com"]
    assert list(a.domains[0].preferred_domain_controllers) == ["dc1.contoso.com", "dc2.contoso.com"]
    assert a.service_account.WhichOneof("account") == "create"
    assert list(a.service_account.create.principals_allowed_to_retrieve_password) == ["AGENT1$"]
    assert list(a.service_account.permissions) == [service_account_pb2.PERMISSION_PROFILE_BASIC_READ]
    assert a.writeback.enabled
    assert len(a.host.remediate) == 4
    sync = a.domains[0].cloud_sync
    assert a.domains[0].HasField("cloud_sync")
    assert sync.enabled and sync.password_hash_sync
    assert list(sync.organizational_units) == ["OU=SyncPilot,DC=contoso,DC=com"]
    assert not sync.accidental_deletes.disabled and sync.accidental_deletes.threshold == 500
    assert a == desired_from_dict(provd.desired_to_dict(a))


TOML = """
[agent]
source = "file:///srv/agent.msi"
sha256 = "00"
accept_license = true
cloud = "usgov"

[[domains]]
domain = "lab.example.test"
preferred_domain_controllers = ["dc1.lab.example.test"]

[service_account]
domain = "lab.example.test"
permissions = ["basic_read", "PASSWORD_WRITE_BACK"]
[service_account.create]
name = "provAgentgMSA"
principals = ["AGENT1$"]
encryption_types = ["aes256"]

[writeback]
enabled = true
"""

YAML = """
agent:
  source: file:///srv/agent.msi
  sha256: 00
  accept_license: true
  cloud: usgov
domains:
  - domain: lab.example.test
    preferred_domain_controllers: [dc1.lab.example.test]
service_account:
  domain: lab.example.test
  permissions: [basic_read, PASSWORD_WRITE_BACK]
  create:
    name: provAgentgMSA
    principals: [AGENT1$]
    encryption_types: [aes256]
writeback:
  enabled: true
"""

JSON = """{
  "agent": {"source": "file:///srv/agent.msi", "sha256": "00", "accept_license": true, "cloud": "usgov"},
  "domains": [{"domain": "lab.example.test", "preferred_domain_controllers": ["dc1.lab.example.test"]}],
  "service_account": {
    "domain": "lab.example.test",
    "permissions": ["basic_read", "PASSWORD_WRITE_BACK"],
    "create": {"name": "provAgentgMSA", "principals": ["AGENT1$"], "encryption_types": ["aes256"]}
  },
  "writeback": {"enabled": true}
}"""


def test_toml_yaml_and_json_say_the_same(tmp_path: Path) -> None:
    """document.rs's own test, plus JSON; YAML's plain `00` stays the text "00"."""
    a = load_document(write(tmp_path, "a.toml", TOML))
    b = load_document(write(tmp_path, "a.yaml", YAML))
    c = load_document(write(tmp_path, "a.JSON", JSON))
    d = load_document(write(tmp_path, "a.yml", YAML))
    assert a == b == c == d
    assert a.agent.sha256 == "00"
    assert a.agent.cloud == common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT
    assert list(a.service_account.permissions) == [
        service_account_pb2.PERMISSION_PROFILE_BASIC_READ,
        service_account_pb2.PERMISSION_PROFILE_PASSWORD_WRITE_BACK,
    ]
    assert list(a.service_account.create.encryption_types) == [service_account_pb2.ENCRYPTION_TYPE_AES256]
    assert a == desired_from_dict(provd.desired_to_dict(a))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("basic_read", service_account_pb2.PERMISSION_PROFILE_BASIC_READ),
        ("BASIC_READ", service_account_pb2.PERMISSION_PROFILE_BASIC_READ),
        ("PERMISSION_PROFILE_BASIC_READ", service_account_pb2.PERMISSION_PROFILE_BASIC_READ),
        ("password-write-back", service_account_pb2.PERMISSION_PROFILE_PASSWORD_WRITE_BACK),
        ("  Password Hash Sync ", service_account_pb2.PERMISSION_PROFILE_PASSWORD_HASH_SYNC),
        ("all", service_account_pb2.PERMISSION_PROFILE_ALL),
    ],
)
def test_permission_names_are_short_and_case_insensitive(text: str, expected: int) -> None:
    desired = desired_from_dict(
        {"service_account": {"domain": "d.test", "permissions": [text], "custom": {"name": "g", "host_account": "H$"}}}
    )
    assert list(desired.service_account.permissions) == [expected]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("public", common_pb2.CLOUD_ENVIRONMENT_AZURE_PUBLIC),
        ("AzurePublic", common_pb2.CLOUD_ENVIRONMENT_AZURE_PUBLIC),
        ("azure_public", common_pb2.CLOUD_ENVIRONMENT_AZURE_PUBLIC),
        ("USGOV", common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT),
        ("AzureUSGovernment", common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT),
        ("azure_us_government", common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT),
    ],
)
def test_clouds(text: str, expected: int) -> None:
    desired = desired_from_dict({"agent": {"source": "s", "sha256": "h", "cloud": text}})
    assert desired.agent.cloud == expected


def test_a_cloud_sync_table_reads_the_same_in_toml_yaml_and_json(tmp_path: Path) -> None:
    """document.rs's own test of [domains.cloud_sync]."""
    toml_text = """
[[domains]]
domain = "lab.example.test"
[domains.cloud_sync]
enabled = true
password_hash_sync = true
organizational_units = ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
notification_email = "ops@example.test"
[domains.cloud_sync.accidental_deletes]
threshold = 250

[[domains]]
domain = "other.example.test"
"""
    yaml_text = """
domains:
  - domain: lab.example.test
    cloud_sync:
      enabled: true
      password_hash_sync: true
      organizational_units: ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
      notification_email: ops@example.test
      accidental_deletes:
        threshold: 250
  - domain: other.example.test
"""
    json_text = """{"domains": [
  {"domain": "lab.example.test", "cloud_sync": {"enabled": true, "password_hash_sync": true,
   "organizational_units": ["OU=SyncPilot,DC=lab,DC=example,DC=test"],
   "notification_email": "ops@example.test", "accidental_deletes": {"threshold": 250}}},
  {"domain": "other.example.test"}]}"""
    a = load_document(write(tmp_path, "s.toml", toml_text))
    assert a == load_document(write(tmp_path, "s.yaml", yaml_text))
    assert a == load_document(write(tmp_path, "s.json", json_text))
    expected = configuration_pb2.DomainSpec(domain="lab.example.test")
    expected.cloud_sync.enabled = True
    expected.cloud_sync.password_hash_sync = True
    expected.cloud_sync.organizational_units.append("OU=SyncPilot,DC=lab,DC=example,DC=test")
    expected.cloud_sync.accidental_deletes.threshold = 250
    expected.cloud_sync.notification_email = "ops@example.test"
    assert a.domains[0] == expected
    # A domain without the table sends none.
    assert not a.domains[1].HasField("cloud_sync")
    assert a == desired_from_dict(provd.desired_to_dict(a))
    # Only `enabled` is required; `enabled = false` is a table that says "paused".
    minimal = parse_document("[[domains]]\ndomain = 'd.test'\n[domains.cloud_sync]\nenabled = false\n", "toml")
    assert minimal.domains[0].HasField("cloud_sync")
    assert not minimal.domains[0].cloud_sync.HasField("accidental_deletes")
    # Both scope lists pass here: the daemon refuses them, naming the field.
    both = desired_from_dict(
        {"domains": [{"domain": "d.test", "cloud_sync": {"enabled": True, "organizational_units": ["OU=A"],
                                                         "security_groups": ["CN=G"]}}]}
    )
    assert list(both.domains[0].cloud_sync.security_groups) == ["CN=G"]


def test_lenient_dicts_take_a_templated_threshold() -> None:
    data = {"domains": [{"domain": "d.test", "cloud_sync": {"enabled": "yes",
                                                             "accidental_deletes": {"threshold": "300"}}}]}
    with pytest.raises(DocumentError, match="expected"):
        desired_from_dict(data)
    sync = desired_from_dict(data, lenient=True).domains[0].cloud_sync
    assert sync.enabled and sync.accidental_deletes.threshold == 300


def test_sections_left_out_stay_unset() -> None:
    desired = parse_document("[[domains]]\ndomain = 'a.test'\n", "toml")
    assert not desired.HasField("agent")
    assert not desired.HasField("service_account")
    assert not desired.HasField("writeback")
    assert parse_document("", "yaml") == configuration_pb2.DesiredState()
    # `writeback.enabled = false` is a section that says "off", not an absent one.
    assert parse_document("writeback:\n  enabled: false\n", "yaml").HasField("writeback")


@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("b.toml", '[agnet]\nsource = "x"\n', "unknown field `agnet`"),
        (
            "c.toml",
            '[service_account]\ndomain = "d.test"\npermissions = ["everything"]\n'
            '[service_account.custom]\nname = "g"\nhost_account = "H$"\n',
            '"everything" is not a permission profile',
        ),
        ("d.ini", "", "name the document .toml, .yaml or .json"),
        (
            "e.yaml",
            "service_account:\n  domain: d.test\n  create: {principals: [A$]}\n  custom: {name: g, host_account: H$}\n",
            "name either `create` or `custom`, not both",
        ),
        ("f.yaml", "service_account:\n  domain: d.test\n", "name `create` or `custom`"),
        ("g.toml", '[agent]\nsource = "s"\nsha256 = "h"\ncloud = "china"\n', 'cloud "china" is not "public" or "usgov"'),
        ("h.toml", '[agent]\nstate = "gone"\n', 'agent.state: "gone" is neither'),
        ("i.toml", '[writeback]\nenabled = "yes"\n', "writeback.enabled: invalid type"),
        ("j.yaml", "writeback:\n  enabled: 'true'\n", "expected a boolean"),
        ("k.yaml", "writeback:\n  enabled: yes\n", "expected a boolean"),
        ("l.json", '{"domains": [{"domain": 5}]}', "domains[0].domain: invalid type: integer `5`, expected a string"),
        ("m.yaml", "domains:\n  - domain: a.test\n    domain: b.test\n", "duplicate field `domain`"),
        (
            "n.yaml",
            "service_account:\n  domain: d.test\n  create:\n    encryption_types: [des]\n",
            '"des" is not a encryption type',
        ),
        ("o.toml", "domains = 'x'\n", "domains: invalid type"),
        ("p.toml", "[service_account.create]\nprincipals = [\"A$\"]\nprincipal = 1\n", "unknown field `principal`"),
        (
            "q.toml",
            '[[domains]]\ndomain = "d.test"\n[domains.cloud_sync]\nenabled = true\nscope = "all"\n',
            "domains[0].cloud_sync: unknown field `scope`",
        ),
        (
            "r.yaml",
            "domains:\n  - domain: d.test\n    cloud_sync:\n      enabled: true\n"
            "      accidental_deletes: {disabled: true, limit: 5}\n",
            "domains[0].cloud_sync.accidental_deletes: unknown field `limit`",
        ),
        (
            "s.yaml",
            "domains:\n  - domain: d.test\n    cloud_sync:\n      enabled: true\n"
            "      accidental_deletes: {threshold: -1}\n",
            "domains[0].cloud_sync.accidental_deletes.threshold: invalid value: integer `-1`, expected u32",
        ),
        ("t.toml", '[[domains]]\ndomain = "d.test"\n[domains.cloud_sync]\n', "domains[0].cloud_sync: missing field `enabled`"),
        (
            "u.toml",
            '[agent]\nsource = "x"\nsha256 = "00"\n[agent.settings]\nfips = false\n',
            "agent.settings: unknown field `fips`",
        ),
        (
            "v.yaml",
            'agent:\n  source: x\n  sha256: "00"\n  settings:\n    proxy:\n      adress: http://p:1\n',
            "agent.settings.proxy: unknown field `adress`",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, name: str, text: str, needle: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DocumentError) as caught:
        load_document(path)
    message = str(caught.value)
    assert needle in message, message
    assert str(path) in message, "the file is named"


def test_agent_settings_read_the_same_in_toml_and_yaml(tmp_path: Path) -> None:
    toml_path = write(
        tmp_path,
        "s.toml",
        '[agent]\nsource = "file:///a.msi"\nsha256 = "00"\n'
        "[agent.settings]\nenforce_fips_policy = false\nuser_password_length = 200\n"
        "[agent.settings.proxy]\naddress = \"http://p:8080\"\nbypass_list = ['c\\.com$']\n",
    )
    yaml_path = write(
        tmp_path,
        "s.yaml",
        'agent:\n  source: file:///a.msi\n  sha256: "00"\n  settings:\n'
        "    enforce_fips_policy: false\n    user_password_length: 200\n"
        "    proxy:\n      address: http://p:8080\n      bypass_list: ['c\\.com$']\n",
    )
    a = load_document(toml_path)
    assert a == load_document(yaml_path)
    s = a.agent.settings
    assert s.HasField("enforce_fips_policy") and not s.enforce_fips_policy
    assert s.user_password_length == 200
    assert not s.HasField("ldap_connection_timeout_ms"), "left out: left alone"
    assert s.proxy.address == "http://p:8080" and list(s.proxy.bypass_list) == [r"c\.com$"]
    none = write(tmp_path, "n.toml", '[agent]\nsource = "x"\nsha256 = "00"\n[agent.settings.proxy]\nnone = true\n')
    assert load_document(none).agent.settings.proxy.none
    assert desired_from_dict(provd.document.desired_to_dict(a)) == a


def test_host_fixes_take_short_or_proto_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.toml",
        '[host]\nremediate = ["tls12", "HOST_FIX_VAULT_SERVICE_MANUAL", "Execution-Policy-Remote-Signed"]\n',
    )
    a = load_document(path)
    assert list(a.host.remediate) == [
        host_pb2.HOST_FIX_TLS12,
        host_pb2.HOST_FIX_VAULT_SERVICE_MANUAL,
        host_pb2.HOST_FIX_EXECUTION_POLICY_REMOTE_SIGNED,
    ]
    assert desired_from_dict(provd.document.desired_to_dict(a)) == a
    bad = write(tmp_path, "b.yaml", "host:\n  remediate: [tls13]\n")
    with pytest.raises(DocumentError, match=r'host.remediate\[0\]: "tls13" is not a host fix'):
        load_document(bad)


def test_a_missing_file_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot read"):
        load_document(tmp_path / "absent.toml")


def test_lenient_dicts_take_templated_values() -> None:
    """Ansible hands over templated data: numbers for text, "True" for booleans."""
    data = {"writeback": {"enabled": "True"}, "domains": [{"domain": "a.test"}]}
    with pytest.raises(DocumentError):
        desired_from_dict(data)
    assert desired_from_dict(data, lenient=True).writeback.enabled


def test_a_credential_never_shows_its_password(tmp_path: Path) -> None:
    secret = "S3cret!pw"
    path = write(tmp_path, "pw", f"{secret}\r\nsecond line ignored\n")
    credential = provd.Credential.from_file("LAB\\admin", path)
    assert credential.to_proto().password == secret, "first line, without CR LF"
    for text in (repr(credential), str(credential), f"{credential}", repr([credential])):
        assert secret not in text
        assert "redacted" in text
    with pytest.raises(TypeError):
        pickle.dumps(credential)
    with pytest.raises(ValueError):
        provd.Credential("user", "")


def test_an_absent_agent_needs_no_package(tmp_path: Path) -> None:
    a = load_document(write(tmp_path, "a.toml", '[agent]\nstate = "absent"\nkeep_gmsa = true\n'))
    assert a.agent.absent and a.agent.keep_gmsa and a.agent.source == ""
    assert desired_from_dict(provd.document.desired_to_dict(a)) == a
    with pytest.raises(DocumentError, match=r'agent.state: "gone" is neither "present" nor "absent"'):
        load_document(write(tmp_path, "b.toml", '[agent]\nstate = "gone"\n'))
