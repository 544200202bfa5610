"""Fleet-wide reads, as `provctl fleet verify` and `provctl fleet status` make them.

    from provd import fleet

    hosts = fleet.load_inventory("hosts.toml")        # provctl's inventory format
    rows = fleet.status(hosts, concurrency=64)         # GetHostStatus on every host
    for row in rows:
        print(row.host, row.status, row.reasons)
    if any(row.failed for row in rows):
        ...

Every host is read concurrently on one asyncio event loop (grpc.aio: no thread per
host), at most `concurrency` at once, over one mutual-TLS channel per host. Each host
gets a result, never an exception: a host that cannot be reached is a result with
status UNREACHABLE. `failed` is provctl's judgement, reason codes included:

status (`judge`), in this order:
  UNREACHABLE            no connection within `timeout` (TLS refused, nothing listening)
  ERROR                  the call failed (e.g. PERMISSION_DENIED; UNAVAILABLE when the
                         host backend did not answer)
  HOST_UNAVAILABLE       provd cannot read the agent (no Windows host backend)
  AGENT_NOT_INSTALLED    no agent package
  SERVICE_NOT_RUNNING    either agent service is not RUNNING
  LAST_OPERATION_FAILED  the newest operation ended FAILED, CANCELLED or INTERRUPTED
  DRIFT                  the drift watch has a present finding
  Not failures: the drift watch OFF or PENDING (unknown), no registration or tenant
  session, an operation running.

verify: a host fails when its report is FAIL or SKIP, or it is unreachable or the call
failed (status UNREACHABLE); PASS and WARN pass.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from provd.client import _credential, _read, normalize_endpoint, CredentialLike
from provd.v1 import (
    agent_pb2,
    operations_pb2,
    status_pb2,
    status_pb2_grpc,
    verify_pb2,
    verify_pb2_grpc,
)

UNREACHABLE = "UNREACHABLE"
ERROR = "ERROR"
HOST_UNAVAILABLE = "HOST_UNAVAILABLE"
AGENT_NOT_INSTALLED = "AGENT_NOT_INSTALLED"
SERVICE_NOT_RUNNING = "SERVICE_NOT_RUNNING"
LAST_OPERATION_FAILED = "LAST_OPERATION_FAILED"
DRIFT = "DRIFT"

DEFAULT_CONCURRENCY = 64


@dataclass(frozen=True)
class Host:
    """One daemon to read: a name, its endpoint and this client's mTLS files."""

    name: str
    endpoint: str
    ca: str | os.PathLike[str]
    cert: str | os.PathLike[str]
    key: str | os.PathLike[str]
    server_name: str | None = None


def load_inventory(path: str | os.PathLike[str]) -> list[Host]:
    """provctl's inventory (TOML: `[defaults]` ca/cert/key/server_name, then `[[hosts]]`
    name, endpoint, optional canary and overrides); relative paths are relative to the
    file. Raises ValueError naming the mistake."""
    path = Path(path)
    data = tomllib.loads(path.read_text())
    defaults = data.get("defaults", {})
    hosts: list[Host] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("hosts", [])):
        name = entry.get("name")
        if not name or not entry.get("endpoint"):
            raise ValueError(f"inventory hosts[{i}]: name and endpoint are required")
        if name in seen:
            raise ValueError(f"inventory hosts[{i}]: the name {name!r} is used twice")
        seen.add(name)

        def pick(key: str) -> str:
            value = entry.get(key, defaults.get(key))
            if value is None:
                raise ValueError(f"inventory host {name!r}: no {key}")
            return str(value if Path(value).is_absolute() else path.parent / value)

        hosts.append(
            Host(
                name=name,
                endpoint=entry["endpoint"],
                ca=pick("ca"),
                cert=pick("cert"),
                key=pick("key"),
                server_name=entry.get("server_name", defaults.get("server_name")),
            )
        )
    if not hosts:
        raise ValueError(f"inventory {path}: no hosts")
    return hosts


