"""Built-in plugin: the bundled prompt templates (``prompts/``)."""

from vsdcoder._paths import bundled_dir
from vsdcoder.hookspecs import hookimpl


@hookimpl
def register_template_dirs(register):
    """Register the bundled ``prompts/`` folder."""
    register(bundled_dir("prompts"))
