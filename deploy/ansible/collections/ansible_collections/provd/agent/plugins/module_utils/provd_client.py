# -*- coding: utf-8 -*-
# Copyright: provd maintainers
# Apache License 2.0 (see the repository's Cargo.toml)
"""Shared by provd.agent's modules: the connection and credential options, and
the `provd` Python package (provd-client, deploy/clients/python) they drive.

The modules import the installed package rather than vendoring it: install it
into the Python that runs the modules (with `connection: local`, the
controller's; set `ansible_python_interpreter: "{{ ansible_playbook_python }}"`):

    pip install deploy/clients/python
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import provd  # noqa: F401 - the provd-client package
    from provd import errors as provd_errors  # noqa: F401

    HAS_PROVD = True
    PROVD_IMPORT_ERROR = None
except ImportError:
    HAS_PROVD = False
    PROVD_IMPORT_ERROR = traceback.format_exc()


# The options every module takes to reach one provd over mutual TLS.
CONNECTION_ARGS = dict(
    endpoint=dict(type="str", required=True),
    ca=dict(type="path", required=True),
    cert=dict(type="path", required=True),
    key=dict(type="path", required=True, no_log=False),
    server_name=dict(type="str"),
    timeout=dict(type="float", default=30.0),
)

# The directory admin, for this call only.
CREDENTIAL_ARGS = dict(
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
)


def require_provd(module):
    """Fails the module with install instructions when provd-client is missing."""
    if not HAS_PROVD:
        module.fail_json(
            msg=missing_required_lib(
                "provd (the provd-client package)",
                url="deploy/clients/python in the provd repository: pip install deploy/clients/python",
            ),
            exception=PROVD_IMPORT_ERROR,
        )


def connect(module):
    """A provd.Client from the connection options."""
    p = module.params
    try:
        return provd.Client(
            p["endpoint"],
            ca=p["ca"],
            cert=p["cert"],
            key=p["key"],
            server_name=p.get("server_name"),
            timeout=p.get("timeout") or 30.0,
        )
    except (OSError, ValueError) as e:
        module.fail_json(msg="cannot set up the connection to %s: %s" % (p["endpoint"], e))


def credential(module):
    """provd.Credential from username/password, or None when neither is given."""
    p = module.params
    if not p.get("username"):
        return None
    try:
        return provd.Credential(p["username"], p.get("password") or "")
    except ValueError as e:
        module.fail_json(msg=str(e))


def fail_with(module, err, **extra):
    """Fails the module with a provd error: its text, code and the fields provd named."""
    if isinstance(err, provd_errors.OperationFailed):
        extra.setdefault("operation", provd.operation_to_dict(err.operation))
    if isinstance(err, provd_errors.ProvdError):
        extra["error"] = err.to_dict()
    module.fail_json(msg=str(err), **extra)