def _name(enum: Any, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        return ""


def _rfc3339(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    at = datetime.datetime.fromtimestamp(ts.seconds, tz=datetime.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class HostStatus:
    """One host's row of `status`: the fields of `provctl fleet status --output json`,
    plus `response` (the GetHostStatusResponse; None when the host was not read)."""

    host: str
    endpoint: str
    status: str
    failed: bool
    reasons: list[str] = field(default_factory=list)
    host_available: bool = False
    agent_installed: bool = False
    agent_version: str = ""
    services: list[dict[str, str]] = field(default_factory=list)
    agent_id: str = ""
    signed_in: bool = False
    last_operation: dict[str, str] | None = None
    drift_watch: str = ""
    drift: list[dict[str, Any]] = field(default_factory=list)
    response: status_pb2.GetHostStatusResponse | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as provctl prints it (without the protobuf)."""
        out = asdict(self)
        out.pop("response")
        return out


def judge(response: status_pb2.GetHostStatusResponse) -> list[str]:
    """Why a host's status fails a sweep: `CODE: detail` per reason (empty: it passes)."""
    reasons: list[str] = []
    if not response.host_available:
        reasons.append(f"{HOST_UNAVAILABLE}: {response.host_unavailable_reason}")
    elif not response.agent_installed:
        reasons.append(f"{AGENT_NOT_INSTALLED}: no agent package")
    else:
        for svc in response.services:
            state = _name(agent_pb2.ServiceState, svc.state, "SERVICE_STATE_")
            if state != "RUNNING":
                reasons.append(f"{SERVICE_NOT_RUNNING}: {svc.name} is {state}")
    if response.HasField("last_operation"):
        op = response.last_operation
        state = _name(operations_pb2.OperationState, op.state, "OPERATION_STATE_")
        if state in ("FAILED", "CANCELLED", "INTERRUPTED"):
            kind = _name(operations_pb2.OperationKind, op.kind, "OPERATION_KIND_")
            reasons.append(f"{LAST_OPERATION_FAILED}: {kind} {op.id} {state}")
    for f in response.drift.findings:
        if f.present:
            what = _name(status_pb2.DriftKind, f.what, "DRIFT_KIND_")
            reasons.append(f"{DRIFT}: {what} {f.detail}")
    return reasons


def status_row(host: str, endpoint: str, response: status_pb2.GetHostStatusResponse) -> HostStatus:
    """One answer as provctl's row, judged."""
    reasons = judge(response)
    last = None
    if response.HasField("last_operation"):
        op = response.last_operation
        error = ""
        if op.HasField("error"):
            error = f"{op.error.code} at {op.error.step}: {op.error.message}"
        last = {
            "id": op.id,
            "kind": _name(operations_pb2.OperationKind, op.kind, "OPERATION_KIND_"),
            "state": _name(operations_pb2.OperationState, op.state, "OPERATION_STATE_"),
            "finished": _rfc3339(op.end_time),
            "error": error,
        }
    findings = [
        {
            "what": _name(status_pb2.DriftKind, f.what, "DRIFT_KIND_"),
            "detail": f.detail,
            "present": f.present,
            "observed": _rfc3339(f.observed_time),
            "reapply_operation_id": f.reapply_operation_id,
            "reapply_state": _name(operations_pb2.OperationState, f.reapply_state, "OPERATION_STATE_")
            if f.reapply_operation_id
            else "",
        }
        for f in response.drift.findings
    ]
    return HostStatus(
        host=host,
        endpoint=endpoint,
        status="FAIL" if reasons else "OK",
        failed=bool(reasons),
        reasons=reasons,
        host_available=response.host_available,
        agent_installed=response.agent_installed,
        agent_version=response.agent_version,
        services=[
            {"name": s.name, "state": _name(agent_pb2.ServiceState, s.state, "SERVICE_STATE_")}
            for s in response.services
        ],
        agent_id=response.tenant.agent_id,
        signed_in=response.tenant.signed_in,
        last_operation=last,
        drift_watch=_name(status_pb2.DriftWatch, response.drift.watch, "DRIFT_WATCH_"),
        drift=findings,
        response=response,
    )


@dataclass
class HostVerify:
    """One host's row of `verify` (as `provctl fleet verify --output json`), plus the
    checks and the report (None when the host was not read)."""

    host: str
    status: str
    failed: bool
    pass_: int = 0
    warn: int = 0
    fail: int = 0
    skip: int = 0
    failed_checks: list[str] = field(default_factory=list)
    checks: list[verify_pb2.Check] = field(default_factory=list)
    report: verify_pb2.VerifyReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "failed": self.failed,
            "pass": self.pass_,
            "warn": self.warn,
            "fail": self.fail,
            "skip": self.skip,
            "failed_checks": list(self.failed_checks),
        }


def verify_fails(status: str) -> bool:
    """Whether a Verify report's status (or UNREACHABLE) fails a sweep."""
    return status not in ("PASS", "WARN")


HostLike = Host | Mapping[str, Any]


def _host(h: HostLike) -> Host:
    return h if isinstance(h, Host) else Host(**h)


def _shown(endpoint: str) -> str:
    """The endpoint as provctl's rows show it: `https://host:port`."""
    try:
        return "https://" + normalize_endpoint(endpoint)
    except ValueError:
        return endpoint


def _channel(h: Host) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(h.ca, "CA bundle"),
        private_key=_read(h.key, "client key"),
        certificate_chain=_read(h.cert, "client certificate"),
    )
    options = []
    if h.server_name:
        options = [
            ("grpc.ssl_target_name_override", h.server_name),
            ("grpc.default_authority", h.server_name),
        ]
    target = normalize_endpoint(h.endpoint)
    return grpc.aio.secure_channel(target, credentials, options=options)


async def _connected(h: Host, timeout: float) -> grpc.aio.Channel:
    """The host's channel, connected (TLS done) within `timeout`, else TimeoutError."""
    channel = _channel(h)
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout)
    except BaseException:
        await channel.close()
        raise
    return channel


