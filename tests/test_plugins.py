"""Plugins: the installable example package end to end, broken plugins, name collisions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from vsdcoder import plugins
from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.hookspecs import hookimpl

EXAMPLE_HOOKS = ["register_codebooks", "register_commands", "register_exporters",
                 "register_metrics", "register_template_dirs"]


# --- the example package, installed with pip and used from a subprocess ----------------------

@pytest.fixture(scope="module")
def example_target(tmp_path_factory) -> Path:
    """tests/test_package installed with pip into a folder of its own (no network needed)."""
    src = Path(__file__).parent / "test_package"
    target = tmp_path_factory.mktemp("example-plugin")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
         str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "vsdcoder_example" / "codebooks" / "example-sentiment.yaml").is_file()
    assert (target / "vsdcoder_example" / "templates" / "example.v1.system.jinja").is_file()
    return target


def run_cli(args: list[str], target: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m vsdcoder.cli.main ARGS`` with the example plugin importable."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("VSDCODER_LOAD_PLUGINS", "PYTHONPATH")}
    full_env["PYTHONPATH"] = str(target)
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "vsdcoder.cli.main", *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=120)


def test_example_plugin_is_listed(example_target, tmp_path):
    proc = run_cli(["plugins", "--json"], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["errors"] == []
    by_name = {p["name"]: p for p in data["plugins"]}
    ex = by_name["example"]
    assert ex["distribution"] == "vsdcoder-example"
    assert ex["version"] == "0.1.0"
    assert ex["hooks"] == EXAMPLE_HOOKS
    assert ex["registers"] == {
        "codebooks": ["example-sentiment"],
        "metrics": ["example_percent_agreement"],
        "exporters": ["example-json"],
        "templates": ["example.v1"],
    }
    # the built-ins are listed too, first, through the same hooks
    assert by_name["vsdcoder.builtins.codebooks"]["distribution"] == "vsdcoder (built-in)"
    assert data["plugins"][-1]["name"] == "example"


def test_example_plugin_table(example_target, tmp_path):
    proc = run_cli(["plugins"], example_target, tmp_path, COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    assert "vsdcoder-example" in proc.stdout
    assert "example-sentiment" in proc.stdout
    assert proc.stderr == ""


def test_example_codebook_listed(example_target, tmp_path):
    proc = run_cli(["codebook", "list", "--json"], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    ex = rows["example-sentiment"]
    assert ex["plugin"] == "example"
    assert ex["ok"] is True
    assert ex["version"] == "0.1.0"
    assert Path(ex["path"]).is_relative_to(example_target)
    assert rows["sad-stressors"]["plugin"] == "vsdcoder.builtins.codebooks"


def test_example_codebook_validates(example_target, tmp_path):
    proc = run_cli(["codebook", "validate", "example-sentiment"], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK example-sentiment 0.1.0")
    assert "3 codable codes" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_example_codebook_compiles_with_plugin_template(example_target, tmp_path):
    proc = run_cli(["codebook", "show", "example-sentiment", "--json"], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["name"] == "example-sentiment"
    assert data["template"] == "example.v1"
    system, user = data["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("[example.v1 template from vsdcoder-example]")
    assert "- mixed: The writer names clear good and bad points" in system["content"]
    assert user["role"] == "user"
    assert user["content"].startswith("Review:")
    assert "{text}" in user["content"]
    assert data["hash"].startswith("sha256:")
    assert "sentiment" in json.dumps(data["schema"])


def test_example_exporter(example_target, tmp_path):
    out = tmp_path / "cb.json"
    proc = run_cli(["codebook", "export", "example-sentiment", "-f", "example-json", "-o",
                    str(out)], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["name"] == "example-sentiment"
    assert [c["name"] for c in data["dimensions"][0]["codes"]] == ["positive", "negative", "mixed"]


def test_example_metric(example_target, tmp_path):
    code = textwrap.dedent("""
        from vsdcoder.plugins import get_registry
        entry = get_registry().metrics["example_percent_agreement"]
        print(entry.plugin, entry.obj(["a", "b", "a", "c"], ["a", "b", "c", "c"]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "VSDCODER_LOAD_PLUGINS"}
    env["PYTHONPATH"] = str(example_target)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["example", "0.75"]


def test_example_command(example_target, tmp_path):
    proc = run_cli(["example-hello"], example_target, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Hello, world, from vsdcoder-example!"
    proc = run_cli(["example-hello", "--name", "Ada"], example_target, tmp_path)
    assert proc.stdout.strip() == "Hello, Ada, from vsdcoder-example!"
    helptext = run_cli(["--help"], example_target, tmp_path).stdout
    assert "example-hello" in helptext


def test_load_plugins_empty_means_none(example_target, tmp_path):
    proc = run_cli(["plugins", "--json"], example_target, tmp_path, VSDCODER_LOAD_PLUGINS="")
    assert proc.returncode == 0, proc.stderr
    names = [p["name"] for p in json.loads(proc.stdout)["plugins"]]
    assert "example" not in names
    assert "vsdcoder.builtins.codebooks" in names  # built-ins always load

    proc = run_cli(["codebook", "list", "--json"], example_target, tmp_path,
                   VSDCODER_LOAD_PLUGINS="")
    names = [r["name"] for r in json.loads(proc.stdout)]
    assert "sad-stressors" in names
    assert "example-sentiment" not in names

    proc = run_cli(["example-hello"], example_target, tmp_path, VSDCODER_LOAD_PLUGINS="")
    assert proc.returncode == 2
    assert "No such command" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run_cli(["codebook", "validate", "example-sentiment"], example_target, tmp_path,
                   VSDCODER_LOAD_PLUGINS="")
    assert proc.returncode == 2
    assert "no codebook file or registered codebook named 'example-sentiment'" in proc.stderr


def test_load_plugins_by_name(example_target, tmp_path):
    proc = run_cli(["plugins", "--json"], example_target, tmp_path,
                   VSDCODER_LOAD_PLUGINS="other, example")
    assert "example" in [p["name"] for p in json.loads(proc.stdout)["plugins"]]
    proc = run_cli(["plugins", "--json"], example_target, tmp_path,
                   VSDCODER_LOAD_PLUGINS="other")
    assert "example" not in [p["name"] for p in json.loads(proc.stdout)["plugins"]]


# --- broken plugins: reported, never a crash ---------------------------------------------------

def make_dist(where: Path, dist: str, ep_name: str, module: str, source: str) -> None:
    """A minimal installed distribution (a module plus its .dist-info) under ``where``."""
    (where / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = where / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[vsdcoder]\n{ep_name} = {module}\n",
                                           encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh folder on sys.path for fake installed plugins; their modules are forgotten after."""
    where = tmp_path / "site"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    monkeypatch.delenv("VSDCODER_LOAD_PLUGINS", raising=False)
    before = set(sys.modules)
    yield where
    for name in set(sys.modules) - before:
        if name.startswith("vsdcoder_fake_"):
            del sys.modules[name]


def test_plugin_import_error_is_a_warning(site, capsys):
    make_dist(site, "vsdcoder-broken", "broken", "vsdcoder_fake_broken",
              'raise RuntimeError("boom [not markup]")\n')
    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert "(built-in)" in out
    assert ("warning: plugin 'broken' (vsdcoder_fake_broken) failed to load: "
            "RuntimeError: boom [not markup]") in err
    assert "Traceback" not in out + err

    assert main(["plugins", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert "broken" not in [p["name"] for p in data["plugins"]]
    assert data["errors"] == ["plugin 'broken' (vsdcoder_fake_broken) failed to load: "
                              "RuntimeError: boom [not markup]"]

    # everything else keeps working
    assert main(["codebook", "validate", "sad-stressors"]) == 0
    assert main(["--help"]) == 0


def test_plugin_hook_error_is_a_warning(site, capsys):
    make_dist(site, "vsdcoder-badhook", "badhook", "vsdcoder_fake_badhook", """
        from vsdcoder.hookspecs import hookimpl

        @hookimpl
        def register_metrics(register):
            raise ValueError("metric setup failed")

        @hookimpl
        def register_commands(cli):
            raise ImportError("no such thing")
    """)
    assert main(["plugins", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    bad = {p["name"]: p for p in data["plugins"]}["badhook"]
    assert bad["distribution"] == "vsdcoder-badhook"
    assert bad["version"] == "0.0.1"
    assert "plugin 'badhook' failed in register_metrics: ValueError: metric setup failed" \
        in data["errors"]
    assert "plugin 'badhook' failed in register_commands: ImportError: no such thing" \
        in data["errors"]
    assert "warning: plugin 'badhook' failed in register_metrics" in err


def test_entry_point_plugin_in_process(site, capsys):
    make_dist(site, "vsdcoder-fake-ok", "fakeok", "vsdcoder_fake_ok", """
        from vsdcoder.hookspecs import hookimpl

        @hookimpl
        def register_coders(register):
            register("fake-coder", object)
    """)
    reg = plugins.get_registry()
    assert reg.coders["fake-coder"].plugin == "fakeok"
    info = {p["name"]: p for p in plugins.list_plugins()}["fakeok"]
    assert (info["distribution"], info["version"], info["hooks"]) == (
        "vsdcoder-fake-ok", "0.0.1", ["register_coders"])


# --- name collisions: a clear UsageError ----------------------------------------------------

def codebook_plugin(name: str, path: Path, cb_name: str | None = None) -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def register_codebooks(register):
        register(path, name=cb_name)

    mod.register_codebooks = register_codebooks
    return mod


def write_codebook(path: Path, name: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        vsdcoder: 1
        name: {name}
        dimensions:
          - name: topic
            question: What is it about?
            codes:
              - name: a
                definition: A.
              - name: b
                definition: B.
    """), encoding="utf-8")
    return path


def test_same_codebook_from_two_plugins(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    plugins.reset()
    pm = plugins.get_plugin_manager()
    pm.register(codebook_plugin("plug_a", write_codebook(tmp_path / "a.yaml", "dup")),
                name="plug-a")
    pm.register(codebook_plugin("plug_b", write_codebook(tmp_path / "b.yaml", "dup")),
                name="plug-b")
    with pytest.raises(UsageError, match="codebook 'dup' is registered by both 'plug-a'") as ei:
        plugins.get_registry()
    assert "'plug-b'" in str(ei.value)
    assert str(tmp_path / "b.yaml") in str(ei.value)

    # the CLI reports it as a message and exit code 2, not a traceback
    assert main(["codebook", "list"]) == 2
    _out, err = capsys.readouterr()
    assert err.startswith("error: codebook 'dup' is registered by both 'plug-a'")
    assert "Traceback" not in err


def test_plugin_codebook_clashing_with_builtin(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    plugins.reset()
    pm = plugins.get_plugin_manager()
    pm.register(codebook_plugin("plug_c", write_codebook(tmp_path / "c.yaml", "whatever"),
                                cb_name="sad-stressors"), name="plug-c")
    with pytest.raises(UsageError, match=r"codebook 'sad-stressors' is registered by both "
                                         r"'vsdcoder\.builtins\.codebooks'"):
        plugins.get_registry()


def test_same_metric_from_two_plugins(monkeypatch):
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    plugins.reset()
    pm = plugins.get_plugin_manager()
    for plugin_name in ("m-one", "m-two"):
        mod = types.ModuleType(plugin_name)

        @hookimpl
        def register_metrics(register):
            register("kappa", lambda a, b: 0.0)

        mod.register_metrics = register_metrics
        pm.register(mod, name=plugin_name)
    with pytest.raises(UsageError, match="metric 'kappa' is registered by both 'm-one' and "
                                         "'m-two'"):
        plugins.get_registry()


def test_in_process_plugin_adds_command_once(monkeypatch, capsys):
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    plugins.reset()
    mod = types.ModuleType("cmdplug")

    @hookimpl
    def register_commands(cli):
        @cli.command("ping")
        def ping() -> None:
            """Answer pong."""
            print("pong")

    mod.register_commands = register_commands
    plugins.get_plugin_manager().register(mod, name="cmdplug")
    for _ in range(2):  # main() builds a fresh app each time
        assert main(["ping"]) == 0
        assert capsys.readouterr().out == "pong\n"
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.count(" ping ") == 1
    info = {p["name"]: p for p in plugins.list_plugins()}["cmdplug"]
    assert info["distribution"] == "(unknown)"


# --- the quick look for installed plugins, which lets --help skip importlib.metadata ----------

def test_quick_scan_for_entry_points(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    others = tmp_path / "others"
    others.mkdir()
    info = others / "something-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[console_scripts]\nsomething = x:main\n")
    (others / "noentry-2.0.dist-info").mkdir()

    monkeypatch.setattr(sys, "path", [str(empty), str(others), str(tmp_path / "missing")])
    assert plugins._maybe_has_entry_points() is False

    ours = tmp_path / "ours"
    ours.mkdir()
    make_dist(ours, "vsdcoder-fake-scan", "scan", "vsdcoder_fake_scan", "")
    monkeypatch.setattr(sys, "path", [str(empty), str(ours)])
    assert plugins._maybe_has_entry_points() is True

    egg = tmp_path / "vsdcoder_fake_egg-1.0.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[ vsdcoder ]\negg = vsdcoder_fake_egg\n")
    monkeypatch.setattr(sys, "path", [str(egg)])
    assert plugins._maybe_has_entry_points() is True

    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert plugins._maybe_has_entry_points() is True  # unsure: let importlib.metadata decide


def test_quick_scan_agrees_with_importlib_metadata():
    from importlib.metadata import entry_points

    if list(entry_points(group="vsdcoder")):
        assert plugins._maybe_has_entry_points() is True
    # when it says False, there really is nothing to load
    if not plugins._maybe_has_entry_points():
        assert list(entry_points(group="vsdcoder")) == []


def test_help_without_plugins_skips_importlib_metadata(tmp_path):
    """With no plugin installed, ``--help`` does not pay for importing importlib.metadata."""
    code = ("import sys\nfrom vsdcoder.plugins import _maybe_has_entry_points\n"
            "if _maybe_has_entry_points():\n    print('SKIP')\n    raise SystemExit\n"
            "from vsdcoder.cli.main import main\nmain(['--help'])\n"
            "print('METADATA', 'importlib.metadata' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("VSDCODER_LOAD_PLUGINS", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.strip() == "SKIP":
        # waits for an environment without third-party vsdcoder plugins: the quick scan must
        # answer True there, which test_example_plugin_is_listed already covers
        pytest.skip("waits for an environment with no third-party vsdcoder plugin installed")
    assert proc.stdout.rstrip().endswith("METADATA False")
