"""Built-in plugin: the codebooks bundled in ``plugins/codebooks/``."""

from vsdcoder._paths import bundled_dir
from vsdcoder.hookspecs import hookimpl


@hookimpl
def register_codebooks(register):
    """Register every ``*.yaml`` codebook in the bundled ``plugins/codebooks`` folder."""
    for path in sorted((bundled_dir("plugins") / "codebooks").glob("*.yaml")):
        register(path)
