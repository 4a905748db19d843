"""The plugin surface of vsdcoder: one hook per kind of extension.

Every hook takes a ``register`` callback, so vsdcoder records which plugin registered what and
refuses name collisions. Built-in codebooks, templates and commands use these same hooks.
A plugin is a module with functions decorated with :data:`hookimpl`, exposed through the
``vsdcoder`` entry-point group (see docs/plugins.md).
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("vsdcoder")
hookimpl = HookimplMarker("vsdcoder")


@hookspec
def register_codebooks(register):
    """Register codebook YAML files: ``register(path, name=None)``."""


@hookspec
def register_template_dirs(register):
    """Register folders of ``NAME.vN.{system,user}.jinja`` templates: ``register(path)``."""


@hookspec
def register_coders(register):
    """Register coders (LLM back ends, baselines): ``register(name, factory)``."""


@hookspec
def register_redactors(register):
    """Register redactors that pseudonymise text before it leaves: ``register(name, factory)``."""


@hookspec
def register_metrics(register):
    """Register agreement metrics: ``register(name, function)``."""


@hookspec
def register_exporters(register):
    """Register exporters of codebooks or coded data: ``register(name, function)``."""


@hookspec
def register_commands(cli):
    """Add commands to the ``vsdcoder`` CLI (the root typer app): ``cli.command("name")(fn)``."""
