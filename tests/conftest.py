import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():  # CI clones main with shared/ beside it; sessions work in /work/main
    SHARED = Path("/work/shared")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def shared() -> Path:
    return SHARED


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch):
    """Each test sees freshly loaded plugins and no third-party entry points unless it asks."""
    from vsdcoder import plugins

    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def isolated_engine(tmp_path, monkeypatch):
    """A private response cache per test, only the built-in plugins, no price-map download."""
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
