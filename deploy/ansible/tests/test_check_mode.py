"""provd_apply in check mode against one provd without the lab or a tenant session: a
desired state with a domain's `cloud_sync` is planned (the plan lists the
`cloud-sync <domain>` step), an unknown key in it fails the task naming the key, and the
changes an apply reports include that step's events (SECTIONS).

The collection as `ansible-galaxy collection build` + `install` make it, the results read
from the JSON stdout callback, as test_rollout.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paths import BIN, HERE, collection_module
from harness import Daemon

DOMAIN = "lab.example.test"
TASK = "Plan the desired state"


@pytest.fixture(scope="module")
def daemon(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    d = Daemon(pki, tmp_path_factory.mktemp("ansible-plain") / "state").start()
    yield d
    d.stop()


def run_check(daemon: Daemon, collections: Path, root: Path, desired: dict) -> tuple[int, dict, str]:
    """One play on localhost: provd_apply with `desired`, in check mode."""
    playbook = [
        {
            "name": "Plan",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": TASK,
                    "provd.agent.provd_apply": {
                        "endpoint": daemon.endpoint,
                        "ca": str(daemon.pki / "ca.pem"),
                        "cert": str(daemon.pki / "client-viewer.pem"),
                        "key": str(daemon.pki / "client-viewer.key"),
                        "desired": desired,
                        # Planning a domain not yet added reads no directory: any account.
                        "username": f"Administrator@{DOMAIN}",
                        "password": "not-a-lab-password",
                    },
                }
            ],
        }
    ]
    path = root / "plan.yml"
    path.write_text(json.dumps(playbook))
    (root / "ansible.cfg").write_text("[defaults]\n")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(root / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
        ANSIBLE_HOME=str(root / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(root / "ansible-tmp"),
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_NOCOLOR="1",
    )
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(path), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    text = done.stdout
    start = text.find("{")
    assert start >= 0, f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    output = json.loads(text[start:])
    result = next(t["hosts"]["localhost"] for p in output["plays"] for t in p["tasks"] if t["task"]["name"] == TASK)
    return done.returncode, result, done.stdout + done.stderr


def test_check_mode_lists_the_cloud_sync_step(daemon: Daemon, collections_path: Path, tmp_path: Path) -> None:
    desired = {
        "domains": [
            {
                "domain": DOMAIN,
                "cloud_sync": {
                    "enabled": True,
                    "password_hash_sync": True,
                    "organizational_units": ["OU=SyncPilot,DC=lab,DC=example,DC=test"],
                    # Templated data: a number as text is taken (lenient).
                    "accidental_deletes": {"threshold": "500"},
                },
            }
        ]
    }
    rc, result, text = run_check(daemon, collections_path, tmp_path, desired)
    assert rc == 0, text
    assert result["changed"] is True, result
    # Without a tenant session the section is one change, "the tenant is not read".
    assert [(c["step"], c["action"]) for c in result["plan"]] == [
        (f"domain {DOMAIN}", "add"),
        (f"cloud-sync {DOMAIN}", "configure"),
    ], result
    assert "tenant is not read" in result["plan"][1]["detail"]
    assert "operation" not in result, "check mode starts no operation"


def test_an_unknown_cloud_sync_key_fails_the_task(daemon: Daemon, collections_path: Path, tmp_path: Path) -> None:
    desired = {"domains": [{"domain": DOMAIN, "cloud_sync": {"enabled": True, "scope": "all"}}]}
    rc, result, text = run_check(daemon, collections_path, tmp_path, desired)
    assert rc != 0, text
    assert result["failed"] is True
    assert "domains[0].cloud_sync: unknown field `scope`" in result["msg"], result


def test_an_apply_reports_the_cloud_sync_events_as_changes(collections_path: Path) -> None:
    """The module keeps the PROGRESS events of the sections' steps as `changes`."""
    module = collection_module(collections_path, "modules.provd_apply")
    assert f"cloud-sync {DOMAIN}".startswith(module.SECTIONS)
    assert not "sign-in".startswith(module.SECTIONS), "the sign-in step is not a change"
