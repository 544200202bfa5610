"""Fixtures: a PKI, a provd daemon (no lab needed), the Samba lab."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Daemon, Lab, make_pki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture(scope="session")
def daemon(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    """A provd without the lab: transport, roles, validation."""
    d = Daemon(pki, tmp_path_factory.mktemp("plain") / "state").start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab.load()
