"""Typed errors: a failed provd call as an exception that says which field was wrong.

provd answers a failed call with a gRPC status whose `grpc-status-details-bin`
trailer carries google.rpc details (see src/transport/status.rs):

* INVALID_ARGUMENT: a `google.rpc.BadRequest` naming every bad field by its
  path, e.g. `desired.domains[0].domain`;
* FAILED_PRECONDITION: a `google.rpc.PreconditionFailure` (type
  `OPERATION_RUNNING` with subject `operations/<id>`, `NO_KDS_ROOT_KEY`, ...).

`from_rpc_error` turns a `grpc.RpcError` into the subclass of `ProvdError` for
its code, with those details decoded. An operation that ends FAILED, CANCELLED
or INTERRUPTED is an `OperationFailed` (raised by `Client.wait`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from provd.v1 import operations_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path and what is wrong with it."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition: type (e.g. OPERATION_RUNNING), subject, description."""

    type: str
    subject: str
    description: str


class ProvdError(Exception):
    """A provd call failed. `code` is the grpc.StatusCode, `message` provd's text."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        field_violations: list[FieldViolation] | None = None,
        precondition_failures: list[PreconditionViolation] | None = None,
        details: list[Any] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.field_violations = list(field_violations or [])
        self.precondition_failures = list(precondition_failures or [])
        # Every decoded google.rpc detail message, known kinds or not.
        self.details = list(details or [])
        super().__init__(str(self))

    @property
    def code_name(self) -> str:
        """The canonical code name, e.g. "INVALID_ARGUMENT"."""
        return self.code.name

    @property
    def fields(self) -> list[str]:
        """The paths of the bad fields (INVALID_ARGUMENT), in provd's order."""
        return [v.field for v in self.field_violations]

    def __str__(self) -> str:
        lines = [f"{self.code.name}: {self.message}"]
        lines += [f"  field {v.field}: {v.description}" for v in self.field_violations]
        lines += [
            f"  precondition {p.type} {p.subject}: {p.description}".rstrip()
            for p in self.precondition_failures
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON output, Ansible results)."""
        return {
            "code": self.code.name,
            "message": self.message,
            "field_violations": [
                {"field": v.field, "description": v.description} for v in self.field_violations
            ],
            "precondition_failures": [
                {"type": p.type, "subject": p.subject, "description": p.description}
                for p in self.precondition_failures
            ],
        }


class Cancelled(ProvdError):
    code = grpc.StatusCode.CANCELLED


class InvalidArgument(ProvdError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(ProvdError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(ProvdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ProvdError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(ProvdError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ProvdError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(ProvdError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ProvdError):
    code = grpc.StatusCode.ABORTED


class Unimplemented(ProvdError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(ProvdError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(ProvdError):
    """No answer: daemon down, TLS handshake refused (e.g. no or a foreign client
    certificate), or a DC/tenant that did not answer."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(ProvdError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[ProvdError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        Unimplemented,
        Internal,
        Unavailable,
        Unauthenticated,
    )
}

_BY_NAME: dict[str, type[ProvdError]] = {code.name: cls for code, cls in _BY_CODE.items()}


class OperationFailed(ProvdError):
    """An operation ended FAILED, CANCELLED or INTERRUPTED.

    `operation` is the terminal provd.v1.Operation; `code` is the code its
    error names (e.g. FAILED_PRECONDITION), `step` the step it failed in.
    """

    def __init__(self, operation: operations_pb2.Operation) -> None:
        from provd.v1 import operations_pb2

        self.operation = operation
        state = operations_pb2.OperationState.Name(operation.state).removeprefix(
            "OPERATION_STATE_"
        )
        self.state = state
        self.step = operation.error.step
        code = getattr(grpc.StatusCode, operation.error.code, None)
        if not isinstance(code, grpc.StatusCode):
            code = grpc.StatusCode.CANCELLED if state == "CANCELLED" else grpc.StatusCode.UNKNOWN
        where = f" in step {self.step}" if self.step else ""
        text = operation.error.message or state.lower()
        super().__init__(f"operation {operation.id} {state}{where}: {text}", code=code)


def error_class(code: grpc.StatusCode | str) -> type[ProvdError]:
    """The exception class for a code (or its name)."""
    if isinstance(code, str):
        return _BY_NAME.get(code, ProvdError)
    return _BY_CODE.get(code, ProvdError)


def _decode_details(error: grpc.RpcError) -> tuple[list[Any], list[FieldViolation], list[PreconditionViolation]]:
    """google.rpc details from the call's `grpc-status-details-bin` trailer."""
    try:
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status
    except ImportError:  # pragma: no cover - both are dependencies
        return [], [], []
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        # A trailer whose code or message disagrees with the status, or an
        # error object that is not a call (e.g. raised before sending).
        return [], [], []
    if status is None:
        return [], [], []
    details: list[Any] = []
    fields: list[FieldViolation] = []
    preconditions: list[PreconditionViolation] = []
    kinds = (
        error_details_pb2.BadRequest,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.ErrorInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.DebugInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
        error_details_pb2.RequestInfo,
    )
    for any_detail in status.details:
        for kind in kinds:
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                any_detail.Unpack(message)
                details.append(message)
                if isinstance(message, error_details_pb2.BadRequest):
                    fields += [
                        FieldViolation(v.field, v.description) for v in message.field_violations
                    ]
                elif isinstance(message, error_details_pb2.PreconditionFailure):
                    preconditions += [
                        PreconditionViolation(v.type, v.subject, v.description)
                        for v in message.violations
                    ]
                break
        else:
            details.append(any_detail)  # unknown kind: left packed
    return details, fields, preconditions


def from_rpc_error(error: grpc.RpcError) -> ProvdError:
    """The typed exception for a failed gRPC call (unary or stream)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    details, fields, preconditions = _decode_details(error)
    cls = error_class(code)
    return cls(
        message or "",
        code=code,
        field_violations=fields,
        precondition_failures=preconditions,
        details=details,
    )
