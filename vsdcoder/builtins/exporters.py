"""Built-in plugin: codebook exporters (REFI-QDA ``.qdc``)."""

from vsdcoder.hookspecs import hookimpl


@hookimpl
def register_exporters(register):
    """Register the REFI-QDA codebook exporter (imported lazily when used)."""

    def qdc(codebook, path):
        from vsdcoder.codebook.refi import write_qdc

        return write_qdc(codebook, path)

    register("qdc", qdc)