async def _bounded(hosts: Iterable[HostLike], concurrency: int, one: Any) -> list[Any]:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def each(h: Host) -> Any:
        async with gate:
            return await one(h)

    rows = await asyncio.gather(*(each(_host(h)) for h in hosts))
    return sorted(rows, key=lambda r: r.host)


async def status_async(
    hosts: Iterable[HostLike], *, concurrency: int = DEFAULT_CONCURRENCY, timeout: float = 10.0
) -> list[HostStatus]:
    """`status` on a running event loop."""

    def unread(h: Host, code: str, why: str) -> HostStatus:
        return HostStatus(h.name, _shown(h.endpoint), code, True, [f"{code}: {why}"])

    async def one(h: Host) -> HostStatus:
        try:
            channel = await _connected(h, timeout)
        except (TimeoutError, OSError, ValueError) as e:
            return unread(h, UNREACHABLE, str(e) or f"no connection within {timeout} s")
        try:
            stub = status_pb2_grpc.StatusServiceStub(channel)
            response = await stub.GetHostStatus(status_pb2.GetHostStatusRequest(), timeout=timeout)
            return status_row(h.name, _shown(h.endpoint), response)
        except grpc.RpcError as e:
            return unread(h, ERROR, f"{e.code().name}: {e.details()}")
        finally:
            await channel.close()

    return await _bounded(hosts, concurrency, one)


def status(
    hosts: Iterable[HostLike], *, concurrency: int = DEFAULT_CONCURRENCY, timeout: float = 10.0
) -> list[HostStatus]:
    """GetHostStatus on every host (`Host`s or dicts of its fields), `concurrency` at
    once, each within `timeout` seconds; one judged row per host, sorted by name."""
    return asyncio.run(status_async(hosts, concurrency=concurrency, timeout=timeout))


async def verify_async(
    hosts: Iterable[HostLike],
    credential: CredentialLike = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = 300.0,
) -> list[HostVerify]:
    """`verify` on a running event loop."""
    request = verify_pb2.VerifyRequest(credential=_credential(credential))

    async def one(h: Host) -> HostVerify:
        try:
            channel = await _connected(h, min(timeout, 10.0))
        except (TimeoutError, OSError, ValueError) as e:
            return HostVerify(h.name, UNREACHABLE, True, failed_checks=[str(e) or "no connection"])
        row = HostVerify(h.name, UNREACHABLE, True)
        try:
            stub = verify_pb2_grpc.VerifyServiceStub(channel)
            async for item in stub.Verify(request, timeout=timeout):
                which = item.WhichOneof("item")
                if which == "check":
                    row.checks.append(item.check)
                    if item.check.status == verify_pb2.CHECK_STATUS_FAIL:
                        c = item.check
                        row.failed_checks.append(f"{c.id} [{c.subject}]" if c.subject else c.id)
                elif which == "report":
                    r = item.report
                    row.report = r
                    row.status = _name(verify_pb2.CheckStatus, r.status, "CHECK_STATUS_")
                    row.pass_, row.warn = r.pass_count, r.warn_count
                    row.fail, row.skip = r.fail_count, r.skip_count
            if row.report is None:
                row.failed_checks = ["the verify stream ended without a report"]
        except grpc.RpcError as e:
            row.status, row.failed_checks = UNREACHABLE, [f"{e.code().name}: {e.details()}"]
        finally:
            await channel.close()
        row.failed = verify_fails(row.status)
        return row

    return await _bounded(hosts, concurrency, one)


def verify(
    hosts: Iterable[HostLike],
    credential: CredentialLike = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = 300.0,
) -> list[HostVerify]:
    """Verify on every host, `concurrency` at once; one row per host, sorted by name.
    Without a credential only the checks that need none run."""
    return asyncio.run(
        verify_async(hosts, credential, concurrency=concurrency, timeout=timeout)
    )
