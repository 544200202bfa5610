#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: provd maintainers
# Apache License 2.0 (see the repository's Cargo.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provd_verify
short_description: Run provd's Verify checks on one agent host
version_added: "0.1.0"
description:
  - Runs VerifyService.Verify on one provd daemon over mutual TLS and returns every check
    (id, category, status, subject, message, remedy) and the report.
  - Fails when the report's status is FAIL (any check failed), unless O(fail_on_fail=false);
    optionally also on WARN (O(fail_on_warn)).
  - Read-only, it never changes anything, so it runs the same in check mode and always reports
    C(changed=false).
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
      - This client's certificate (PEM); any role (viewer and up) may verify.
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
      - Seconds allowed for the whole Verify call.
    type: float
    default: 30.0
  domains:
    description:
      - Only check these domains (DNS names; each must have been added). Empty checks
        every added domain. Affects the directory and writeback checks only.
    type: list
    elements: str
    default: []
  categories:
    description:
      - Only run checks of these categories. Empty runs all.
    type: list
    elements: str
    choices: [host, tenant, directory, writeback]
    default: []
  check_timeout:
    description:
      - Time limit per check in seconds (provd's default 10, from 1 to 120).
    type: float
  username:
    description:
      - Account to bind to the directories with (UPN, C(DOMAIN\\user) or a bind DN). Without
        it, directory checks may be SKIP. Used for this call only.
    type: str
  password:
    description:
      - The password of O(username).
    type: str
  fail_on_fail:
    description:
      - Fail the task when the report's status is FAIL.
    type: bool
    default: true
  fail_on_warn:
    description:
      - Fail the task when the report's status is WARN too.
    type: bool
    default: false
notes:
  - Supports check mode (it only reads).
"""

EXAMPLES = r"""
- name: Verify the directory side of the setup
  provd.agent.provd_verify:
    endpoint: "{{ inventory_hostname }}:8443"
    ca: /etc/provd/pki/ca.pem
    cert: /etc/provd/pki/client-viewer.pem
    key: /etc/provd/pki/client-viewer.key
    categories: [directory]
    username: CONTOSO\admin
    password: "{{ vault_ad_admin_password }}"
  register: verified

- name: Report everything, fail on nothing
  provd.agent.provd_verify:
    endpoint: localhost:8443
    ca: pki/ca.pem
    cert: pki/client-viewer.pem
    key: pki/client-viewer.key
    fail_on_fail: false
  register: report
"""

RETURN = r"""
checks:
  description: Every check, in the order they finished.
  returned: success or a failed report
  type: list
  elements: dict
  sample:
    - id: directory.gmsa.account
      category: DIRECTORY
      status: PASS
      subject: contoso.com
      message: provAgentgMSA$ exists and is enabled (1 principal(s) may retrieve its password)
      remedy: ""
      duration_ms: 120
      attributes: {dn: "CN=provAgentgMSA,CN=Managed Service Accounts,DC=contoso,DC=com"}
report:
  description: The summary (status, pass_count, warn_count, fail_count, skip_count, start_time, duration_ms).
  returned: success or a failed report
  type: dict
status:
  description: The report's status, PASS, WARN, FAIL or SKIP.
  returned: success or a failed report
  type: str
failed_checks:
  description: The checks with status FAIL, as C(id) or C(id@subject).
  returned: success or a failed report
  type: list
  elements: str
error:
  description: When the call itself failed, the provd error (code, message, field_violations).
  returned: failure of the call
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
    from provd import errors as provd_errors
except ImportError:
    pass  # require_provd() reports it


def label(check):
    return "%s@%s" % (check["id"], check["subject"]) if check["subject"] else check["id"]


def main():
    argument_spec = dict(CONNECTION_ARGS)
    argument_spec.update(CREDENTIAL_ARGS)
    argument_spec.update(
        domains=dict(type="list", elements="str", default=[]),
        categories=dict(
            type="list",
            elements="str",
            default=[],
            choices=["host", "tenant", "directory", "writeback"],
        ),
        check_timeout=dict(type="float"),
        fail_on_fail=dict(type="bool", default=True),
        fail_on_warn=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_together=[("username", "password")],
        supports_check_mode=True,
    )
    require_provd(module)
    p = module.params
    client = connect(module)
    try:
        try:
            result = client.verify(
                domains=p["domains"],
                credential=credential(module),
                categories=p["categories"],
                check_timeout=p["check_timeout"],
                timeout=max(p["timeout"], (p["check_timeout"] or 10.0) * 3),
            )
        except provd_errors.ProvdError as e:
            fail_with(module, e)
        data = result.to_dict()
        failed = [label(c) for c in data["checks"] if c["status"] == "FAIL"]
        outcome = dict(
            changed=False,
            checks=data["checks"],
            report=data["report"],
            status=result.status,
            failed_checks=failed,
        )
        if result.status == "FAIL" and p["fail_on_fail"]:
            module.fail_json(msg="verify FAILED: %s" % ", ".join(failed), **outcome)
        if result.status == "WARN" and p["fail_on_warn"]:
            warned = [label(c) for c in data["checks"] if c["status"] == "WARN"]
            module.fail_json(msg="verify WARNED: %s" % ", ".join(warned), **outcome)
        module.exit_json(**outcome)
    finally:
        client.close()


if __name__ == "__main__":
    main()
