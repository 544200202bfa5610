#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: provd maintainers
# Apache License 2.0 (see the repository's Cargo.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provd_apply
short_description: Apply a desired-state document to one provd (check mode shows the plan)
version_added: "0.1.0"
description:
  - Sends a desired-state document (the one C(provctl apply) reads) to one provd daemon's
    ConfigurationService over mutual TLS.
  - In normal mode, calls ApplyConfiguration and watches the operation to its end
    (WatchOperation); C(changed) is the operation's result C(changed) (C("true") when any
    section was changed). Fails when the operation ends FAILED, CANCELLED or INTERRUPTED,
    with its error and events.
  - In check mode, calls PlanConfiguration instead, which changes nothing; C(changed) is
    true when the plan is not empty, and C(plan) lists the changes apply would make.
  - Applying the same document again does no work and reports C(changed=false).
  - The module runs where the task runs; drive each provd from the controller
    (C(connection=local)) with one inventory host per provd endpoint.
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
      - This client's certificate (PEM). Its role (C(urn:provd:role:admin)) must allow
        ApplyConfiguration; any role may plan (check mode).
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
      - Seconds allowed for each unary call.
    type: float
    default: 30.0
  document:
    description:
      - Path of the desired-state document (C(.toml), C(.yaml)/C(.yml) or C(.json)), as
        C(provctl apply) reads it, on the host the module runs on.
      - Exactly one of O(document) and O(desired).
    type: path
  desired:
    description:
      - The desired state as data, in the document's shape (keys C(agent), C(domains),
        C(service_account), C(writeback); a domain's C(cloud_sync); short enum names such as
        C(basic_read)).
      - Exactly one of O(document) and O(desired).
    type: dict
  username:
    description:
      - The domain admin for the directory changes (UPN, C(DOMAIN\\user) or a bind DN).
        Required by provd when the document names a domain, a service account or
        writeback. Used for this call only; provd never stores, logs or echoes it.
    type: str
  password:
    description:
      - The password of O(username).
    type: str
  request_id:
    description:
      - Idempotency key (at most 128 characters of C([A-Za-z0-9._:-])). A retry with the
        same key returns the operation the first request started.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for the operation to end (an apply that installs the agent waits
        for a person to complete the device-code sign-in).
    type: float
    default: 3600.0
notes:
  - Supports check mode (the plan). The events returned never contain credentials.
"""

EXAMPLES = r"""
- name: Apply the agent host's document
  provd.agent.provd_apply:
    endpoint: "{{ inventory_hostname }}:8443"
    ca: /etc/provd/pki/ca.pem
    cert: /etc/provd/pki/client-admin.pem
    key: /etc/provd/pki/client-admin.key
    document: files/agent-host.toml
    username: CONTOSO\admin
    password: "{{ vault_ad_admin_password }}"
  register: applied

- name: Directory-only state given as data, planned only
  provd.agent.provd_apply:
    endpoint: localhost:8443
    ca: pki/ca.pem
    cert: pki/client-viewer.pem
    key: pki/client-viewer.key
    desired:
      domains:
        - domain: contoso.com
          preferred_domain_controllers: [dc1.contoso.com, dc2.contoso.com]
      service_account:
        domain: contoso.com
        create:
          name: provAgentgMSA
          principals: [AGENT1$]
        permissions: [basic_read]
    username: CONTOSO\admin
    password: "{{ vault_ad_admin_password }}"
  check_mode: true
  register: planned
"""

RETURN = r"""
plan:
  description: Check mode only. The changes apply would make, in apply order; empty when the host is as desired.
  returned: check mode
  type: list
  elements: dict
  sample:
    - {step: "domain contoso.com", action: add, detail: "contoso.com preferring dc1.contoso.com"}
    - {step: service-account, action: create, detail: "gMSA provAgentgMSA in contoso.com (recorded: none)"}
    - {step: "cloud-sync contoso.com", action: enable-tenant-sync, detail: "onPremisesSyncEnabled true (now: null)"}
