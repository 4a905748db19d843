"""``vsdcoder.code(...)``: the coding engine from Python or a notebook."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vsdcoder.coding.coder import ModelSettings
from vsdcoder.coding.providers import EMBEDDED_MODEL, choose_mode
from vsdcoder.coding.runner import CodeConfig, RunSummary, run_coding
from vsdcoder.data.read import DataSpec


def code(
    data: str | Path,
    codebook: str | Path,
    *,
    model: str | None = None,
    out: str | Path | None = None,
    id_col: str = "id",
    text_col: str = "text",
    context_cols: Sequence[str] = (),
    meta_cols: Sequence[str] = (),
    encoding: str = "utf-8-sig",
    dedupe: bool = False,
    dedupe_ids: str = "error",
    api_base: str | None = None,
    api_key: str | None = None,
    mode: str | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    timeout: float = 120.0,
    max_retries: int = 2,
    http_retries: int = 6,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
    concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    retry_failed: bool = False,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    stratify: str | None = None,
    budget: float | None = None,
    batch: bool = False,
    batch_poll: float = 30.0,
    batch_size: int | None = None,
    store_text: bool = True,
    redact: str | Sequence[str] | None = None,
    local_only: bool | None = None,
    redacted_output: bool | None = None,
    progress: bool = False,
    units_per_call: int = 1,
    argv: Sequence[str] | None = None,
) -> RunSummary:
    """Code every unit of a data file with a codebook and a model.

    Args:
        data: CSV, TSV, JSONL, Parquet or Excel file.
        codebook: A codebook YAML path or a registered codebook name.
        model: Any LiteLLM model string; default ``$VSDCODER_MODEL`` or the embedded
            ``local/smollm2``.
        out: Run directory; reusing one resumes the run (codes only what is missing).
        id_col: Column with unique unit ids.
        text_col: Column with the text to code.
        context_cols: Columns shown to the model as context, not coded.
        meta_cols: Columns carried into the output.
        encoding: Text encoding of CSV/TSV/JSONL files.
        dedupe: Code identical texts once; later copies are recorded as duplicates.
        dedupe_ids: What a repeated id does: ``"error"`` refuses the file, listing every
            repeat at once; ``"first"`` codes the first row of each id and leaves the later
            ones out (a :class:`~vsdcoder.data.read.DataWarning` says how many).
        api_base: Endpoint of an OpenAI-compatible or local server.
        api_key: Key for the provider (else LiteLLM reads ``<PROVIDER>_API_KEY``); never stored.
        mode: Instructor mode (tools, json_schema, json, md_json); default from a capability table.
        temperature: Sampling temperature (0 for reproducibility).
        seed: Sampling seed, where the provider supports one.
        max_tokens: Answer length limit.
        timeout: Seconds per request.
        max_retries: Re-asks after an invalid answer.
        http_retries: Retries of 429/5xx/timeouts, with backoff and Retry-After.
        backoff_base: First backoff wait in seconds (doubled per retry, with jitter).
        backoff_max: Longest wait between retries, in seconds (also caps Retry-After).
        concurrency: Requests in flight at once.
        rpm: Requests-per-minute limit.
        tpm: Estimated tokens-per-minute limit.
        retry_failed: Also retry units that failed in earlier sessions of this run.
        cache: Use the response cache (identical requests are not paid twice).
        cache_dir: Cache location (default ``$VSDCODER_CACHE_DIR`` or the user cache dir).
        dry_run: Only report the first prompt, the number of calls, tokens and cost.
        limit: Code at most this many units (the first ones).
        sample: Code a random sample of this many units (simple random, or stratified
            with ``stratify``).
        sample_seed: Seed of the sample.
        stratify: With ``sample``: a column to stratify the sample by. Each value of the
            column gets its proportional share of ``sample`` (at least one unit per value
            while there are no more values than ``sample``), drawn at random within it.
        budget: Stop before spending more than this many US dollars. With ``batch``: no
            batch is submitted whose estimated cost would take this session over it.
        batch: Submit the requests through the provider's batch API (OpenAI, Azure OpenAI:
            about half the price, answers within 24 hours): upload, poll every
            ``batch_poll`` seconds, re-ask invalid answers in further rounds, and write the
            same run store. Stopping leaves the batches submitted; the same call with the
            same ``out`` polls them again and never resubmits them.
        batch_poll: Seconds between polls of submitted batches.
        batch_size: At most this many requests per batch (default: the provider's limit,
            50,000 for OpenAI; files are also split above 200 MB).
        store_text: Keep raw texts in run.db (False keeps them out).
        redact: Redactors to run before anything is sent, e.g. ``"patterns,presidio"``: the
            text and context columns are sent with consistent placeholders (``<PERSON_1>``),
            the key stays in ``RUN_DIR/run.db`` (mode 0600), and quotes and offsets
            are mapped back to the original text. None: the project file decides (else no
            redaction); ``"none"``: no redaction whatever the project file says.
        local_only: Refuse, before anything is read or sent, any model that is not the
            embedded one or a server on a loopback address. None: the project file decides.
        redacted_output: Keep only redacted text in every output (run.db, codes.*), with
            quotes and offsets of the redacted text, and keep no key. Needs ``redact``.
        progress: Show a progress bar.
        units_per_call: Code this many units in one request (the codebook's system message is
            sent once per request instead of once per unit); every unit's answer is still
            validated on its own, and a wrong one is re-asked for that unit alone.
        argv: The command line that started the run, recorded in the manifest.

    Returns:
        A :class:`~vsdcoder.coding.runner.RunSummary` with the run directory and counts.

    Raises:
        UsageError: a bad input (data, columns, ids, options, codebook, model). The data file
            is read and checked in full before the run directory is made or any model is
            loaded, so a failed start leaves nothing on disk.
    """
    from vsdcoder.privacy.engine import check_local_only, resolve_settings

    model = model or os.environ.get("VSDCODER_MODEL") or EMBEDDED_MODEL
    privacy = resolve_settings(redact, local_only, redacted_output)
    if privacy.local_only:
        check_local_only(model, api_base, privacy.project_file)  # before anything else
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
    _check_options(mode, privacy.redact, sample, stratify, concurrency, units_per_call)
    settings = ModelSettings(
        model=model, api_base=api_base, api_key=api_key, mode=choose_mode(model, mode),
        temperature=temperature, seed=seed, max_tokens=max_tokens, timeout=timeout,
        max_retries=max_retries, http_retries=http_retries,
        backoff_base=backoff_base, backoff_max=backoff_max)
    spec = DataSpec(Path(data), id_col, text_col, tuple(context_cols), tuple(meta_cols),
                    encoding, dedupe, dedupe_ids=dedupe_ids, stratify=stratify)
    cfg = CodeConfig(
        data=spec, codebook=codebook, settings=settings, out=Path(out) if out else None,
        concurrency=concurrency, rpm=rpm, tpm=tpm, retry_failed=retry_failed, use_cache=cache,
        cache_dir=Path(cache_dir) if cache_dir else None, dry_run=dry_run, limit=limit,
        batch=batch, batch_poll=batch_poll, batch_size=batch_size,
        sample=sample, sample_seed=sample_seed, budget=budget, store_text=store_text,
        progress=progress, argv=_public_argv(argv), privacy=privacy,
        units_per_call=units_per_call)
    if batch:  # no batch API for this model: refused before the data is read
        from vsdcoder.coding.batch import check_batch

        check_batch(cfg)
    return run_coding(cfg)


def _check_options(mode: str | None, redact: Sequence[str], sample: int | None,
                   stratify: str | None, concurrency: int, units_per_call: int) -> None:
    """Refuse bad option values (with a did-you-mean for names) before any work."""
    from vsdcoder.coding.providers import MODES
    from vsdcoder.errors import UsageError
    from vsdcoder.suggest import did_you_mean

    if mode and mode not in MODES:
        raise UsageError(f"unknown --mode '{mode}'{did_you_mean(mode, MODES)}; use one of: "
                         + ", ".join(MODES))
    if redact:
        from vsdcoder.plugins import get_registry

        known = get_registry().redactors
        for name in redact:
            if name not in known:
                raise UsageError(f"unknown redactor '{name}'{did_you_mean(name, known)} "
                                 f"(available: {', '.join(sorted(known)) or 'none'})")
    if stratify and not sample:
        raise UsageError("--stratify needs --sample N: it says how to draw the sample")
    if sample is not None and sample < 1:
        raise UsageError("--sample must be at least 1")
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if units_per_call < 1:
        raise UsageError("--units-per-call must be at least 1")


def _public_argv(argv: Sequence[str] | None) -> list[str]:
    """The command line for the manifest, with any secret-looking value masked."""
    out: list[str] = []
    hide = False
    for a in argv or ():
        if hide:
            out.append("***")
            hide = False
            continue
        low = a.lower()
        if "key" in low or "token" in low or "secret" in low:
            if "=" in a:
                out.append(a.split("=", 1)[0] + "=***")
                continue
            hide = a.startswith("-")
        out.append(a)
    return out
