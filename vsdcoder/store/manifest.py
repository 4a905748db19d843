"""``manifest.json``: what was asked of which model, on which data, with what result and cost.

Written atomically at the start of every session and again at its end, so a run directory
describes itself at any moment. Never contains an API key.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError

FORMAT = 1
_PACKAGES = ("vsdcoder", "litellm", "instructor", "pydantic", "openai", "jinja2",
             "llama-cpp-python")


def versions() -> dict[str, str | None]:
    """Versions of Python and the libraries a run depends on."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def read(run_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``run_dir``, or None for a new directory."""
    p = run_dir / "manifest.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p}: unreadable manifest ({exc}); use another --out") from None


def write(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    from vsdcoder.store.exports import atomic_write

    atomic_write(run_dir / "manifest.json",
                 lambda f: f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"))


def check_compatible(prior: dict[str, Any], compiled, cfg, data_hash: str) -> None:
    """Refuse to resume a run with another codebook, prompt or model."""
    problems = []
    if prior.get("codebook", {}).get("hash") != compiled.codebook_hash:
        problems.append("the codebook changed")
    if prior.get("prompt", {}).get("hash") != compiled.hash:
        problems.append("the compiled prompt changed (codebook or template)")
    if prior.get("model", {}).get("model") != cfg.settings.model:
        problems.append(f"the model changed ({prior.get('model', {}).get('model')} -> "
                        f"{cfg.settings.model})")
    k_before = (prior.get("run") or {}).get("units_per_call", 1)
    if k_before != getattr(cfg, "units_per_call", 1):
        problems.append(f"--units-per-call changed ({k_before} -> {cfg.units_per_call}; the "
                        "prompt frames each unit differently)")
    before = prior.get("privacy") or {}
    now = cfg.privacy.public()
    if list(before.get("redact") or []) != now["redact"]:
        was = ",".join(before.get("redact") or []) or "none"
        problems.append(f"the redaction changed (--redact {was} -> "
                        f"{','.join(now['redact']) or 'none'})")
    elif bool(before.get("redacted_output")) != now["redacted_output"]:
        problems.append("--redacted-output changed (the outputs would mix redacted and "
                        "original text)")
    if problems:
        raise UsageError(f"{cfg.out}: cannot resume this run: " + "; ".join(problems)
                         + ". Resume with the same codebook, model and privacy settings, or "
                         "use a new --out.")


def build(cfg, compiled, loaded, data_hash: str, run_dir: Path,
          prior: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest at the start of a session."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cb = compiled.codebook
    d = cfg.data
    # a session still 'running' in the manifest of a run we now hold the lock of was killed
    sessions = [dict(s, status="killed") if s.get("status") == "running" else s
                for s in (prior or {}).get("sessions", [])]
    sessions.append({"started": now, "ended": None, "status": "running", "data_hash": data_hash,
                     "argv": cfg.argv})
    out = {
        "format": FORMAT,
        "status": "running",
        "created": (prior or {}).get("created", now),
        "updated": now,
        "codebook": {"name": cb.name, "version": cb.version, "hash": compiled.codebook_hash,
                     "source": loaded.source, "template": compiled.template},
        "prompt": {"hash": compiled.hash, "messages_hash": compiled.prompt_hash,
                   "schema_hash": compiled.schema_hash},
        "data": {"path": str(d.path), "hash": data_hash, "id_col": d.id_col, "text_col": d.text_col,
                 "context_cols": list(d.context_cols), "meta_cols": list(d.meta_cols),
                 "dedupe": d.dedupe, "dedupe_ids": d.dedupe_ids, "limit": cfg.limit,
                 "sample": cfg.sample, "stratify": d.stratify if cfg.sample else None,
                 "sample_seed": cfg.sample_seed if cfg.sample else None},
        "model": cfg.settings.public(),
        "run": {"concurrency": cfg.concurrency, "rpm": cfg.rpm, "tpm": cfg.tpm,
                "cache": cfg.use_cache, "budget_usd": cfg.budget, "store_text": cfg.store_text,
                "retry_failed": cfg.retry_failed,
                "units_per_call": getattr(cfg, "units_per_call", 1)},
        "privacy": _privacy(cfg, prior),
        "versions": versions(),
        "sessions": sessions,
    }
    if (prior or {}).get("purges"):
        out["purges"] = prior["purges"]  # type: ignore[index]
    return out


def _privacy(cfg, prior: dict[str, Any] | None) -> dict[str, Any]:
    """Redactors, local-only policy and output setting; totals are filled in by :func:`finish`."""
    from vsdcoder.privacy.engine import COUNTERS_TABLE, KEY_TABLE

    p = cfg.privacy.public()
    if p["redact"]:  # the key (or, with redacted_output, the numbering only) is in run.db
        p["key_file"] = None if p["redacted_output"] else "run.db"
        if p["redacted_output"]:
            p["counters_file"] = "run.db"
            p["counters_table"] = COUNTERS_TABLE
        else:
            p["key_table"] = KEY_TABLE
    if "patterns" in p["redact"]:  # which national phone formats were looked for
        from vsdcoder.privacy.phones import resolve_regions

        p["phone_regions"] = list(resolve_regions())
    before = (prior or {}).get("privacy") or {}
    for k in ("redactions", "units_redacted"):
        if k in before:
            p[k] = before[k]
    return p


def finish(manifest: dict[str, Any], db, status: str, started: float) -> dict[str, Any]:
    """The manifest at the end of a session: counts, tokens, cost, served model versions."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m = dict(manifest)
    m["status"] = status
    m["updated"] = now
    m["sessions"][-1].update(ended=now, status=status, seconds=round(time.time() - started, 3))
    m["counts"] = db.counts()
    totals = db.totals()
    m["tokens"] = {"input": totals["tokens_in"], "output": totals["tokens_out"],
                   "cached_input": totals["cached_tokens"]}
    m["calls"] = {"total": totals["calls"], "cache_hits": totals["cache_hits"]}
    if totals.get("units_in_shared_calls"):
        m["calls"].update(units_in_shared_calls=totals["units_in_shared_calls"],
                          units_reasked_alone=totals["units_reasked_alone"])
    m["cost_usd"] = totals["cost_usd"]
    m["units_quote_unverified"] = totals["units_quote_unverified"]
    served = [r[0] for r in db.db.execute(
        "SELECT DISTINCT json_extract(response, '$.model') FROM calls WHERE response IS NOT NULL")]
    m["model"] = dict(m["model"], served_models=sorted(s for s in served if s))
    if m.get("privacy", {}).get("redact"):
        from vsdcoder.privacy.engine import sum_counts

        redacted = db.db.execute("SELECT COUNT(*) FROM units WHERE redactions IS NOT NULL"
                                 " AND redactions NOT IN ('{}', 'null')").fetchone()[0]
        rows = (json.loads(r[0]) for r in db.db.execute(  # streamed: flat memory
            "SELECT redactions FROM units WHERE redactions IS NOT NULL"))
        m["privacy"] = dict(m["privacy"], redactions=sum_counts(rows), units_redacted=redacted)
    return m
