"""Built-in plugin: the redactors ``patterns`` (no dependencies) and ``presidio`` (optional).

Both are registered as factories that import their module only when called, so listing plugins
or starting the CLI never imports Presidio or spaCy. ``presidio`` raises a
:class:`~vsdcoder.errors.UsageError` naming ``pip install 'vsdcoder[ner]'`` when Presidio or a
spaCy English model is missing.
"""

from vsdcoder.hookspecs import hookimpl


def patterns(**options):
    """A :class:`~vsdcoder.privacy.redactors.PatternRedactor` (options go to its constructor)."""
    from vsdcoder.privacy.redactors import PatternRedactor

    return PatternRedactor(**options)


def presidio(**options):
    """A :class:`~vsdcoder.privacy.redactors.PresidioRedactor` (options go to its constructor)."""
    from vsdcoder.privacy.redactors import PresidioRedactor

    return PresidioRedactor(**options)


@hookimpl
def register_redactors(register):
    """Register ``patterns`` and ``presidio``."""
    register("patterns", patterns)
    register("presidio", presidio)
