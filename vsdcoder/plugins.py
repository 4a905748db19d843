"""Load plugins (built-ins first, then ``vsdcoder`` entry points) and collect what they register.

``VSDCODER_LOAD_PLUGINS`` limits which entry points load: a comma-separated list of names, or an
empty string for none. Built-in plugins always load.

A plugin that fails to import, or whose hook raises, is skipped and reported (``vsdcoder
plugins`` prints a warning); two plugins registering the same name is a :class:`UsageError`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from vsdcoder import hookspecs
from vsdcoder.errors import UsageError

#: Built-in plugin modules, registered through the same hooks as third-party plugins.
DEFAULT_PLUGINS = (
    "vsdcoder.builtins.templates",
    "vsdcoder.builtins.codebooks",
    "vsdcoder.builtins.exporters",
    "vsdcoder.builtins.coders",
    "vsdcoder.builtins.metrics",
    "vsdcoder.builtins.redactors",
)
ENTRY_POINT_GROUP = "vsdcoder"
BUILTIN_DISTRIBUTION = "vsdcoder (built-in)"


@dataclass(frozen=True)
class Entry:
    """Something a plugin registered: its name, the object, and which plugin it came from."""

    name: str
    obj: Any
    plugin: str
    path: Path | None = None


@dataclass
class Registry:
    """Everything registered by the loaded plugins, by kind."""

    codebooks: dict[str, Entry] = field(default_factory=dict)
    template_dirs: list[Path] = field(default_factory=list)
    coders: dict[str, Entry] = field(default_factory=dict)
    redactors: dict[str, Entry] = field(default_factory=dict)
    metrics: dict[str, Entry] = field(default_factory=dict)
    exporters: dict[str, Entry] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)
    #: Which plugin registered each template folder (``name`` is the folder path).
    template_sources: list[Entry] = field(default_factory=list)

    def templates_of(self, plugin: str) -> list[str]:
        """Names of the templates (``NAME.vN``) in the folders ``plugin`` registered."""
        names = set()
        for src in self.template_sources:
            if src.plugin == plugin and src.path is not None and src.path.is_dir():
                names |= {p.name.removesuffix(".system.jinja")
                          for p in src.path.glob("*.system.jinja")}
        return sorted(names)


_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
#: Problems met while loading plugins (a failed import, a hook that raised).
_errors: list[str] = []
#: Entry-point plugin name -> (distribution name, version).
_dists: dict[str, tuple[str, str]] = {}


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created and loaded on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("vsdcoder")
        pm.add_hookspecs(hookspecs)
        for mod in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(mod), name=mod)
        _load_entry_points(pm)
        _pm = pm
    return _pm


def _declares_group(path: str) -> bool:
    """Whether the ``entry_points.txt`` at ``path`` has a ``[vsdcoder]`` section."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and line[1:-1].strip() == ENTRY_POINT_GROUP:
            return True
    return False


def _maybe_has_entry_points() -> bool:
    """A quick look for any installed distribution declaring a ``vsdcoder`` entry point.

    Importing :mod:`importlib.metadata` and scanning every distribution costs a noticeable
    share of ``vsdcoder --help``. This looks only at ``*.dist-info``/``*.egg-info`` folders on
    ``sys.path`` (where the standard library looks too) and returns False only when it is sure
    there is no plugin; zip files on the path or extra distribution finders make it answer True,
    so the full :func:`importlib.metadata.entry_points` scan runs.
    """
    import importlib.machinery
    import sys

    for finder in sys.meta_path:
        # the importlib_metadata backport (imported by LiteLLM, for one) adds a finder that
        # scans the same sys.path folders as the loop below
        if (hasattr(finder, "find_distributions")
                and finder is not importlib.machinery.PathFinder
                and getattr(finder, "__module__", "") != "importlib_metadata"):
            return True
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except NotADirectoryError:
            return True  # a zip file: leave it to importlib.metadata
        except OSError:
            continue  # missing folders hold nothing
        if os.path.basename(root).lower().endswith(".egg"):
            for child in children:
                if child.lower() == "egg-info" and _declares_group(
                        os.path.join(root, child, "entry_points.txt")):
                    return True
        for child in children:
            if child.lower().endswith((".dist-info", ".egg-info")) and _declares_group(
                    os.path.join(root, child, "entry_points.txt")):
                return True
    return False


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allow = os.environ.get("VSDCODER_LOAD_PLUGINS")
    wanted = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    if wanted is not None and not wanted:
        return  # VSDCODER_LOAD_PLUGINS="": no third-party plugins, and no scan of installed dists
    if not _maybe_has_entry_points():
        return  # nothing installed declares a plugin: skip importing importlib.metadata
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            _errors.append(f"plugin '{ep.name}' ({ep.value}) failed to load: "
                           f"{type(exc).__name__}: {exc}")
            continue
        dist = getattr(ep, "dist", None)
        if dist is not None:
            _dists[ep.name] = (dist.metadata["Name"], dist.version)


