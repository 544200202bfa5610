"""Build hook: generate provd/v1 from the repository's protos before setuptools looks
for the packages (pyproject.toml lists provd.v1).

All metadata lives in pyproject.toml. The stubs are regenerated when any proto is newer
than them or the set of protos changed; when the protos are not at hand (an sdist built
elsewhere) the stubs already in provd/v1 are used as they are.
"""

import importlib.util
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def _load_generate():
    spec = importlib.util.spec_from_file_location("provd_generate", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ensure_stubs():
    generate = _load_generate()
    protos = generate.proto_dir()
    if (protos / "provd" / "v1").is_dir():
        if generate.stale(protos, HERE):
            generate.generate(protos, HERE)
    elif not (HERE / "provd" / "v1" / "agent_pb2.py").exists():
        raise SystemExit(
            f"no protos at {protos} and no generated stubs in provd/v1: "
            "set PROVD_PROTO_DIR to the repository's proto/ directory"
        )


_ensure_stubs()
setup()
