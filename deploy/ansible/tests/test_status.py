"""provd_status over an inventory of provd daemons (no lab), one task per host: each host's
result is the row `provctl fleet status --output json` prints for it, and the play fails
exactly the hosts provctl counts as failed (here: the Linux daemons for HOST_UNAVAILABLE, a
daemon whose last operation FAILED for that too, a dead endpoint as UNREACHABLE); with
`fail_on_fail: false` nothing fails and the reasons are still reported.

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

from paths import BIN, HERE
from harness import Daemon, free_port_run, provctl_binary

from provd.v1 import agent_pb2

TASK = "Read the status"


@pytest.fixture(scope="module")
def daemons(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    started = [Daemon(pki, tmp_path_factory.mktemp(f"ansible-status{i}") / "state").start() for i in range(2)]
    with started[1].client("admin") as client:
        op = client.call(
            client.stubs.agent.Install,
            agent_pb2.InstallRequest(
                source="file:///nonexistent/agent.msi", sha256="0" * 64, accept_license=True
            ),
        ).operation
        client.watch(op, timeout=30)
    yield started
    for d in started:
        d.stop()


def run_status(
    endpoints: dict[str, str], pki: Path, collections: Path, root: Path, fail_on_fail: bool
) -> tuple[int, dict[str, dict], str]:
    inventory = {
        "all": {
            "hosts": {name: {"provd_endpoint": endpoint} for name, endpoint in endpoints.items()},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
    playbook = [
        {
            "name": "Status",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": TASK,
                    "provd.agent.provd_status": {
                        "endpoint": "{{ provd_endpoint }}",
                        "ca": str(pki / "ca.pem"),
                        "cert": str(pki / "client-viewer.pem"),
                        "key": str(pki / "client-viewer.key"),
                        "timeout": 5,
                        "fail_on_fail": fail_on_fail,
                    },
                }
            ],
        }
    ]
    (root / "inventory.json").write_text(json.dumps(inventory))
    (root / "status.yml").write_text(json.dumps(playbook))
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
        ANSIBLE_NOCOLOR="1",
    )
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(root / "inventory.json"), str(root / "status.yml"), "--check"],
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
    results = next(t["hosts"] for p in output["plays"] for t in p["tasks"] if t["task"]["name"] == TASK)
    return done.returncode, results, done.stdout + done.stderr


def test_the_play_fails_the_hosts_provctl_fails(
    daemons: list[Daemon], pki: Path, collections_path: Path, tmp_path: Path
) -> None:
    dead = free_port_run(1, start=18950)
    endpoints = {"h0": daemons[0].endpoint, "h1": daemons[1].endpoint, "down": f"localhost:{dead}"}
    rc, results, text = run_status(endpoints, pki, collections_path, tmp_path, fail_on_fail=True)
    assert rc != 0, text

    # provctl over the same hosts, as an inventory of its own.
    inventory = tmp_path / "hosts.toml"
    inventory.write_text(
        f"[defaults]\nca = '{pki}/ca.pem'\ncert = '{pki}/client-viewer.pem'\nkey = '{pki}/client-viewer.key'\n\n"
        + "".join(f'[[hosts]]\nname = "{e}"\nendpoint = "{e}"\n\n' for e in endpoints.values())
    )
    done = subprocess.run(
        [str(provctl_binary()), "--output", "json", "fleet", "status", "--inventory", str(inventory), "--timeout", "5s"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = {row["host"]: row for row in json.loads(done.stdout)}
    for name, endpoint in endpoints.items():
        result, row = results[name], rows[endpoint]
        assert result["failed"] is row["failed"] is True, (result, row)
        assert result["changed"] is False
        assert [r.split(":")[0] for r in result["reasons"]] == [r.split(":")[0] for r in row["reasons"]]
        if row["status"] != "UNREACHABLE":
            assert result["host_status"] == row, name
    assert [r.split(":")[0] for r in results["h1"]["reasons"]] == ["HOST_UNAVAILABLE", "LAST_OPERATION_FAILED"]
    assert results["down"]["status"] == "UNREACHABLE"


def test_fail_on_fail_false_only_reports(
    daemons: list[Daemon], pki: Path, collections_path: Path, tmp_path: Path
) -> None:
    rc, results, text = run_status({"h0": daemons[0].endpoint}, pki, collections_path, tmp_path, fail_on_fail=False)
    assert rc == 0, text
    result = results["h0"]
    assert result.get("failed", False) is False
    assert result["status"] == "FAIL"
    assert result["reasons"][0].startswith("HOST_UNAVAILABLE")
    assert result["host_status"]["drift_watch"] == "OFF"
