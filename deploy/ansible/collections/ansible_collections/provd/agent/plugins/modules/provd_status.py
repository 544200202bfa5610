#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: provd maintainers
# Apache License 2.0 (see the repository's Cargo.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provd_status
short_description: Read one agent host's status from provd (agent, services, last operation, drift)
version_added: "0.1.0"
description:
  - Calls StatusService.GetHostStatus on one provd daemon over mutual TLS and returns the
    row C(provctl fleet status --output json) prints for that host, judged the same way
    (C(provd.fleet.judge) of the provd-client package).
  - Run it over an inventory (one task per host) for a fleet-wide status; the play's failed
    hosts are the ones C(provctl fleet status) would count as failed.
  - "The task fails, unless O(fail_on_fail=false), when the host fails for any of these
    reasons (each in RV(reasons) as C(CODE: detail)) - C(UNREACHABLE) no connection within
    O(timeout); C(ERROR) the call failed (e.g. C(PERMISSION_DENIED)); C(HOST_UNAVAILABLE)
    provd cannot read the agent (no Windows host backend); C(AGENT_NOT_INSTALLED);
    C(SERVICE_NOT_RUNNING) either agent service is not RUNNING; C(LAST_OPERATION_FAILED)
    provd's newest operation ended FAILED, CANCELLED or INTERRUPTED; C(DRIFT) the drift
    watch has a present finding."
  - Not failures - the drift watch OFF or PENDING (drift unknown), no registration or tenant
    session, an operation running.
  - Read-only and cheap (no directory or tenant call), so it runs the same in check mode and
    always reports C(changed=false).
author:
  - provd maintainers
requirements:
  - the provd-client Python package (deploy/clients/python in the provd repository) on the
    Python that runs the module
options:
  endpoint:
    description:
      - provd's address, C(host:port) or C(https://host:port).
    type: str
    required: true
  ca:
    description:
      - The provd CA bundle (PEM) the server certificate must chain to.
    type: path
    required: true
  cert:
    description:
      - This client's certificate (PEM); any role (viewer and up) may read the status.
    type: path
    required: true
  key:
    description:
      - This client's private key (PEM).
    type: path
    required: true
  server_name:
    description:
      - Name to verify the server certificate against when it differs from the
        endpoint's host.
    type: str
  timeout:
    description:
      - Seconds allowed for the connection and the call.
    type: float
    default: 10.0
  fail_on_fail:
    description:
      - Fail the task when the host fails (see the reasons above).
    type: bool
    default: true
notes:
  - Supports check mode (it only reads).
"""

EXAMPLES = r"""
- name: Status of every agent host
  provd.agent.provd_status:
    endpoint: "{{ inventory_hostname }}:8443"
    ca: /etc/provd/pki/ca.pem
    cert: /etc/provd/pki/client-viewer.pem
    key: /etc/provd/pki/client-viewer.key
  register: status

- name: Report only, never fail
  provd.agent.provd_status:
    endpoint: localhost:8443
    ca: pki/ca.pem
    cert: pki/client-viewer.pem
    key: pki/client-viewer.key
    fail_on_fail: false
  register: status
"""

RETURN = r"""
status:
  description: OK, FAIL (read, with reasons), UNREACHABLE or ERROR.
  returned: always
  type: str
reasons:
  description: "Why the host fails, C(CODE: detail) each; empty when it passes."
  returned: always
  type: list
  elements: str
host_status:
  description:
    - The row as C(provctl fleet status --output json) prints it (host_available,
      agent_installed, agent_version, services, agent_id, signed_in, last_operation,
      drift_watch, drift, ...), C(host) being the endpoint.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.provd.agent.plugins.module_utils.provd_client import (
    CONNECTION_ARGS,
    require_provd,
)

try:
    from provd import fleet as provd_fleet
except ImportError:
    pass  # require_provd() reports it


def main():
    argument_spec = dict(CONNECTION_ARGS)
    argument_spec.update(
        timeout=dict(type="float", default=10.0),
        fail_on_fail=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_provd(module)
    p = module.params
    host = provd_fleet.Host(
        name=p["endpoint"],
        endpoint=p["endpoint"],
        ca=p["ca"],
        cert=p["cert"],
        key=p["key"],
        server_name=p.get("server_name"),
    )
    # One host through the fleet helper: the same connection, timeout and judgement.
    (row,) = provd_fleet.status([host], concurrency=1, timeout=p["timeout"])
    data = row.to_dict()
    outcome = dict(changed=False, status=row.status, reasons=row.reasons, host_status=data)
    if row.failed and p["fail_on_fail"]:
        module.fail_json(msg="provd status %s: %s" % (row.status, "; ".join(row.reasons)), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
