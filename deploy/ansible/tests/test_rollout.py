"""playbooks/rollout.yml over inventories/lab.yml: three provd daemons on loopback
(own ports and state directories, one PKI, the Samba lab), the provd.agent
collection as `ansible-galaxy collection build` + `install` make it, and the
results read from the JSON stdout callback.

Runs, in order: --check (plans listed, nothing applied), apply (changed on each
host, one host per batch), apply again (nothing changed), --check again (empty
plans), and a bad document (the first host fails naming the field; the rollout
stops there).

Cleanup: each host's gMSA ACEs and account. The computer accounts PROVANS1..3$
(lab.sh prepare-host) stay.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from paths import ANSIBLE_DIR, BIN, HERE, collection_module
from harness import Daemon, Lab, free_port_run, unique_gmsa

HOSTS = ["agent1", "agent2", "agent3"]
COMPUTERS = {"agent1": "PROVANS1", "agent2": "PROVANS2", "agent3": "PROVANS3"}


class Fleet:
    def __init__(self, lab: Lab, pki: Path, root: Path, collections: Path) -> None:
        self.lab = lab
        self.pki = pki
        self.root = root
        self.collections = collections
        # PROVD_GMSA_TAG: 6 hex digits, so the gMSAs are provAn<tag>1..3.
        self.tag = unique_gmsa("")
        self.gmsa = {h: f"provAn{self.tag}{i + 1}" for i, h in enumerate(HOSTS)}
        self.port_base = free_port_run(len(HOSTS))
        self.daemons = {
            h: Daemon(pki, root / f"state-{h}", lab=lab, port=self.port_base + i)
            for i, h in enumerate(HOSTS)
        }
        (root / "ansible.cfg").write_text("[defaults]\n")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.lab.env)
        env.update(
            ANSIBLE_CONFIG=str(self.root / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(self.collections),
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
            ANSIBLE_HOME=str(self.root / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(self.root / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            PROVD_PORT_BASE=str(self.port_base),
            PROVD_PKI_DIR=str(self.pki),
            PROVD_GMSA_TAG=self.tag,
        )
        # The modules run with this Python (ansible_playbook_python): the venv's.
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def playbook(self, *args: str) -> tuple[int, dict, str]:
        started = time.monotonic()
        done = subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                str(ANSIBLE_DIR / "inventories" / "lab.yml"),
                str(ANSIBLE_DIR / "playbooks" / "rollout.yml"),
                *args,
            ],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.root,
        )
        print(f"ansible-playbook {' '.join(args)}: exit {done.returncode}, {time.monotonic() - started:.1f} s")
        text = done.stdout
        start = text.find("{")
        assert start >= 0, f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        output = json.loads(text[start:])
        assert self.lab["LAB_PASSWORD"] not in done.stdout + done.stderr, "the password leaked"
        return done.returncode, output, done.stdout + done.stderr


def results(output: dict, task_name_prefix: str) -> dict[str, dict]:
    """host -> result of the task whose name starts with the prefix, over all batches."""
    found: dict[str, dict] = {}
    for play in output["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].startswith(task_name_prefix):
                found.update(task["hosts"])
    return found


APPLY = "Apply the desired state"
VERIFY = "Verify the setup"


@pytest.fixture(scope="module")
def fleet(lab: Lab, pki: Path, collections_path: Path, tmp_path_factory: pytest.TempPathFactory):
    for computer in COMPUTERS.values():
        lab.prepare_host(computer)
    f = Fleet(lab, pki, tmp_path_factory.mktemp("fleet"), collections_path)
    try:
        for d in f.daemons.values():
            d.start()
        yield f
    finally:
        for host, d in f.daemons.items():
            if d.process is not None:
                with d.client("admin") as client:
                    lab.remove_gmsa(client, f.gmsa[host])
            d.stop()


def test_rollout(fleet: Fleet, lab: Lab) -> None:
    # 1. Check mode: each host's plan, nothing applied.
    rc, out, text = fleet.playbook("--check")
    assert rc == 0, text
    planned = results(out, APPLY)
    assert sorted(planned) == HOSTS, text
    for host, r in planned.items():
        assert r["changed"] is True, r
        assert [(c["step"], c["action"]) for c in r["plan"]] == [
            (f"domain {lab.domain}", "add"),
            ("service-account", "create"),
            ("permissions", "grant"),
        ], r
        assert fleet.gmsa[host] in r["plan"][1]["detail"]
        assert "operation" not in r, "check mode starts no operation"
    assert all(s["failures"] == 0 for s in out["stats"].values()), out["stats"]
    # Staggered: serial 1 runs every host in a batch of its own.
    batches = [sorted(t["hosts"]) for p in out["plays"] for t in p["tasks"] if t["task"]["name"].startswith(APPLY)]
    assert batches == [[h] for h in HOSTS], batches

    # 2. Apply: changed on every host, the operation's events returned, verify passes.
    rc, out, text = fleet.playbook()
    assert rc == 0, text
    applied = results(out, APPLY)
    assert sorted(applied) == HOSTS, text
    for host, r in applied.items():
        assert r["changed"] is True, r
        assert r["state"] == "SUCCEEDED"
        assert r["result"]["changed"] == "true"
        assert r["result"]["changes"] == "3"
        assert r["operation"]["kind"] == "APPLY_CONFIGURATION"
        assert r["operation_id"] == r["operation"]["id"]
        sequences = [e["sequence"] for e in r["events"]]
        assert sequences == list(range(1, r["operation"]["event_count"] + 1))
        assert [c["step"] for c in r["changes"]] == [f"domain {lab.domain}", "service-account", "permissions"]
    verified = results(out, VERIFY)
    assert sorted(verified) == HOSTS, text
    for host, r in verified.items():
        assert r["status"] in ("PASS", "WARN"), r
        assert r["failed_checks"] == []
        assert r["report"]["fail_count"] == 0
        account = [c for c in r["checks"] if c["id"] == "directory.gmsa.account"]
        assert account and account[0]["status"] == "PASS", r["checks"]
        assert fleet.gmsa[host] in account[0]["message"]
        assert any(c["id"] == "directory.permissions" and c["status"] == "PASS" for c in r["checks"])
    assert {h: s["changed"] for h, s in out["stats"].items()} == {h: 1 for h in HOSTS}

    # 3. Apply again: nothing to do anywhere.
    rc, out, text = fleet.playbook()
    assert rc == 0, text
    again = results(out, APPLY)
    assert sorted(again) == HOSTS
    for r in again.values():
        assert r["changed"] is False, r
        assert r["result"]["changed"] == "false"
        assert r["changes"] == []
    assert all(r["status"] in ("PASS", "WARN") for r in results(out, VERIFY).values())
    assert {h: s["changed"] for h, s in out["stats"].items()} == {h: 0 for h in HOSTS}

    # 4. Check mode again: empty plans, unchanged.
    rc, out, text = fleet.playbook("--check")
    assert rc == 0, text
    for r in results(out, APPLY).values():
        assert r["changed"] is False and r["plan"] == [], r

    # 5. A bad document: the first host fails naming the field, the rollout stops.
    bad = json.dumps({"provd_desired": {"domains": [{"domain": "not a domain"}]}})
    rc, out, text = fleet.playbook("-e", bad)
    assert rc != 0, text
    failed = results(out, APPLY)
    assert list(failed) == ["agent1"], text
    r = failed["agent1"]
    assert r["failed"] is True
    assert "desired.domains[0].domain" in r["msg"]
    assert r["error"]["code"] == "INVALID_ARGUMENT"
    assert "desired.domains[0].domain" in [v["field"] for v in r["error"]["field_violations"]]


# -- the modules' documentation against their argument specs -------------------------------


class _Captured(Exception):
    pass


def _argument_spec(module_name: str, collections: Path) -> tuple[dict, dict]:
    """(argument_spec, AnsibleModule kwargs) of a module, without running it."""
    mod = collection_module(collections, f"modules.{module_name}")
    seen: dict = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise _Captured

    original = mod.AnsibleModule
    mod.AnsibleModule = fake
    try:
        with pytest.raises(_Captured):
            mod.main()
    finally:
        mod.AnsibleModule = original
    return seen["argument_spec"], seen


@pytest.mark.parametrize("module_name", ["provd_apply", "provd_status", "provd_verify"])
def test_the_documentation_matches_the_argument_spec(module_name: str, collections_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", "-t", "module", f"provd.agent.{module_name}"],
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path)),
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(done.stdout)[f"provd.agent.{module_name}"]
    assert doc["examples"].strip() and doc["return"]
    options = doc["doc"]["options"]
    spec, kwargs = _argument_spec(module_name, collections_path)
    assert kwargs["supports_check_mode"] is True
    assert sorted(options) == sorted(spec)
    for name, arg in spec.items():
        documented = options[name]
        assert documented.get("type", "str") == arg.get("type", "str"), name
        assert bool(documented.get("required", False)) == bool(arg.get("required", False)), name
        if "default" in arg:
            assert documented.get("default") == arg["default"], name
        if "choices" in arg:
            assert documented.get("choices") == arg["choices"], name
        if "elements" in arg:
            assert documented.get("elements") == arg["elements"], name
    if "password" in spec:  # provd_status takes no credential
        assert spec["password"]["no_log"] is True


def test_a_missing_client_package_is_named(collections_path: Path) -> None:
    """Without provd-client the modules fail saying what to install."""
    utils = collection_module(collections_path, "module_utils.provd_client")

    class Module:
        def fail_json(self, **kwargs):
            self.failed = kwargs
            raise _Captured

    module = Module()
    saved = utils.HAS_PROVD
    utils.HAS_PROVD = False
    try:
        with pytest.raises(_Captured):
            utils.require_provd(module)
    finally:
        utils.HAS_PROVD = saved
    assert "provd-client" in module.failed["msg"]
    assert "pip install deploy/clients/python" in module.failed["msg"]
