"""The desired-state document `provctl apply` / `plan` read, for Python.

The same format as crates/provctl/src/document.rs, rule for rule: TOML, YAML or
JSON chosen by the file extension (.toml, .yaml/.yml, .json); unknown keys
are an error; enum values take short names, case-insensitive (`basic_read`,
`BASIC_READ` or `PERMISSION_PROFILE_BASIC_READ`; `-` and spaces count as
`_`); clouds are "public" / "usgov" (also "azurepublic", "azure_public",
"azureusgovernment", "azure_us_government"). Example:
deploy/examples/agent-host.toml.

    desired = load_document("agent-host.toml")      # -> provd.v1.DesiredState
    desired = desired_from_dict({"domains": [...]})  # the same shape, as data

Errors are `DocumentError` (a ValueError) naming the file and the key path,
e.g. `agent-host.toml: service_account.permissions[0]: "everything" is not a
permission profile (e.g. basic_read, password_write_back, all)`.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from provd.v1 import common_pb2, configuration_pb2, host_pb2, service_account_pb2


class DocumentError(ValueError):
    """The document cannot be read or does not say a valid DesiredState."""


# Keys per table, as the Rust structs declare them (deny_unknown_fields).
# kind: "str", "bool", "u32", "[str]", or a table name; `required` as serde: a field
# without #[serde(default)] and not an Option must be present.
_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "document": {
        "host": ("host?", False),
        "agent": ("agent?", False),
        "domains": ("[domain]", False),
        "service_account": ("service_account?", False),
        "writeback": ("writeback?", False),
    },
    # [host]: fix names as `provctl host plan` shows them (or the proto's).
    "host": {
        "remediate": ("[str]", False),
    },
    "agent": {
        # "present" (the default) or "absent" (decommission the agent).
        "state": ("str?", False),
        "keep_gmsa": ("bool", False),
        "source": ("str", False),
        "sha256": ("str", False),
        "accept_license": ("bool", False),
        "cloud": ("str?", False),
        "skip_registration": ("bool", False),
        "settings": ("agent_settings?", False),
    },
    # [agent.settings]: each key left out leaves that setting as it is; the
    # ranges are the daemon's to check (it names the field).
    "agent_settings": {
        "proxy": ("proxy?", False),
        "enforce_fips_policy": ("bool?", False),
        "ldap_connection_timeout_ms": ("u32?", False),
        "referral_chasing_options": ("u32?", False),
        "user_password_length": ("u32?", False),
    },
    "proxy": {
        "address": ("str", False),
        "bypass_on_local": ("bool", False),
        "bypass_list": ("[str]", False),
        "none": ("bool", False),
    },
    "domain": {
        "domain": ("str", True),
        "preferred_domain_controllers": ("[str]", False),
        "cloud_sync": ("cloud_sync?", False),
    },
    # Whether the values make sense (one scope list at most, DNs inside the
    # domain, the email) is the daemon's to say: it names the field.
    "cloud_sync": {
        "enabled": ("bool", True),
        "password_hash_sync": ("bool", False),
        "organizational_units": ("[str]", False),
        "security_groups": ("[str]", False),
        "accidental_deletes": ("accidental_deletes?", False),
        "notification_email": ("str", False),
    },
    "accidental_deletes": {
        "disabled": ("bool", False),
        "threshold": ("u32", False),
    },
    "service_account": {
        "domain": ("str", True),
        "create": ("create?", False),
        "custom": ("custom?", False),
        "permissions": ("[str]", False),
    },
    "create": {
        "name": ("str", False),
        "principals": ("[str]", False),
        "container_dn": ("str", False),
        "encryption_types": ("[str]", False),
    },
    "custom": {
        "name": ("str", True),
        "host_account": ("str", True),
    },
    "writeback": {
        "enabled": ("bool", True),
    },
}

_DEFAULTS = {"str": "", "bool": False, "u32": 0, "[str]": []}


class _Scalar(str):
    """A YAML scalar's text, remembering whether it was written plain (unquoted)."""

    plain: bool = True


