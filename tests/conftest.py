import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent

#: The team's shared material (reference texts, REFI samples, published reliability vectors,
#: the human-coded data sets). It is never part of the repository: tests that need it run when it
#: is found and otherwise skip, naming what they need. ``VSDCODER_SHARED`` points at it; by
#: default it is ``shared/`` beside the checkout, where CI lays it.
SHARED_ENV = "VSDCODER_SHARED"
#: Set (to anything but "" or "0") to turn those skips into failures: .ci/run sets it, because
#: CI has shared/ and must run every test that needs it.
REQUIRE_ENV = "VSDCODER_REQUIRE_SHARED"


def shared_root() -> Path:
    """Where the shared material is looked for (it may not exist)."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).expanduser() if env else ROOT.parent / "shared"


def shared_missing(*parts: str) -> str | None:
    """Why ``shared_root()/parts`` cannot be used, or None when it exists."""
    path = shared_root().joinpath(*parts)
    if path.exists():
        return None
    rel = "/".join(("shared", *parts))
    return (f"needs {rel} (the team's shared material, not part of the repository): "
            f"not found at {path}; set {SHARED_ENV}=DIR to point at it")


def need_shared(*parts: str) -> Path:
    """The path ``shared/<parts>``; skips the test (fails it under CI) when it is missing.

    Usable inside a test or fixture, and at collection time through :func:`shared_param`.
    """
    why = shared_missing(*parts)
    if why:
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{why} ({REQUIRE_ENV} is set: shared material must be present)")
        pytest.skip(why)
    return shared_root().joinpath(*parts)


#: Set (to anything but "" or "0") to turn skips of tests that need root and mount namespaces
#: into failures: .ci/run sets it, because CI runs as root and must run them.
PRIVILEGED_ENV = "VSDCODER_REQUIRE_PRIVILEGED"


def skip_unprivileged(why: str) -> None:
    """Skip a test that needs privileges this machine does not give (fail it under CI).

    Args:
        why: What is missing, e.g. "needs root and `unshare -m` to mount a tmpfs: uid 1000".
    """
    if os.environ.get(PRIVILEGED_ENV, "") not in ("", "0"):
        pytest.fail(f"{why} ({PRIVILEGED_ENV} is set: this machine must run it)")
    pytest.skip(why)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def shared() -> Path:
    """The shared folder; skips (fails under CI) when there is none."""
    return need_shared()


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
