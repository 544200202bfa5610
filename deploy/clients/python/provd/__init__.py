"""Python client for provd: mTLS gRPC, typed errors, operations, desired-state documents.

See provd.client for the API and README.md beside this package for the layout.
The generated messages and stubs are in provd.v1 (generate.py).
"""

from provd.client import (
    Client,
    Credential,
    VerifyResult,
    change_to_dict,
    check_to_dict,
    event_line,
    event_to_dict,
    operation_to_dict,
    report_to_dict,
)
from provd.document import (
    DocumentError,
    desired_from_dict,
    desired_to_dict,
    load_document,
    parse_document,
)
from provd.errors import (
    FieldViolation,
    InvalidArgument,
    OperationFailed,
    PermissionDenied,
    PreconditionViolation,
    ProvdError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "Client",
    "Credential",
    "DocumentError",
    "FieldViolation",
    "InvalidArgument",
    "OperationFailed",
    "PermissionDenied",
    "PreconditionViolation",
    "ProvdError",
    "Unauthenticated",
    "Unavailable",
    "VerifyResult",
    "change_to_dict",
    "check_to_dict",
    "desired_from_dict",
    "desired_to_dict",
    "event_line",
    "event_to_dict",
    "load_document",
    "operation_to_dict",
    "parse_document",
    "report_to_dict",
]

__version__ = "0.1.0"
