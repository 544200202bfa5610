"""Fixtures for the Ansible tests: the Python client tests' harness (provd on
loopback, PKI, Samba lab) and the provd.agent collection built and installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paths import BIN, COLLECTION_SRC  # noqa: E402
from harness import Lab, make_pki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("ansible-pki") / "pki")


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab.load()


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ansible-galaxy collection build` + `install`: what a user would install."""
    out = tmp_path_factory.mktemp("galaxy")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION_SRC), "--output-path", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = next(out.glob("provd-agent-*.tar.gz"))
    installed = out / "collections"
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(installed)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (installed / "ansible_collections" / "provd" / "agent" / "plugins" / "modules" / "provd_apply.py").exists()
    return installed