def _plugin_name(pm: pluggy.PluginManager, impl: Any) -> str:
    return pm.get_name(impl.plugin) or repr(impl.plugin)


def _call(impl: Any, plugin: str, hook_name: str, **kwargs: Any) -> None:
    """Call one plugin's hook; collisions propagate, anything else is recorded as a load error."""
    try:
        impl.function(**kwargs)
    except UsageError:
        raise
    except Exception as exc:
        _errors.append(f"plugin '{plugin}' failed in {hook_name}: {type(exc).__name__}: {exc}")


def _collect(pm: pluggy.PluginManager, hook_name: str, store: dict[str, Entry], kind: str) -> None:
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        plugin = _plugin_name(pm, impl)

        def register(name: str, obj: Any = None, *, _plugin: str = plugin) -> None:
            if name in store:
                raise UsageError(f"{kind} '{name}' is registered by both '{store[name].plugin}' "
                                 f"and '{_plugin}'; uninstall or rename one")
            store[name] = Entry(name, obj, _plugin)

        _call(impl, plugin, hook_name, register=register)


def _collect_codebooks(pm: pluggy.PluginManager, reg: Registry) -> None:
    for impl in pm.hook.register_codebooks.get_hookimpls():
        plugin = _plugin_name(pm, impl)

        def register(path: str | Path, name: str | None = None, *, _plugin: str = plugin) -> None:
            p = Path(path)
            cb_name = name or _codebook_name(p)
            if cb_name in reg.codebooks:
                other = reg.codebooks[cb_name]
                raise UsageError(f"codebook '{cb_name}' is registered by both '{other.plugin}' "
                                 f"({other.path}) and '{_plugin}' ({p}); uninstall one of the "
                                 "plugins or rename one codebook")
            reg.codebooks[cb_name] = Entry(cb_name, None, _plugin, p)

        _call(impl, plugin, "register_codebooks", register=register)


def _collect_template_dirs(pm: pluggy.PluginManager, reg: Registry) -> None:
    for impl in pm.hook.register_template_dirs.get_hookimpls():
        plugin = _plugin_name(pm, impl)

        def register(path: str | Path, *, _plugin: str = plugin) -> None:
            p = Path(path)
            reg.template_dirs.append(p)
            reg.template_sources.append(Entry(str(p), None, _plugin, p))

        _call(impl, plugin, "register_template_dirs", register=register)


def _codebook_name(path: Path) -> str:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return data["name"]
    return path.stem


def get_registry() -> Registry:
    """Everything the loaded plugins registered (collected once per process).

    Raises:
        UsageError: two plugins registered the same name.
    """
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        reg = Registry()
        _collect_codebooks(pm, reg)
        _collect_template_dirs(pm, reg)
        _collect(pm, "register_coders", reg.coders, "coder")
        _collect(pm, "register_redactors", reg.redactors, "redactor")
        _collect(pm, "register_metrics", reg.metrics, "metric")
        _collect(pm, "register_exporters", reg.exporters, "exporter")
        reg.load_errors = list(dict.fromkeys(_errors))
        _registry = reg
    return _registry


def reset() -> None:
    """Forget loaded plugins (tests use this after changing the environment)."""
    global _pm, _registry
    _pm = None
    _registry = None
    _errors.clear()
    _dists.clear()


def load_errors() -> list[str]:
    """Problems met so far while loading plugins or calling their hooks."""
    return list(dict.fromkeys(_errors))


def list_plugins() -> list[dict[str, Any]]:
    """Each loaded plugin with its distribution, version and the hooks it implements."""
    pm = get_plugin_manager()
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if name in _dists:
            dist, version = _dists[name]
        elif name in DEFAULT_PLUGINS:
            dist, version = BUILTIN_DISTRIBUTION, _own_version()
        else:  # registered in process with pm.register(), not through an entry point
            dist, version = "(unknown)", "?"
        out.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
    return sorted(out, key=lambda p: (p["distribution"] != BUILTIN_DISTRIBUTION, p["name"]))


def _own_version() -> str:
    from vsdcoder import __version__

    return __version__


def call_register_commands(cli: Any) -> None:
    """Let every plugin add CLI commands (a plugin that fails is reported, not fatal)."""
    pm = get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        _call(impl, _plugin_name(pm, impl), "register_commands", cli=cli)


Factory = Callable[..., Any]
