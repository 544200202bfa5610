"""Where things are, for the Ansible tests (and the Python client tests' harness on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ANSIBLE_DIR = HERE.parent
REPO = ANSIBLE_DIR.parent.parent
COLLECTION_SRC = ANSIBLE_DIR / "collections" / "ansible_collections" / "provd" / "agent"
# ansible-playbook, ansible-galaxy, ansible-doc beside this Python (the venv's).
BIN = Path(sys.executable).parent

_HARNESS = str(REPO / "deploy" / "clients" / "python" / "tests")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)


def collection_module(collections: Path, name: str):
    """`ansible_collections.provd.agent.plugins.<name>` (e.g. "modules.provd_apply") from
    the collection installed under `collections`, imported without running it."""
    import importlib

    sys.path.insert(0, str(collections))
    try:
        return importlib.import_module(f"ansible_collections.provd.agent.plugins.{name}")
    finally:
        sys.path.remove(str(collections))
