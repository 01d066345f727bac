"""Shared fixtures. Tests run single-threaded torch so parallel helpers/CI stay predictable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GOLF_AUDIT_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


def pytest_configure(config):
    # The submission-like fixture scripts are generated from one template (see make_fixtures.py).
    import importlib.util

    path = REPO / "tests" / "fixtures" / "scripts" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("golf_audit_make_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