operation:
  description: The operation as it ended (id, kind, state, result, error, times, initiator).
  returned: when an operation was started
  type: dict
  sample:
    id: 8e2318ac-af4c-4514-9096-17686654c18f
    kind: APPLY_CONFIGURATION
    state: SUCCEEDED
    result: {changed: "true", changes: "3", changed_steps: "domain contoso.com,service-account,permissions"}
operation_id:
  description: The operation's id.
  returned: when an operation was started
  type: str
state:
  description: The operation's terminal state (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED).
  returned: when an operation was started
  type: str
result:
  description: The operation's result map (C(changed), C(changes), C(changed_steps)).
  returned: when an operation was started
  type: dict
events:
  description: Every event of the operation in order (sequence, time, step, kind, message, percent, attributes).
  returned: when an operation was started
  type: list
  elements: dict
changes:
  description: The changes the apply made, one per planned change (step and "action - detail").
  returned: when an operation was started
  type: list
  elements: dict
error:
  description: On failure, the provd error (code, message, field_violations, precondition_failures).
  returned: failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.provd.agent.plugins.module_utils.provd_client import (
    CONNECTION_ARGS,
    CREDENTIAL_ARGS,
    connect,
    credential,
    fail_with,
    require_provd,
)

try:
    import provd
    from provd import errors as provd_errors
except ImportError:
    pass  # require_provd() reports it

# The steps of ApplyConfiguration's sections, whose PROGRESS events are the changes made
# (`cloud-sync <domain>`: one per Graph change of that domain's cloud sync configuration).
SECTIONS = ("agent", "domain ", "service-account", "permissions", "writeback", "cloud-sync ")


def desired_state(module):
    p = module.params
    try:
        if p["document"]:
            return provd.load_document(p["document"])
        return provd.desired_from_dict(p["desired"], lenient=True)
    except provd.DocumentError as e:
        module.fail_json(msg="the desired state is not valid: %s" % e)


def main():
    argument_spec = dict(CONNECTION_ARGS)
    argument_spec.update(CREDENTIAL_ARGS)
    argument_spec.update(
        document=dict(type="path"),
        desired=dict(type="dict"),
        request_id=dict(type="str"),
        wait_timeout=dict(type="float", default=3600.0),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("document", "desired")],
        required_one_of=[("document", "desired")],
        required_together=[("username", "password")],
        supports_check_mode=True,
    )
    require_provd(module)
    desired = desired_state(module)
    cred = credential(module)
    client = connect(module)
    try:
        if module.check_mode:
            try:
                changes = client.plan(desired, cred)
            except provd_errors.ProvdError as e:
                fail_with(module, e)
            module.exit_json(
                changed=bool(changes),
                plan=[provd.change_to_dict(c) for c in changes],
            )

        events = []
        try:
            op = client.apply(desired, cred, request_id=module.params["request_id"])
            final = client.watch(op, on_event=events.append, timeout=module.params["wait_timeout"])
        except provd_errors.ProvdError as e:
            fail_with(module, e, events=[provd.event_to_dict(ev) for ev in events])

        op_dict = provd.operation_to_dict(final)
        event_dicts = [provd.event_to_dict(ev) for ev in events]
        made = [
            {"step": ev["step"], "change": ev["message"]}
            for ev in event_dicts
            if ev["kind"] == "PROGRESS" and ev["step"].startswith(SECTIONS)
        ]
        outcome = dict(
            operation=op_dict,
            operation_id=op_dict["id"],
            state=op_dict["state"],
            result=op_dict["result"],
            events=event_dicts,
            changes=made,
        )
        if op_dict["state"] != "SUCCEEDED":
            err = provd_errors.OperationFailed(final)
            fail_with(module, err, changed=bool(made), **outcome)
        module.exit_json(changed=op_dict["result"].get("changed") == "true", **outcome)
    finally:
        client.close()


if __name__ == "__main__":
    main()
