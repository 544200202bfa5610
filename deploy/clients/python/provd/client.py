"""A thin, typed wrapper over provd's gRPC API (mutual TLS).

    from provd import Client, Credential, load_document

    with Client("localhost:8443", ca="pki/ca.pem", cert="pki/client-admin.pem",
                key="pki/client-admin.key") as client:
        desired = load_document("agent-host.toml")
        admin = Credential.from_file("Administrator@lab.example.test", "admin.pw")
        for change in client.plan(desired, admin):
            print(change.step, change.action, change.detail)
        op = client.wait(client.apply(desired, admin), on_event=print)
        print(op.result["changed"])
        result = client.verify(credential=admin)
        print(result.status, [c.id for c in result.failed])

Every call raises a `provd.errors.ProvdError` subclass on failure
(`InvalidArgument` with `.field_violations`, `PermissionDenied`, ...), never a
bare grpc.RpcError. The messages and stubs themselves are `provd.v1.*_pb2` /
`*_pb2_grpc`, generated from proto/ (generate.py); `client.stubs` gives the raw
stubs for RPCs this wrapper does not cover.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2

from provd import errors
from provd.document import desired_from_dict, load_document

try:
    from provd.v1 import (
        agent_pb2,
        agent_pb2_grpc,
        cloud_sync_pb2_grpc,
        common_pb2,
        configuration_pb2,
        configuration_pb2_grpc,
        directory_pb2_grpc,
        domain_controller_pb2_grpc,
        operations_pb2,
        operations_pb2_grpc,
        service_account_pb2_grpc,
        status_pb2,
        status_pb2_grpc,
        verify_pb2,
        verify_pb2_grpc,
        writeback_pb2_grpc,
    )
except ImportError as e:  # pragma: no cover - a source checkout without generate.py run
    raise ImportError(
        "provd.v1 stubs are missing: run `python deploy/clients/python/generate.py` "
        "(or pip install deploy/clients/python, which generates them)"
    ) from e

TERMINAL_STATES = frozenset(
    {
        operations_pb2.OPERATION_STATE_SUCCEEDED,
        operations_pb2.OPERATION_STATE_FAILED,
        operations_pb2.OPERATION_STATE_CANCELLED,
        operations_pb2.OPERATION_STATE_INTERRUPTED,
    }
)

DesiredLike = configuration_pb2.DesiredState | Mapping[str, Any] | str | os.PathLike


class Credential:
    """A directory account (user + password) for one call. The password never
    shows in repr/str, and is sent only inside the request that needs it."""

    __slots__ = ("username", "_password")

    def __init__(self, username: str, password: str) -> None:
        if not username:
            raise ValueError("Credential: username is empty")
        if not password:
            raise ValueError("Credential: password is empty")
        self.username = username
        self._password = password

    @classmethod
    def from_file(cls, username: str, path: str | os.PathLike[str]) -> Credential:
        """The password is the first line of `path` (as provctl --password-file)."""
        text = Path(path).read_text(encoding="utf-8")
        return cls(username, text.split("\n", 1)[0].removesuffix("\r"))

    def to_proto(self) -> common_pb2.Credential:
        return common_pb2.Credential(username=self.username, password=self._password)

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # no pickling the secret by accident
        raise TypeError("Credential cannot be pickled")


CredentialLike = Credential | common_pb2.Credential | None


def _credential(credential: CredentialLike) -> common_pb2.Credential | None:
    if credential is None:
        return None
    if isinstance(credential, Credential):
        return credential.to_proto()
    if isinstance(credential, common_pb2.Credential):
        return credential
    raise TypeError("credential must be a provd.Credential")


def _desired(desired: DesiredLike) -> configuration_pb2.DesiredState:
    if isinstance(desired, configuration_pb2.DesiredState):
        return desired
    if isinstance(desired, Mapping):
        return desired_from_dict(desired)
    if isinstance(desired, (str, os.PathLike)):
        return load_document(desired)
    raise TypeError("desired must be a DesiredState, a dict in the document's shape, or a path")


def _enum(enum_type: Any, value: int, prefix: str) -> str:
    try:
        return enum_type.Name(value).removeprefix(prefix)
    except ValueError:
        return str(value)


def _time(ts: Any) -> str | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToJsonString()


def operation_to_dict(op: operations_pb2.Operation) -> dict[str, Any]:
    """An Operation as plain data, short enum names ("SUCCEEDED")."""
    return {
        "id": op.id,
        "kind": _enum(operations_pb2.OperationKind, op.kind, "OPERATION_KIND_"),
        "state": _enum(operations_pb2.OperationState, op.state, "OPERATION_STATE_"),
        "request_id": op.request_id,
        "description": op.description,
        "create_time": _time(op.create_time),
        "update_time": _time(op.update_time),
        "end_time": _time(op.end_time) if op.HasField("end_time") else None,
        "error": (
            {"code": op.error.code, "message": op.error.message, "step": op.error.step}
            if op.HasField("error")
            else None
        ),
        "cancel_requested": op.cancel_requested,
        "event_count": op.event_count,
        "initiator": op.initiator,
        "result": dict(op.result),
    }


def event_to_dict(event: operations_pb2.OperationEvent) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "time": _time(event.time),
        "step": event.step,
        "kind": _enum(operations_pb2.EventKind, event.kind, "EVENT_KIND_"),
        "message": event.message,
        "percent": event.percent,
        "attributes": dict(event.attributes),
    }


def change_to_dict(change: common_pb2.PlannedChange) -> dict[str, str]:
    return {"step": change.step, "action": change.action, "detail": change.detail}


def check_to_dict(check: verify_pb2.Check) -> dict[str, Any]:
    return {
        "id": check.id,
        "category": _enum(verify_pb2.CheckCategory, check.category, "CHECK_CATEGORY_"),
        "status": _enum(verify_pb2.CheckStatus, check.status, "CHECK_STATUS_"),
        "subject": check.subject,
        "message": check.message,
        "remedy": check.remedy,
        "duration_ms": check.duration.ToMilliseconds(),
        "attributes": dict(check.attributes),
    }


def report_to_dict(report: verify_pb2.VerifyReport) -> dict[str, Any]:
    return {
        "status": _enum(verify_pb2.CheckStatus, report.status, "CHECK_STATUS_"),
        "pass_count": report.pass_count,
        "warn_count": report.warn_count,
        "fail_count": report.fail_count,
        "skip_count": report.skip_count,
        "start_time": _time(report.start_time),
        "duration_ms": report.duration.ToMilliseconds(),
    }


def event_line(event: operations_pb2.OperationEvent) -> str:
    """One event as a log line: `  3 PROGRESS        domain lab.example.test: add: ...`."""
    kind = _enum(operations_pb2.EventKind, event.kind, "EVENT_KIND_")
    return f"{event.sequence:3} {kind:<15} {event.step}: {event.message}"


@dataclass
class VerifyResult:
    """Every check (in completion order) and the report of one Verify run."""

    checks: list[verify_pb2.Check] = field(default_factory=list)
    report: verify_pb2.VerifyReport | None = None

    @property
    def status(self) -> str:
        """"PASS", "WARN", "FAIL" or "SKIP" (the report's)."""
        if self.report is None:
            return "UNSPECIFIED"
        return _enum(verify_pb2.CheckStatus, self.report.status, "CHECK_STATUS_")

    @property
    def failed(self) -> list[verify_pb2.Check]:
        return [c for c in self.checks if c.status == verify_pb2.CHECK_STATUS_FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [check_to_dict(c) for c in self.checks],
            "report": report_to_dict(self.report) if self.report is not None else None,
        }


@dataclass(frozen=True)
class Stubs:
    """The raw gRPC stubs over the client's channel."""

    agent: agent_pb2_grpc.AgentServiceStub
    cloud_sync: cloud_sync_pb2_grpc.CloudSyncServiceStub
    configuration: configuration_pb2_grpc.ConfigurationServiceStub
    directory: directory_pb2_grpc.DirectoryServiceStub
    domain_controllers: domain_controller_pb2_grpc.DomainControllerServiceStub
    operations: operations_pb2_grpc.OperationsServiceStub
    service_account: service_account_pb2_grpc.ServiceAccountServiceStub
    status: status_pb2_grpc.StatusServiceStub
    verify: verify_pb2_grpc.VerifyServiceStub
    writeback: writeback_pb2_grpc.WritebackServiceStub


def normalize_endpoint(endpoint: str) -> str:
    """`https://host:port` or `host:port` -> the gRPC target `host:port` (as provctl)."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint.rstrip("/")
    if scheme != "https":
        raise ValueError(
            f"endpoint {endpoint}: scheme {scheme} is not supported; provd serves https only"
        )
    return rest.rstrip("/")


def _read(path: str | os.PathLike[str] | bytes, what: str) -> bytes:
    if isinstance(path, bytes):
        return path  # PEM given directly
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise FileNotFoundError(f"{what} {path}: {e.strerror or e}") from None


class Client:
    """One mTLS channel to one provd.

    endpoint: "host:port" or "https://host:port". ca: the provd CA bundle (PEM
    path); cert/key: this client's certificate and key (its role comes from
    the certificate). server_name: the name to verify the server certificate
    against when it differs from the endpoint's host (e.g. connecting by IP to
    a certificate for "localhost"). timeout: seconds per unary call.
    """

    def __init__(
        self,
        endpoint: str,
        ca: str | os.PathLike[str] | bytes,
        cert: str | os.PathLike[str] | bytes,
        key: str | os.PathLike[str] | bytes,
        server_name: str | None = None,
        *,
        timeout: float = 30.0,
        options: Iterable[tuple[str, Any]] = (),
    ) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.timeout = timeout
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca, "CA bundle"),
            private_key=_read(key, "client key"),
            certificate_chain=_read(cert, "client certificate"),
        )
        opts = list(options)
        if server_name:
            opts += [
                ("grpc.ssl_target_name_override", server_name),
                ("grpc.default_authority", server_name),
            ]
        self.channel = grpc.secure_channel(self.endpoint, credentials, options=opts)
        self.stubs = Stubs(
            agent=agent_pb2_grpc.AgentServiceStub(self.channel),
            cloud_sync=cloud_sync_pb2_grpc.CloudSyncServiceStub(self.channel),
            configuration=configuration_pb2_grpc.ConfigurationServiceStub(self.channel),
            directory=directory_pb2_grpc.DirectoryServiceStub(self.channel),
            domain_controllers=domain_controller_pb2_grpc.DomainControllerServiceStub(
                self.channel
            ),
            operations=operations_pb2_grpc.OperationsServiceStub(self.channel),
            service_account=service_account_pb2_grpc.ServiceAccountServiceStub(self.channel),
            status=status_pb2_grpc.StatusServiceStub(self.channel),
            verify=verify_pb2_grpc.VerifyServiceStub(self.channel),
            writeback=writeback_pb2_grpc.WritebackServiceStub(self.channel),
        )

    @classmethod
    def from_pki_dir(
        cls, endpoint: str, pki_dir: str | os.PathLike[str], role: str, **kwargs: Any
    ) -> Client:
        """The layout `provd pki init` writes (as provctl --pki-dir DIR --role ROLE):
        ca.pem, client-<role>.pem, client-<role>.key."""
        d = Path(pki_dir)
        return cls(
            endpoint,
            ca=d / "ca.pem",
            cert=d / f"client-{role}.pem",
            key=d / f"client-{role}.key",
            **kwargs,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        """A unary call through one of `self.stubs`, errors typed."""
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the channel connects (TLS handshake done), else Unavailable."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise errors.Unavailable(
                f"no TLS connection to {self.endpoint} within {timeout} s"
            ) from None

    # -- agent ------------------------------------------------------------------------------

    def agent(self) -> agent_pb2.GetAgentResponse:
        """The agent as the host sees it (GetAgent)."""
        return self.call(self.stubs.agent.GetAgent, agent_pb2.GetAgentRequest())

    def host_status(self) -> status_pb2.GetHostStatusResponse:
        """The host in one read: agent, services, last operation, drift (GetHostStatus).
        `provd.fleet.judge` says whether it fails a sweep, and why."""
        return self.call(self.stubs.status.GetHostStatus, status_pb2.GetHostStatusRequest())

    def sign_in(self, request_id: str | None = None) -> operations_pb2.Operation:
        """Starts a device-code sign-in (SignIn); watch it for the ACTION_REQUIRED event."""
        response = self.call(
            self.stubs.agent.SignIn, agent_pb2.SignInRequest(request_id=request_id or "")
        )
        return response.operation

    # -- configuration ----------------------------------------------------------------------

    def plan(
        self, desired: DesiredLike, credential: CredentialLike = None
    ) -> list[common_pb2.PlannedChange]:
        """What apply would change now, in apply order (PlanConfiguration); [] when as desired."""
        request = configuration_pb2.PlanConfigurationRequest(
            desired=_desired(desired), credential=_credential(credential)
        )
        return list(self.call(self.stubs.configuration.PlanConfiguration, request).changes)

    def apply(
        self,
        desired: DesiredLike,
        credential: CredentialLike = None,
        request_id: str | None = None,
    ) -> operations_pb2.Operation:
        """Starts ApplyConfiguration and returns the operation at once (see `wait`)."""
        request = configuration_pb2.ApplyConfigurationRequest(
            desired=_desired(desired),
            credential=_credential(credential),
            request_id=request_id or "",
        )
        return self.call(self.stubs.configuration.ApplyConfiguration, request).operation

    # -- operations -------------------------------------------------------------------------

    def get_operation(self, op_id: str) -> operations_pb2.Operation:
        request = operations_pb2.GetOperationRequest(id=op_id)
        return self.call(self.stubs.operations.GetOperation, request).operation

    def cancel(self, op_id: str) -> operations_pb2.Operation:
        request = operations_pb2.CancelOperationRequest(id=op_id)
        return self.call(self.stubs.operations.CancelOperation, request).operation

    def list_operations(self, **filters: Any) -> list[operations_pb2.Operation]:
        """ListOperations, every page (filters: state=, kind=, initiator=,
        started_after=, started_before= (google.protobuf Timestamp), page_size=)."""
        out: list[operations_pb2.Operation] = []
        token = ""
        while True:
            request = operations_pb2.ListOperationsRequest(page_token=token, **filters)
            response = self.call(self.stubs.operations.ListOperations, request)
            out += response.operations
            token = response.next_page_token
            if not token:
                return out

    def events(
        self, op_id: str, after_sequence: int = 0, timeout: float | None = None
    ) -> Iterator[operations_pb2.WatchOperationResponse]:
        """The raw WatchOperation stream (events, then the terminal operation)."""
        request = operations_pb2.WatchOperationRequest(id=op_id, after_sequence=after_sequence)
        try:
            yield from self.stubs.operations.WatchOperation(request, timeout=timeout)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e

    def watch(
        self,
        op_id: str | operations_pb2.Operation,
        on_event: Callable[[operations_pb2.OperationEvent], Any] | None = None,
        *,
        after_sequence: int = 0,
        timeout: float | None = None,
        reconnects: int = 5,
    ) -> operations_pb2.Operation:
        """Streams the operation's events to `on_event` until it ends; returns the
        terminal Operation (whatever its state). A stream that breaks (UNAVAILABLE)
        is resumed after the last event seen, up to `reconnects` times in a row;
        `timeout` bounds the whole watch (DeadlineExceeded)."""
        if isinstance(op_id, operations_pb2.Operation):
            op_id = op_id.id
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after_sequence
        failures = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                for item in self.events(op_id, after_sequence=last, timeout=remaining):
                    which = item.WhichOneof("item")
                    if which == "event":
                        if item.event.sequence <= last:
                            continue  # replayed after a reconnect
                        last = item.event.sequence
                        failures = 0
                        if on_event is not None:
                            on_event(item.event)
                    elif which == "operation":
                        return item.operation
                raise errors.ProvdError(
                    f"WatchOperation {op_id} ended without the terminal operation"
                )
            except errors.Unavailable:
                failures += 1
                if failures > reconnects or (deadline is not None and time.monotonic() >= deadline):
                    raise
                time.sleep(min(0.2 * 2**failures, 3.0))

    def wait(
        self,
        op: str | operations_pb2.Operation,
        on_event: Callable[[operations_pb2.OperationEvent], Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> operations_pb2.Operation:
        """`watch` to the end; raises OperationFailed unless it SUCCEEDED."""
        final = self.watch(op, on_event, timeout=timeout)
        if final.state != operations_pb2.OPERATION_STATE_SUCCEEDED:
            raise errors.OperationFailed(final)
        return final

    # -- verify -----------------------------------------------------------------------------

    def verify(
        self,
        domains: Iterable[str] = (),
        credential: CredentialLike = None,
        *,
        categories: Iterable[str | int] = (),
        check_timeout: float | None = None,
        on_check: Callable[[verify_pb2.Check], Any] | None = None,
        timeout: float | None = 300.0,
    ) -> VerifyResult:
        """Runs Verify: every check (streamed to `on_check` as it finishes) and the
        report. `categories`: "host", "tenant", "directory", "writeback" (or the
        enum numbers); empty runs all. A FAIL is a result, not an exception."""
        request = verify_pb2.VerifyRequest(
            domains=list(domains),
            categories=[_category(c) for c in categories],
            credential=_credential(credential),
        )
        if check_timeout is not None:
            request.check_timeout.CopyFrom(_duration(check_timeout))
        result = VerifyResult()
        try:
            for item in self.stubs.verify.Verify(request, timeout=timeout):
                which = item.WhichOneof("item")
                if which == "check":
                    result.checks.append(item.check)
                    if on_check is not None:
                        on_check(item.check)
                elif which == "report":
                    result.report = item.report
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from e
        if result.report is None:
            raise errors.ProvdError("Verify ended without a report")
        return result


def _category(value: str | int) -> int:
    if isinstance(value, int):
        return value
    name = value.strip().upper().replace("-", "_")
    full = name if name.startswith("CHECK_CATEGORY_") else f"CHECK_CATEGORY_{name}"
    found = verify_pb2.CheckCategory.DESCRIPTOR.values_by_name.get(full)
    if found is None:
        raise ValueError(f"{value!r} is not a check category (host, tenant, directory, writeback)")
    return found.number


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d
