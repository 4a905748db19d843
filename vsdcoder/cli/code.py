"""``vsdcoder code``: code a data file with a codebook and a model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def csv_list(value: str | None) -> tuple[str, ...]:
    """The items of a comma-separated option value (``"a, b"`` -> ``("a", "b")``), blanks dropped."""
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _print_privacy(privacy: dict | None, run_dir: Path | None) -> None:
    """One or two lines on what was redacted and where the key is."""
    if not privacy:
        return
    if privacy.get("local_only"):
        typer.echo("local-only: no text left this machine")
    if not privacy.get("redact"):
        return
    counts = privacy.get("redactions") or {}
    what = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing found"
    verb = "would be redacted" if run_dir is None else "redacted before sending"
    typer.echo(f"{verb} ({','.join(privacy['redact'])}): {what} "
               f"in {privacy.get('units_redacted', 0)} unit(s)")
    if run_dir is not None:
        if privacy.get("redacted_output"):
            typer.echo("outputs hold redacted text only; no key to the placeholders was kept")
        elif privacy.get("key_file"):
            typer.echo(f"key to the placeholders: {run_dir}/{privacy['key_file']} (owner-only; "
                       "never sent; 'vsdcoder runs pseudonyms' exports it). 'vsdcoder runs "
                       "purge' removes it with the stored texts.")


def _print_batch_dry_run(info: dict | None) -> None:
    """What ``--batch`` would submit."""
    if not info:
        return
    cost, sync = info.get("estimated_cost_usd"), info.get("estimated_cost_usd_sync")
    typer.echo(f"batch API ({info['provider']}): {info['requests']:,} first-round request(s) "
               f"in {info['files']:,} batch file(s), {info['bytes'] / 1e6:,.2f} MB; estimated "
               "cost at batch prices: " + (f"${cost:.4f}" if cost is not None else "unknown")
               + (f" (ordinary requests: ${sync:.4f})" if sync is not None else ""))


def register(app: typer.Typer) -> None:
    """Add the ``code`` command to ``app``."""

    @app.command("code")
    def code_cmd(
        data: Path = typer.Argument(..., help="CSV, TSV, JSONL, Parquet or Excel file."),
        codebook: str = typer.Option(..., "--codebook", "-c", help="Codebook YAML file or registered name."),
        model: str | None = typer.Option(None, "--model", "-m", envvar="VSDCODER_MODEL",
                                         help="LiteLLM model string (default: embedded local/smollm2)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (reuse it to resume)."),
        id_col: str = typer.Option("id", "--id-col", help="Column with unique ids."),
        text_col: str = typer.Option("text", "--text-col", help="Column with the text to code."),
        context_cols: str | None = typer.Option(None, "--context-cols", help="Comma-separated context columns (shown, not coded)."),
        meta_cols: str | None = typer.Option(None, "--meta-cols", help="Comma-separated columns carried into the output."),
        encoding: str = typer.Option("utf-8-sig", "--encoding", help="Encoding of CSV/TSV/JSONL files."),
        dedupe: bool = typer.Option(False, "--dedupe", help="Code identical texts once."),
        dedupe_ids: str = typer.Option("error", "--dedupe-ids", help="A repeated id: 'error' (refuse the file, listing every repeat) or 'first' (code the first row of each id, leave the others out)."),
        api_base: str | None = typer.Option(None, "--api-base", help="Endpoint of an OpenAI-compatible or local server."),
        mode: str | None = typer.Option(None, "--mode", help="tools, json_schema, json or md_json (default: by provider)."),
        temperature: float = typer.Option(0.0, "--temperature"),
        seed: int | None = typer.Option(None, "--seed", help="Sampling seed (also the --sample seed)."),
        max_tokens: int | None = typer.Option(None, "--max-tokens"),
        timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request."),
        max_retries: int = typer.Option(2, "--max-retries", help="Re-asks after an invalid answer."),
        http_retries: int = typer.Option(6, "--http-retries", help="Retries of 429/5xx/timeouts."),
        concurrency: int = typer.Option(8, "--concurrency", "-j", help="Requests in flight."),
        units_per_call: int = typer.Option(1, "--units-per-call", "-k", help="Units coded in one request (each answer still checked and re-asked on its own)."),
        rpm: float | None = typer.Option(None, "--rpm", help="Requests per minute limit."),
        tpm: float | None = typer.Option(None, "--tpm", help="Tokens per minute limit (estimated)."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Also retry failed units."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the response cache."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the first prompt, calls, tokens and cost, then exit."),
        limit: int | None = typer.Option(None, "--limit", help="Code only the first N units."),
        sample: int | None = typer.Option(None, "--sample", help="Code a random sample of N units (seeded by --seed)."),
        stratify: str | None = typer.Option(None, "--stratify", help="With --sample: stratify the sample by this column (proportional, at least one per value)."),
        budget: float | None = typer.Option(None, "--budget", help="Hard stop before spending more than USD."),
        batch: bool = typer.Option(False, "--batch", help="Use the provider's batch API (OpenAI, Azure: half price, within 24 h); resumable."),
        batch_poll: float = typer.Option(30.0, "--batch-poll", help="Seconds between polls of submitted batches."),
        batch_size: int | None = typer.Option(None, "--batch-size", help="At most N requests per batch (default: the provider's limit)."),
        no_store_text: bool = typer.Option(False, "--no-store-text", help="Keep raw texts out of run.db."),
        redact: str | None = typer.Option(None, "--redact", help="Redactors run before anything is sent, e.g. patterns,presidio ('none' overrides a project setting)."),
        local_only: bool | None = typer.Option(None, "--local-only/--no-local-only", help="Refuse any model that is not the embedded one or on a loopback address."),
        redacted_output: bool | None = typer.Option(None, "--redacted-output/--no-redacted-output", help="Keep only redacted text in every output (needs --redact)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Code every unit of DATA with a codebook and a model; resumable with the same --out."""
        from vsdcoder.cli.output import data_warnings_to_stderr
        from vsdcoder.coding.api import code

        with data_warnings_to_stderr():
            summary = code(
                data, codebook, model=model, out=out, id_col=id_col, text_col=text_col,
                context_cols=csv_list(context_cols), meta_cols=csv_list(meta_cols),
                encoding=encoding, dedupe=dedupe, dedupe_ids=dedupe_ids, stratify=stratify,
                api_base=api_base, mode=mode,
                temperature=temperature, seed=seed, max_tokens=max_tokens, timeout=timeout,
                max_retries=max_retries, http_retries=http_retries, concurrency=concurrency, rpm=rpm,
                tpm=tpm, retry_failed=retry_failed, cache=not no_cache, dry_run=dry_run, limit=limit,
                sample=sample, sample_seed=seed or 0, budget=budget, store_text=not no_store_text,
                batch=batch, batch_poll=batch_poll, batch_size=batch_size,
                redact=redact, local_only=local_only, redacted_output=redacted_output,
                progress=not as_json and sys.stderr.isatty(), argv=["vsdcoder", *sys.argv[1:]],
                units_per_call=units_per_call,
            )
        from vsdcoder.cli.report import print_dry_run, print_summary

        if as_json:
            typer.echo(json.dumps({"run_dir": str(summary.run_dir) if summary.run_dir else None,
                                   "status": summary.status, "counts": summary.counts,
                                   "totals": summary.totals, "dry_run": summary.dry_run,
                                   "privacy": summary.privacy},
                                  indent=2, ensure_ascii=False, default=str))
        elif summary.dry_run is not None:
            print_dry_run(summary.dry_run)
            _print_batch_dry_run(summary.dry_run.get("batch"))
            _print_privacy(summary.privacy, None)
        else:
            print_summary(summary)
            _print_privacy(summary.privacy, summary.run_dir)
        if summary.status == "interrupted":
            raise typer.Exit(130)