_NULLS = {"~", "null", "Null", "NULL", ""}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


class _YamlLoader(yaml.BaseLoader):
    """YAML as serde_norway reads it into typed fields: every scalar stays text
    (so `sha256: 00` is "00", not 0) and booleans / nulls are decided by the
    field's type (`true` / `false` only, YAML 1.2). Duplicate keys are an
    error, as serde's are."""

    def construct_scalar(self, node: yaml.Node) -> _Scalar:  # type: ignore[override]
        value = _Scalar(super().construct_scalar(node))  # type: ignore[arg-type]
        value.plain = node.style is None
        return value

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate field `{key}`", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"duplicate field `{key}`")
        out[key] = value
    return out


def _describe(value: Any) -> str:
    """serde's words for an unexpected value."""
    if isinstance(value, _Scalar):
        return f'string "{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "a sequence"
    if isinstance(value, Mapping):
        return "a map"
    return type(value).__name__


class _Reader:
    """Checks a parsed document against _SCHEMA, naming the key path of any mistake."""

    def __init__(self, lenient: bool) -> None:
        # lenient: for data that went through a templating engine (Ansible):
        # numbers are accepted as text and "true"/"false"/"yes"/"no" as booleans.
        self.lenient = lenient

    def fail(self, path: str, text: str) -> DocumentError:
        return DocumentError(f"{path}: {text}" if path else text)

    def is_null(self, value: Any) -> bool:
        if value is None:
            return True
        return isinstance(value, _Scalar) and value.plain and value in _NULLS

    def string(self, value: Any, path: str) -> str:
        if isinstance(value, _Scalar):
            return str(value)
        if isinstance(value, str):
            return value
        if self.lenient and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise self.fail(path, f"invalid type: {_describe(value)}, expected a string")

    def boolean(self, value: Any, path: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, _Scalar) and value.plain:
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
        if self.lenient and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"true", "yes", "on", "1"}:
                return True
            if lowered in {"false", "no", "off", "0"}:
                return False
        raise self.fail(path, f"invalid type: {_describe(value)}, expected a boolean")

    def u32(self, value: Any, path: str) -> int:
        """An unsigned 32-bit integer: a TOML/JSON integer or a plain YAML one
        (a quoted "500" is text, as for serde)."""
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and (self.lenient or (isinstance(value, _Scalar) and value.plain)):
            text = value.strip()
            digits = text.removeprefix("+").removeprefix("-")
            if digits.isascii() and digits.isdigit():
                number = int(text)
        if number is None:
            raise self.fail(path, f"invalid type: {_describe(value)}, expected u32")
        if not 0 <= number <= 0xFFFF_FFFF:
            raise self.fail(path, f"invalid value: integer `{number}`, expected u32")
        return number

    def strings(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(path, f"invalid type: {_describe(value)}, expected a sequence")
        return [self.string(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def table(self, value: Any, kind: str, path: str) -> dict[str, Any]:
        schema = _SCHEMA[kind]
        if not isinstance(value, Mapping):
            raise self.fail(path, f"invalid type: {_describe(value)}, expected struct {kind}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                expected = ", ".join(f"`{k}`" for k in schema)
                raise self.fail(path, f"unknown field `{key}`, expected one of {expected}")
            field_kind, _ = schema[key]
            out[key] = self.value(item, field_kind, where)
        for key, (field_kind, required) in schema.items():
            if key in out:
                continue
            if required:
                raise self.fail(path, f"missing field `{key}`")
            out[key] = None if field_kind.endswith("?") else _copy(_DEFAULTS.get(field_kind, []))
        return out

    def value(self, item: Any, kind: str, path: str) -> Any:
        if kind.endswith("?"):
            if self.is_null(item):
                return None
            kind = kind[:-1]
        if kind == "str":
            return self.string(item, path)
        if kind == "bool":
            return self.boolean(item, path)
        if kind == "u32":
            return self.u32(item, path)
        if kind == "[str]":
            return self.strings(item, path)
        if kind.startswith("["):
            inner = kind[1:-1]
            if not isinstance(item, list):
                raise self.fail(path, f"invalid type: {_describe(item)}, expected a sequence")
            return [self.table(v, inner, f"{path}[{i}]") for i, v in enumerate(item)]
        return self.table(item, kind, path)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def enum_value(text: str, prefix: str, enum_type: Any, what: str) -> int:
    """`basic_read`, `BASIC_READ` or `PERMISSION_PROFILE_BASIC_READ` -> the number."""
    upper = _ascii_upper(text.strip()).replace("-", "_").replace(" ", "_")
    full = upper if upper.startswith(prefix) else f"{prefix}{upper}"
    value = enum_type.DESCRIPTOR.values_by_name.get(full)
    if value is None:
        raise DocumentError(f"{json.dumps(text)} is not a {what}")
    return value.number


def cloud(text: str) -> int:
    """"public" / "usgov" (and the long names) -> CloudEnvironment."""
    lowered = _ascii_lower(text)
    if lowered in ("public", "azurepublic", "azure_public"):
        return common_pb2.CLOUD_ENVIRONMENT_AZURE_PUBLIC
    if lowered in ("usgov", "azureusgovernment", "azure_us_government"):
        return common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT
    raise DocumentError(f'cloud {json.dumps(text)} is not "public" or "usgov"')


def _convert(doc: dict[str, Any]) -> configuration_pb2.DesiredState:
    desired = configuration_pb2.DesiredState()
    host = doc["host"]
    if host is not None:
        desired.host.SetInParent()
        for i, f in enumerate(host["remediate"]):
            try:
                desired.host.remediate.append(
                    enum_value(
                        f,
                        "HOST_FIX_",
                        host_pb2.HostFix,
                        "host fix (tls12, vault-service-manual, service-account-managed, "
                        "execution-policy-remote-signed)",
                    )
                )
            except DocumentError as err:
                raise DocumentError(f"host.remediate[{i}]: {err}") from None
    agent = doc["agent"]
    if agent is not None:
        spec = desired.agent
        spec.SetInParent()
        state = agent["state"]
        if state is not None and state not in ("present", "absent"):
            raise DocumentError(f'agent.state: {json.dumps(state)} is neither "present" nor "absent"')
        spec.absent = state == "absent"
        spec.keep_gmsa = agent["keep_gmsa"]
        spec.source = agent["source"]
        spec.sha256 = agent["sha256"]
        spec.accept_license = agent["accept_license"]
        if agent["cloud"] is not None:
            try:
                spec.cloud = cloud(agent["cloud"])
            except DocumentError as e:
                raise DocumentError(f"agent.cloud: {e}") from None
        spec.skip_registration = agent["skip_registration"]
        settings = agent["settings"]
        if settings is not None:
            spec.settings.SetInParent()
            proxy = settings["proxy"]
            if proxy is not None:
                spec.settings.proxy.SetInParent()
                spec.settings.proxy.address = proxy["address"]
                spec.settings.proxy.bypass_on_local = proxy["bypass_on_local"]
                spec.settings.proxy.bypass_list.extend(proxy["bypass_list"])
                spec.settings.proxy.none = proxy["none"]
            for key in (
                "enforce_fips_policy",
                "ldap_connection_timeout_ms",
                "referral_chasing_options",
                "user_password_length",
            ):
                if settings[key] is not None:
                    setattr(spec.settings, key, settings[key])
    for domain in doc["domains"]:
        spec = desired.domains.add(
            domain=domain["domain"],
            preferred_domain_controllers=domain["preferred_domain_controllers"],
        )
        sync = domain["cloud_sync"]
        if sync is not None:
            spec.cloud_sync.SetInParent()
            spec.cloud_sync.enabled = sync["enabled"]
            spec.cloud_sync.password_hash_sync = sync["password_hash_sync"]
            spec.cloud_sync.organizational_units.extend(sync["organizational_units"])
            spec.cloud_sync.security_groups.extend(sync["security_groups"])
            deletes = sync["accidental_deletes"]
            if deletes is not None:
                spec.cloud_sync.accidental_deletes.SetInParent()
                spec.cloud_sync.accidental_deletes.disabled = deletes["disabled"]
                spec.cloud_sync.accidental_deletes.threshold = deletes["threshold"]
            spec.cloud_sync.notification_email = sync["notification_email"]
    account = doc["service_account"]
    if account is not None:
        create, custom = account["create"], account["custom"]
        if create is not None and custom is not None:
            raise DocumentError("service_account: name either `create` or `custom`, not both")
        if create is None and custom is None:
            raise DocumentError("service_account: name `create` or `custom`")
        spec = desired.service_account
        spec.domain = account["domain"]
        if create is not None:
            encryption = []
            for i, e in enumerate(create["encryption_types"]):
                try:
                    encryption.append(
                        enum_value(
                            e,
                            "ENCRYPTION_TYPE_",
                            service_account_pb2.EncryptionType,
                            "encryption type (rc4, aes128, aes256)",
                        )
                    )
                except DocumentError as err:
                    raise DocumentError(
                        f"service_account.create.encryption_types[{i}]: {err}"
                    ) from None
            spec.create.name = create["name"]
            spec.create.principals_allowed_to_retrieve_password.extend(create["principals"])
            spec.create.container_dn = create["container_dn"]
            spec.create.encryption_types.extend(encryption)
            spec.create.SetInParent()
        else:
            spec.custom.name = custom["name"]
            spec.custom.host_account = custom["host_account"]
            spec.custom.SetInParent()
        for i, p in enumerate(account["permissions"]):
            try:
                spec.permissions.append(
                    enum_value(
                        p,
                        "PERMISSION_PROFILE_",
                        service_account_pb2.PermissionProfile,
                        "permission profile (e.g. basic_read, password_write_back, all)",
                    )
                )
            except DocumentError as err:
                raise DocumentError(f"service_account.permissions[{i}]: {err}") from None
    writeback = doc["writeback"]
    if writeback is not None:
        desired.writeback.enabled = writeback["enabled"]
        desired.writeback.SetInParent()
    return desired


def desired_from_dict(
    data: Mapping[str, Any], *, lenient: bool = False
) -> configuration_pb2.DesiredState:
    """A document already parsed into data (dicts, lists, str, bool) -> DesiredState.

    `lenient` also takes numbers where text is expected and "yes"/"no"/"true"
    strings for booleans, as templated data (Ansible) often carries them."""
    return _convert(_Reader(lenient).table(data, "document", ""))


def parse_document(text: str, fmt: str) -> configuration_pb2.DesiredState:
    """Document text in format "toml", "yaml" or "json" -> DesiredState."""
    fmt = fmt.lower()
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        elif fmt in ("yaml", "yml"):
            data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - BaseLoader: text only
            if data is None or (isinstance(data, _Scalar) and data.plain and data in _NULLS):
                data = {}  # an empty YAML document is an empty struct for serde too
        elif fmt == "json":
            data = json.loads(text, object_pairs_hook=_json_pairs)
        else:
            raise DocumentError(f"unknown document format {fmt!r} (toml, yaml or json)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise DocumentError(str(e)) from None
    return desired_from_dict(data)


def load_document(path: str | os.PathLike[str]) -> configuration_pb2.DesiredState:
    """Reads and converts the document at `path` (format by extension), as provctl does."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DocumentError(f"cannot read {path}: {e.strerror or e}") from None
    extension = _ascii_lower(path.suffix.removeprefix("."))
    if extension not in ("toml", "yaml", "yml", "json"):
        raise DocumentError(
            f"{path}: name the document .toml, .yaml or .json so its format is known"
        )
    try:
        return parse_document(text, extension)
    except DocumentError as e:
        raise DocumentError(f"{path}: {e}") from None


def _settings_to_dict(s: configuration_pb2.AgentSettingsSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.HasField("proxy"):
        out["proxy"] = {
            "address": s.proxy.address,
            "bypass_on_local": s.proxy.bypass_on_local,
            "bypass_list": list(s.proxy.bypass_list),
            "none": s.proxy.none,
        }
    for key in (
        "enforce_fips_policy",
        "ldap_connection_timeout_ms",
        "referral_chasing_options",
        "user_password_length",
    ):
        if s.HasField(key):
            out[key] = getattr(s, key)
    return out


def desired_to_dict(desired: configuration_pb2.DesiredState) -> dict[str, Any]:
    """DesiredState -> the document's shape with short enum names (for display).

    A domain's cloud_sync keeps its notification_email, as the document says
    it: print the result only where the document itself could be shown."""
    out: dict[str, Any] = {}
    if desired.HasField("host"):
        out["host"] = {
            "remediate": [
                _short(host_pb2.HostFix.Name, f, "HOST_FIX_") for f in desired.host.remediate
            ]
        }
    if desired.HasField("agent"):
        a = desired.agent
        out["agent"] = {
            "state": "absent" if a.absent else "present",
            "keep_gmsa": a.keep_gmsa,
            "source": a.source,
            "sha256": a.sha256,
            "accept_license": a.accept_license,
            "skip_registration": a.skip_registration,
        }
        if a.HasField("settings"):
            out["agent"]["settings"] = _settings_to_dict(a.settings)
        if a.cloud == common_pb2.CLOUD_ENVIRONMENT_AZURE_PUBLIC:
            out["agent"]["cloud"] = "public"
        elif a.cloud == common_pb2.CLOUD_ENVIRONMENT_AZURE_US_GOVERNMENT:
            out["agent"]["cloud"] = "usgov"
    if desired.domains:
        out["domains"] = [_domain_to_dict(d) for d in desired.domains]
    if desired.HasField("service_account"):
        s = desired.service_account
        sa: dict[str, Any] = {
            "domain": s.domain,
            "permissions": [
                _short(service_account_pb2.PermissionProfile.Name, p, "PERMISSION_PROFILE_")
                for p in s.permissions
            ],
        }
        if s.WhichOneof("account") == "create":
            sa["create"] = {
                "name": s.create.name,
                "principals": list(s.create.principals_allowed_to_retrieve_password),
                "container_dn": s.create.container_dn,
                "encryption_types": [
                    _short(service_account_pb2.EncryptionType.Name, e, "ENCRYPTION_TYPE_")
                    for e in s.create.encryption_types
                ],
            }
        elif s.WhichOneof("account") == "custom":
            sa["custom"] = {"name": s.custom.name, "host_account": s.custom.host_account}
        out["service_account"] = sa
    if desired.HasField("writeback"):
        out["writeback"] = {"enabled": desired.writeback.enabled}
    return out


def _domain_to_dict(d: configuration_pb2.DomainSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "domain": d.domain,
        "preferred_domain_controllers": list(d.preferred_domain_controllers),
    }
    if d.HasField("cloud_sync"):
        c = d.cloud_sync
        sync: dict[str, Any] = {
            "enabled": c.enabled,
            "password_hash_sync": c.password_hash_sync,
            "organizational_units": list(c.organizational_units),
            "security_groups": list(c.security_groups),
            # The document's own value (a secret's, once in the tenant).
            "notification_email": c.notification_email,
        }
        if c.HasField("accidental_deletes"):
            sync["accidental_deletes"] = {
                "disabled": c.accidental_deletes.disabled,
                "threshold": c.accidental_deletes.threshold,
            }
        out["cloud_sync"] = sync
    return out


def _short(name: Callable[[int], str], value: int, prefix: str) -> str:
    try:
        return _ascii_lower(name(value).removeprefix(prefix))
    except ValueError:
        return str(value)
