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
