"""``vsdcoder code --batch --dry-run``: the batch requests, files and cost, writing nothing."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from vsdcoder.coding.batch import (
    LINE_OVERHEAD,
    PRICING_NOTE,
    BatchCoder,
    _body_bytes,
    batch_target,
    estimate_tokens,
    split_sizes,
)
from vsdcoder.coding.coder import run_sync


def batch_dry_run(cfg: Any, compiled: Any, cache: Any) -> Any:
    """The ordinary dry run plus the batch requests, files and cost at batch prices.

    An existing run directory is only read: its run.db is opened read-only (no migration),
    so this works on a read-only directory and changes nothing in it.
    """
    from vsdcoder.coding.runner import dry_run_summary, open_run_readonly, units_to_code
    from vsdcoder.data.read import UnitReader
    from vsdcoder.privacy.engine import RunPseudonyms
    from vsdcoder.store.rundb import DoneLookup

    target = batch_target(cfg.settings, cfg.batch_size)
    summary = dry_run_summary(cfg, compiled, cache)
    info = summary.dry_run or {}
    db = open_run_readonly(cfg.out)
    try:
        done: Container[str] = set() if db is None else DoneLookup(db, cfg.retry_failed)
        pseudonyms = None
        if cfg.privacy.redact:
            pseudonyms = RunPseudonyms.read(cfg.privacy.redact, db,
                                            cfg.out if cfg.out and cfg.out.is_dir() else None,
                                            keep_key=not cfg.privacy.redacted_output)
        coder = BatchCoder(compiled, cfg.settings, target, cache=cache)
        sizes: list[int] = []
        tokens = [0, 0]

        async def collect() -> None:
            for unit in units_to_code(cfg, UnitReader(cfg.data)):
                if unit.id in done:
                    continue
                text, context = unit.text, unit.context
                if pseudonyms is not None:
                    red = pseudonyms.redact_unit(unit.text, unit.context)
                    text, context = red.send_text, red.send_context
                _, req, _ = await coder.step(unit, {}, send_text=text, send_context=context)
                if req is not None and req.attempt == 1:
                    sizes.append(len(_body_bytes(req.request)) + LINE_OVERHEAD)
                    tin, tout = estimate_tokens(cfg.settings.model, req.request)
                    tokens[0] += tin
                    tokens[1] += tout

        run_sync(collect())
    finally:
        if db is not None:
            db.close()
    groups = split_sizes(sizes, target.limits)
    # the requests as they would be sent (schema included), priced as the budget check does
    from vsdcoder.coding.runner import estimate_cost

    cost = coder.pricing.cost(tokens[0], tokens[1])
    info.update(estimated_input_tokens=tokens[0], estimated_output_tokens=tokens[1],
                estimated_cost_usd=cost,
                estimated_cost_usd_sync=estimate_cost(cfg.settings.model, *tokens))
    info["batch"] = {"provider": target.provider, "requests": len(sizes), "files": len(groups),
                     "bytes": sum(sizes), "max_requests": target.limits.max_requests,
                     "max_bytes": target.limits.max_bytes, "estimated_cost_usd": cost,
                     "estimated_cost_usd_sync": info["estimated_cost_usd_sync"],
                     "pricing": PRICING_NOTE}
    summary.dry_run = info
    return summary
