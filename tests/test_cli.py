"""The ``vsdcoder`` command line, called in process through ``vsdcoder.cli.main.main``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from vsdcoder import __version__
from vsdcoder.cli.main import build_app, main

SAD = Path(__file__).resolve().parent.parent / "plugins" / "codebooks" / "sad-stressors.yaml"
SAD_VERSION = yaml.safe_load(SAD.read_text(encoding="utf-8"))["version"]


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch):
    """Only the built-in plugins, whatever else is installed."""
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_help(capsys):
    rc, out, _err = run(capsys, "--help")
    assert rc == 0
    assert out.startswith("Usage: vsdcoder [OPTIONS] COMMAND [ARGS]...")
    for command in ("codebook", "plugins", "demo"):
        assert f"  {command} " in out
    assert "--version" in out
    assert run(capsys, "-h")[1] == out


def test_help_of_group(capsys):
    rc, out, _ = run(capsys, "codebook", "--help")
    assert rc == 0
    for command in ("list", "validate", "show", "export", "import"):
        assert f"  {command} " in out


def test_no_args_shows_help(capsys):
    rc, out, err = run(capsys, )
    assert rc == 2  # click's convention for a missing command
    assert "Usage: vsdcoder" in out + err


def test_version(capsys):
    rc, out, err = run(capsys, "--version")
    assert rc == 0
    assert out == f"vsdcoder {__version__}\n"
    assert err == ""


def test_unknown_command_and_option(capsys):
    rc, _out, err = run(capsys, "nope")
    assert rc == 2
    assert "No such command 'nope'" in err
    assert "Traceback" not in err
    rc, _out, err = run(capsys, "codebook", "show", "sad-stressors", "--bogus")
    assert rc == 2
    assert "No such option: --bogus" in err


def test_main_twice_and_build_app_fresh(capsys):
    assert main(["--version"]) == 0
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vsdcoder {__version__}\n" * 2
    a, b = build_app(), build_app()
    assert a is not b
    assert len(a.registered_groups) == len(b.registered_groups) >= 1
    assert len(a.registered_commands) == len(b.registered_commands)
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    assert out.count("  codebook ") == 1
    assert out.count("  plugins ") == 1


def test_codebook_list(capsys):
    rc, out, _err = run(capsys, "codebook", "list")
    assert rc == 0
    assert "sad-stressors" in out
    assert SAD_VERSION in out
    rc, out, _err = run(capsys, "codebook", "list", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == sorted(rows)
    row = rows["sad-stressors"]
    assert row["version"] == SAD_VERSION
    assert row["plugin"] == "vsdcoder.builtins.codebooks"
    assert row["ok"] is True
    assert row["path"].endswith("sad-stressors.yaml")


def test_codebook_validate_registered(capsys):
    rc, out, err = run(capsys, "codebook", "validate", "sad-stressors")
    assert rc == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"OK sad-stressors \S+: unit document, 1 dimension, 9 codable codes, "
                        r"\d+ examples?, 0 warnings", lines[0]), lines[0]
    assert lines[1].startswith("  stressor: single, 9 codes")
    assert lines[-1].startswith("  prompt sha256:")


def test_codebook_validate_file(capsys, root):
    path = root / "plugins" / "codebooks" / "sad-stressors.yaml"
    rc, out, err = run(capsys, "codebook", "validate", str(path))
    assert rc == 0, err
    assert out.startswith(f"OK sad-stressors {SAD_VERSION}")


def test_codebook_validate_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.yaml"
    rc, out, err = run(capsys, "codebook", "validate", str(missing))
    assert rc == 2
    assert out == ""
    assert err == f"error: {missing}: no such codebook file\n"


def test_codebook_validate_unknown_name(capsys):
    rc, out, err = run(capsys, "codebook", "validate", "no-such-codebook")
    assert rc == 2
    assert out == ""
    assert err.startswith("error: no codebook file or registered codebook named "
                          "'no-such-codebook'; registered: ")
    assert "sad-stressors" in err
    assert "Traceback" not in err


def test_codebook_validate_invalid(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vsdcoder: 1\nname: bad\ndimensions:\n  - name: d\n    qestion: x\n"
                   "    codes: [{name: a}]\n", encoding="utf-8")
    rc, _out, err = run(capsys, "codebook", "validate", str(bad))
    assert rc == 2
    assert f"{bad}:5:" in err
    assert "did you mean 'question'?" in err
    assert "Traceback" not in err


def test_codebook_show(capsys):
    rc, out, err = run(capsys, "codebook", "show", "sad-stressors")
    assert rc == 0, err
    assert out.startswith(f"sad-stressors {SAD_VERSION}")
    assert "system message" in out
    assert "user message" in out
    assert "response schema" in out
    assert "{text}" in out


def test_codebook_show_json(capsys):
    rc, out, err = run(capsys, "codebook", "show", "sad-stressors", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert {"name", "version", "hash", "messages", "schema"} <= set(data)
    assert data["name"] == "sad-stressors"
    assert data["version"] == SAD_VERSION
    assert data["hash"].startswith("sha256:")
    assert [m["role"] for m in data["messages"]] == ["system", "user"]
    assert all(set(m) == {"role", "content"} for m in data["messages"])
    system, user = (m["content"] for m in data["messages"])
    assert "{text}" in user
    assert "{text}" not in system
    assert "`financial_problem`" in system
    assert data["schema"]["type"] == "object"
    assert "stressor" in data["schema"]["properties"]
    # deterministic: the same codebook compiles to the same hash
    rc, out2, _ = run(capsys, "codebook", "show", "sad-stressors", "--json")
    assert json.loads(out2)["hash"] == data["hash"]


def test_codebook_show_unknown(capsys):
    rc, _out, err = run(capsys, "codebook", "show", "nope")
    assert rc == 2
    assert err.startswith("error: no codebook file or registered codebook named 'nope'")


def test_codebook_export_unknown_format(capsys, tmp_path):
    rc, _out, err = run(capsys, "codebook", "export", "sad-stressors", "-f", "nope", "-o",
                       str(tmp_path / "x"))
    assert rc == 2
    assert err.startswith("error: unknown export format 'nope'; available: ")
    assert "qdc" in err


def test_plugins(capsys):
    rc, out, err = run(capsys, "plugins")
    assert rc == 0
    assert "vsdcoder plugins" in out
    for name in ("vsdcoder.builtins.codebooks", "vsdcoder.builtins.templates",
                 "vsdcoder.builtins.exporters"):
        assert name in out
    assert "sad-stressors" in out
    assert err == ""


def test_plugins_json(capsys):
    rc, out, _err = run(capsys, "plugins", "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["errors"] == []
    by_name = {p["name"]: p for p in data["plugins"]}
    from vsdcoder.plugins import DEFAULT_PLUGINS

    assert set(by_name) == set(DEFAULT_PLUGINS)
    assert {"vsdcoder.builtins.codebooks", "vsdcoder.builtins.templates",
            "vsdcoder.builtins.exporters"} <= set(by_name)
    cb = by_name["vsdcoder.builtins.codebooks"]
    assert "sad-stressors" in cb.pop("registers")["codebooks"]
    assert cb == {"name": "vsdcoder.builtins.codebooks", "distribution": "vsdcoder (built-in)",
                  "version": __version__, "hooks": ["register_codebooks"]}
    assert "deductive.v1" in by_name["vsdcoder.builtins.templates"]["registers"]["templates"]
    assert "qdc" in by_name["vsdcoder.builtins.exporters"]["registers"]["exporters"]


def test_demo_help(capsys):
    # `vsdcoder demo` itself codes a sample with a model (the embedded one by default), which
    # takes minutes; the coding engine's own tests cover that path. Here: the command exists.
    rc, out, err = run(capsys, "demo", "--help")
    assert rc == 0, err
    assert out.startswith("Usage: vsdcoder demo [OPTIONS]")


def test_python_m(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "VSDCODER_LOAD_PLUGINS": ""}
    proc = subprocess.run([sys.executable, "-m", "vsdcoder.cli.main", "--version"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"vsdcoder {__version__}\n"
    proc = subprocess.run([sys.executable, "-m", "vsdcoder.cli.main", "codebook", "validate",
                           "nope"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


HEAVY = ("pydantic", "pydantic_core", "litellm", "instructor", "jinja2", "yaml", "numpy",
         "pandas", "httpx", "openai", "vsdcoder.codebook")


def _modules_after(code: str, tmp_path) -> set[str]:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "VSDCODER_LOAD_PLUGINS"}
    full = (f"import json, sys\n{code}\n"
            "print('\\nMODULES=' + json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", full], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.rsplit("\nMODULES=", 1)[1]
    return set(json.loads(line))


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_imports_nothing_heavy(tmp_path):
    """``vsdcoder --help`` (which builds the whole app, plugins included) stays lean."""
    mods = _modules_after("from vsdcoder.cli.main import main\nassert main(['--help']) == 0",
                          tmp_path)
    assert "vsdcoder.plugins" in mods  # the app really was built, plugins loaded
    assert _heavy(mods) == []


def test_version_and_import_are_lean(tmp_path):
    mods = _modules_after("from vsdcoder.cli.main import main\nassert main(['--version']) == 0",
                          tmp_path)
    assert _heavy(mods) == []
    mods = _modules_after("import vsdcoder\nvsdcoder.__version__", tmp_path)
    assert _heavy(mods) == []
    assert "typer" not in mods
    assert "pluggy" not in mods
