"""The wheel: built non-editably, it carries the prompts and codebooks and works on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def _pip(*args: str) -> None:
    proc = subprocess.run([*PIP, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = Path(__file__).resolve().parent.parent
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", "-w", str(out),
         str(root))
    wheels = list(out.glob("vsdcoder-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_bundled_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "vsdcoder/__init__.py",
        "vsdcoder/cli/main.py",
        "vsdcoder/_bundled/prompts/deductive.v1.system.jinja",
        "vsdcoder/_bundled/prompts/deductive.v1.user.jinja",
        "vsdcoder/_bundled/plugins/codebooks/sad-stressors.yaml",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "vsdcoder_example/")) for n in names)
    # no third-party data set: the only data file is the demo's written sample
    data = sorted(n for n in names if n.lower().endswith((".csv", ".xlsx", ".tsv", ".jsonl",
                                                          ".parquet", ".zip")))
    assert data == ["vsdcoder/_bundled/plugins/samples/stress-demo.csv"], data
    assert not any(n.lower().endswith("license") and "_bundled" in n for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "vsdcoder = vsdcoder.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_works_without_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "--quiet", "--target", str(target), str(wheel))
    assert (target / "vsdcoder" / "_bundled" / "prompts" / "deductive.v1.system.jinja").is_file()

    code = textwrap.dedent("""
        import json, sys
        import vsdcoder
        from vsdcoder._paths import bundled_dir
        from vsdcoder.plugins import get_registry

        loaded = vsdcoder.load_codebook("sad-stressors")
        compiled = vsdcoder.compile_codebook(loaded.codebook)
        print(json.dumps({
            "file": vsdcoder.__file__,
            "prompts": str(bundled_dir("prompts")),
            "codebook": str(get_registry().codebooks["sad-stressors"].path),
            "templates": compiled.template_paths,
            "name": compiled.codebook.name,
            "hash": compiled.hash,
        }))
    """)
    work = tmp_path / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(PYTHONPATH=str(target), VSDCODER_LOAD_PLUGINS="")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert Path(got["file"]).is_relative_to(target)
    bundled = target / "vsdcoder" / "_bundled"
    assert Path(got["prompts"]) == bundled / "prompts"
    assert Path(got["codebook"]) == bundled / "plugins" / "codebooks" / "sad-stressors.yaml"
    assert all(Path(p).is_relative_to(bundled) for p in got["templates"])
    assert got["name"] == "sad-stressors"
    assert got["hash"].startswith("sha256:")

    # the same compiled prompt as from the source checkout
    import vsdcoder

    here = vsdcoder.compile_codebook(vsdcoder.load_codebook("sad-stressors").codebook)
    assert got["hash"] == here.hash

    # and the command line runs from the wheel too
    proc = subprocess.run([sys.executable, "-m", "vsdcoder.cli.main", "codebook", "validate",
                           "sad-stressors"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK sad-stressors 1.1.0")
