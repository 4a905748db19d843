"""Built-in plugin: coders other than the LLM engine (the supervised ``baseline``)."""

from vsdcoder.hookspecs import hookimpl


@hookimpl
def register_coders(register):
    """Register ``baseline``: TF-IDF + logistic regression trained on gold, cross-validated.

    The factory takes the arguments of :func:`vsdcoder.baseline.run_baseline` and writes a run
    directory; scikit-learn is imported only when it runs.
    """

    def baseline(*args, **kwargs):
        from vsdcoder.baseline import run_baseline

        return run_baseline(*args, **kwargs)

    register("baseline", baseline)
