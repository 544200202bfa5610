#!/usr/bin/env python3
"""Plan, apply and verify one desired-state document on one provd, in Python.

    apply_and_verify.py ENDPOINT PKI_DIR DOCUMENT USERNAME PASSWORD_FILE
        [--role admin] [--server-name NAME] [--plan-only]
        [--category directory ...] [--timeout SECONDS]

  ENDPOINT       provd's address, `localhost:8443` or `https://localhost:8443`
  PKI_DIR        a directory as `provd pki init` writes it (ca.pem,
                 client-<role>.pem/.key)
  DOCUMENT       the desired-state document provctl reads (.toml/.yaml/.json),
                 e.g. deploy/examples/agent-host.toml
  USERNAME       the domain admin for the directory changes (UPN, DOMAIN\\user)
  PASSWORD_FILE  its password, first line of the file (never a flag)

Prints the plan, streams the apply's events to the end, then runs Verify on
the document's domains and prints each check. Exit status: 0 done and no check
FAILed, 1 a check FAILed, 2 the apply failed or a call was refused (with the
fields provd named).

Example against the Samba lab (after `deploy/lab/lab.sh prepare-host AGENT1`):

    eval "$(deploy/lab/lab.sh env)"
    printf '%s\\n' "$LAB_PASSWORD" > /tmp/lab.pw
    python apply_and_verify.py localhost:8443 pki lab.toml "$LAB_ADMIN_UPN" /tmp/lab.pw \\
        --category directory
"""

from __future__ import annotations

import argparse
import sys

import provd
from provd import Client, Credential, OperationFailed, ProvdError


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Plan, apply and verify a desired-state document on one provd."
    )
    parser.add_argument("endpoint")
    parser.add_argument("pki_dir")
    parser.add_argument("document")
    parser.add_argument("username")
    parser.add_argument("password_file")
    parser.add_argument("--role", default="admin", choices=["admin", "operator", "viewer"])
    parser.add_argument("--server-name", help="name to verify the server certificate against")
    parser.add_argument("--plan-only", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        choices=["host", "tenant", "directory", "writeback"],
        help="only these Verify categories (repeatable; default all)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the apply")
    args = parser.parse_args()

    try:
        desired = provd.load_document(args.document)
        credential = Credential.from_file(args.username, args.password_file)
    except (provd.DocumentError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    client = Client.from_pki_dir(
        args.endpoint, args.pki_dir, args.role, server_name=args.server_name
    )
    with client:
        try:
            changes = client.plan(desired, credential)
            print(f"plan: {len(changes)} change(s)")
            for c in changes:
                print(f"  {c.step:<28} {c.action:<14} {c.detail}")
            if args.plan_only:
                return 0

            op = client.apply(desired, credential)
            print(f"apply: operation {op.id}")
            final = client.wait(
                op, on_event=lambda e: print("  " + provd.event_line(e)), timeout=args.timeout
            )
            print(
                f"apply: {provd.operation_to_dict(final)['state']}, "
                f"changed={final.result.get('changed')} changes={final.result.get('changes')}"
            )

            result = client.verify(
                domains=[d.domain for d in desired.domains],
                credential=credential,
                categories=args.category,
            )
        except OperationFailed as e:
            print(f"apply failed: {e}", file=sys.stderr)
            return 2
        except ProvdError as e:
            # e.g. INVALID_ARGUMENT with each bad field by its path
            print(f"refused: {e}", file=sys.stderr)
            return 2

    print("verify:")
    for check in result.checks:
        c = provd.check_to_dict(check)
        print(f"  {c['status']:<5} {c['id']:<32} {c['subject']:<24} {c['message']}")
        if c["remedy"]:
            print(f"        remedy: {c['remedy']}")
    report = provd.report_to_dict(result.report)
    print(
        f"verify: {report['status']} ({report['pass_count']} pass, {report['warn_count']} warn, "
        f"{report['fail_count']} fail, {report['skip_count']} skip)"
    )
    return 1 if result.status == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
