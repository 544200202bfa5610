"""Test harness shared by the Python client tests and the Ansible tests: the real
`provd` binary on loopback, a PKI from `provd pki init`, and the Samba lab
(deploy/lab/lab.sh).

Environment:
  PROVD_BIN           the provd binary (default: <repo>/target/debug/provd, built
                      with `cargo build --bins` when missing)
  PROVCTL_BIN         the provctl binary (default: the one beside provd)
  PROVD_REQUIRE_LAB   1: a lab that is not up fails the lab tests instead of
                      skipping them (deploy/clients/test.sh sets it)
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import provd
from provd.v1 import service_account_pb2

REPO = Path(__file__).resolve().parents[4]
LAB_SH = REPO / "deploy" / "lab" / "lab.sh"


def provd_binary() -> Path:
    """The provd binary; `cargo build --bins` once if it is missing."""
    explicit = os.environ.get("PROVD_BIN")
    if explicit:
        return Path(explicit)
    binary = REPO / "target" / "debug" / "provd"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--bins"], cwd=REPO, check=True)
    return binary


def provctl_binary() -> Path:
    """The provctl binary: PROVCTL_BIN, else the one beside provd (it may not exist)."""
    explicit = os.environ.get("PROVCTL_BIN")
    if explicit:
        return Path(explicit)
    explicit = os.environ.get("PROVD_BIN")
    base = Path(explicit).parent if explicit else REPO / "target" / "debug"
    return base / "provctl"


def make_pki(directory: Path) -> Path:
    """`provd pki init DIR --server-dns localhost --server-ip 127.0.0.1`."""
    subprocess.run(
        [
            str(provd_binary()),
            "pki",
            "init",
            str(directory),
            "--server-dns",
            "localhost",
            "--server-ip",
            "127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return directory


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_run(count: int, start: int = 18461, stop: int = 18999) -> int:
    """The first port p >= start with p .. p+count-1 all free on 127.0.0.1."""
    for base in range(start, stop - count):
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {start}..{stop}")


@dataclass
class Lab:
    """The Samba AD lab, as `lab.sh env` describes it."""

    env: dict[str, str]

    @classmethod
    def load(cls) -> Lab:
        """The running lab, or skip (fail with PROVD_REQUIRE_LAB=1) when it is not up."""
        required = os.environ.get("PROVD_REQUIRE_LAB") == "1"
        status = subprocess.run([str(LAB_SH), "status"], capture_output=True, text=True)
        if status.returncode != 0:
            message = f"the Samba lab is not up (deploy/lab/lab.sh status):\n{status.stdout}{status.stderr}"
            if required:
                pytest.fail(message)
            pytest.skip(message)
        out = subprocess.run([str(LAB_SH), "env"], capture_output=True, text=True, check=True).stdout
        env: dict[str, str] = {}
        for line in out.splitlines():
            if line.startswith("export ") and "=" in line:
                name, _, value = line.removeprefix("export ").partition("=")
                parsed = shlex.split(value)
                env[name] = parsed[0] if parsed else ""
        return cls(env)

    def __getitem__(self, name: str) -> str:
        return self.env[name]

    @property
    def domain(self) -> str:
        return self.env["LAB_DOMAIN"]

    @property
    def dcs(self) -> list[str]:
        hosts = [self.env.get("LAB_DC1_HOST", ""), self.env.get("LAB_DC2_HOST", "")]
        count = int(self.env.get("LAB_DCS", "2"))
        return [h for h in hosts[:count] if h]

    @property
    def dns_servers(self) -> list[str]:
        return self.env["LAB_DNS_SERVERS"].split()

    def credential(self) -> provd.Credential:
        return provd.Credential(self.env["LAB_ADMIN_UPN"], self.env["LAB_PASSWORD"])

    def prepare_host(self, name: str) -> None:
        """`lab.sh prepare-host NAME`: KDS root key, computer account NAME$, minPwdAge 0."""
        subprocess.run([str(LAB_SH), "prepare-host", name], check=True, capture_output=True)

    def delete_gmsa(self, name: str) -> None:
        """Deletes CN=<name>,CN=Managed Service Accounts,<base DN> (ldapdelete over
        LDAPS as the lab admin); a missing object is fine."""
        dn = f"CN={name},CN=Managed Service Accounts,{self.env['LAB_BASE_DN']}"
        with tempfile.NamedTemporaryFile("w", prefix="lab-pw-", delete=False) as f:
            f.write(self.env["LAB_PASSWORD"])
            password_file = f.name
        try:
            env = dict(os.environ, LDAPTLS_CACERT=self.env["LAB_CA_PEM"])
            url = self.env.get("LAB_LDAPS_URLS", "ldaps://127.0.0.2").split()[0]
            done = subprocess.run(
                ["ldapdelete", "-H", url, "-x", "-D", self.env["LAB_ADMIN_DN"], "-y", password_file, dn],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode not in (0, 32):  # 32: noSuchObject
                print(f"cleanup: ldapdelete {dn}: exit {done.returncode}: {done.stderr.strip()}")
        except FileNotFoundError:
            print("cleanup: ldapdelete (ldap-utils) not found; leaving", dn)
        finally:
            os.unlink(password_file)

    def remove_gmsa(self, client: provd.Client, name: str) -> None:
        """Test cleanup: the gMSA's ACEs off the domain root (GrantPermissions REMOVE of
        PERMISSION_PROFILE_ALL through provd, trustee = the gMSA), then the account.

        ALL, not just the profiles granted: REMOVE keeps an ACE that another profile
        "also needs and is held" (BASIC_READ's Replicating Directory Changes stays when
        only BASIC_READ is removed), which would leave an orphan ACE once the account is
        deleted."""
        request = service_account_pb2.GrantPermissionsRequest(
            domain=self.domain,
            profiles=[service_account_pb2.PERMISSION_PROFILE_ALL],
            mode=service_account_pb2.GRANT_MODE_REMOVE,
            trustee=f"{name}$",
            credential=self.credential().to_proto(),
        )
        try:
            op = client.call(client.stubs.service_account.GrantPermissions, request).operation
            client.wait(op, timeout=60)
        except provd.ProvdError as e:
            print(f"cleanup: removing the ACEs of {name}$ failed: {e}")
        self.delete_gmsa(name)


def unique_gmsa(prefix: str) -> str:
    """A gMSA name unique to this run: prefix + 6 hex digits (at most 15 characters)."""
    name = f"{prefix}{secrets.token_hex(3)}"
    assert len(name) <= 15, name
    return name


class Daemon:
    """One `provd serve` on 127.0.0.1 with its own state directory."""

    def __init__(
        self,
        pki: Path,
        state_dir: Path,
        lab: Lab | None = None,
        port: int = 0,
    ) -> None:
        self.pki = pki
        self.state_dir = state_dir
        self.lab = lab
        self.requested_port = port
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(provd_binary()),
            "serve",
            "--listen",
            f"127.0.0.1:{self.requested_port}",
            "--state-dir",
            str(self.state_dir),
            "--tls-cert",
            str(self.pki / "server.pem"),
            "--tls-key",
            str(self.pki / "server.key"),
            "--tls-client-ca",
            str(self.pki / "ca.pem"),
            "--log-format",
            "json",
        ]
        if self.lab is not None:
            cmd += ["--directory-ca-file", self.lab["LAB_CA_PEM"]]
            for server in self.lab.dns_servers:
                cmd += ["--directory-dns-server", server]
        return cmd

    def start(self, timeout: float = 30.0) -> Daemon:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"provd exited with {self.process.returncode}:\n{self.log()}")
            for line in self.log().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                addr = record.get("fields", {}).get("addr")
                if addr and "serving" in record.get("fields", {}).get("message", ""):
                    self.port = int(addr.rsplit(":", 1)[1])
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"provd did not start serving within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def client(self, role: str = "admin", **kwargs: object) -> provd.Client:
        return provd.Client.from_pki_dir(self.endpoint, self.pki, role, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# -- one document through provctl and through this package --------------------------------


def plan_verdict_of_provctl(path: Path, daemon: Daemon, username: str, password_file: Path) -> tuple:
    """`provctl plan PATH` as a viewer: ("plan", [(step, action, detail)...]),
    ("document",) when provctl refuses the file itself, or ("status", CODE, message)."""
    done = subprocess.run(
        [
            str(provctl_binary()),
            "--endpoint",
            f"https://{daemon.endpoint}",
            "--pki-dir",
            str(daemon.pki),
            "--role",
            "viewer",
            "plan",
            "--output",
            "json",
            "--username",
            username,
            "--password-file",
            str(password_file),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode == 0:
        changes = []
        for line in done.stdout.splitlines():
            if line.strip():
                changes += json.loads(line).get("changes", [])
        return ("plan", [(c.get("step", ""), c.get("action", ""), c.get("detail", "")) for c in changes])
    first = done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""
    if first.startswith(f"provctl: {path}"):
        return ("document",)
    code, _, message = first.removeprefix("provctl: ").partition(": ")
    return ("status", code, message)


def plan_verdict_of_python(path: Path, daemon: Daemon, credential: provd.Credential) -> tuple:
    """The same file through provd.load_document and Client.plan, in the same shape."""
    try:
        desired = provd.load_document(path)
    except provd.DocumentError:
        return ("document",)
    with daemon.client("viewer") as client:
        try:
            changes = client.plan(desired, credential)
        except provd.errors.ProvdError as e:
            return ("status", e.code_name, e.message)
    return ("plan", [(c.step, c.action, c.detail) for c in changes])
