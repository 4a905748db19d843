"""Provider batch APIs (``vsdcoder code --batch``): the same coding at batch prices.

OpenAI's (and Azure OpenAI's) batch API answers a file of requests within 24 hours at half
the price. A batch run writes the same run store as an ordinary run (``run.db`` units and
calls, ``codes.jsonl``, ``codes.csv``, ``manifest.json``); only the transport differs:

1. Every unit's first request is built exactly as the synchronous path builds it: the unit is
   run through :class:`~vsdcoder.coding.coder.LLMCoder` (instructor over LiteLLM), and where
   the HTTP call would happen the request is captured instead (:class:`BatchCoder`). The
   requests become lines of a JSONL file (``custom_id``, ``/v1/chat/completions``, body), split
   above the provider's limits, uploaded and submitted with LiteLLM's file and batch API.
2. The batches are polled. When one ends, its output and error files are downloaded and every
   line is stored in ``run.db`` (``batch_requests``).
3. Each unit is then *replayed* through the same coder with the stored answers standing in
   for the HTTP responses, so validation, re-asks, quote checks, the quote-only exception and
   the failure messages are those of the synchronous path. A unit whose answer is invalid
   needs another request (instructor's re-ask: the conversation, the answer and the
   codebook's error message), which goes into the next round's batch, up to ``max_retries``
   re-asks. A unit that needs nothing more is saved with :meth:`RunDB.save`.

Batch state lives in ``run.db`` (tables ``batches`` and ``batch_requests``, migration
``m002_batches``, :mod:`vsdcoder.store.batches`; the provider calls are in
:mod:`~vsdcoder.coding.batch_provider`, the dry run in :mod:`~vsdcoder.coding.batch_dry`), so
a restart with the same ``--out`` polls the pending batches again and never resubmits a request
that is in one, nor a unit already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.coding.batch_provider import (
    ENDPOINT,
    Provider,
    fatal,
    missing_reason,
    result_of_line,
    short,
)
from vsdcoder.coding.coder import (
    LLMCoder,
    ModelSettings,
    _current,
    _public_request,
    _usage,
    no_answer,
    run_sync,
)
from vsdcoder.errors import UsageError
from vsdcoder.store.batches import Answer, BatchStore, PendingRequest
from vsdcoder.store.rundb import CallLog, RunDB, UnitResult

#: Batch statuses after which nothing more will happen.
TERMINAL = ("completed", "failed", "expired", "cancelled")
#: What vsdcoder assumes when LiteLLM has no batch price for a model (OpenAI's discount).
PRICING_NOTE = ("LiteLLM's batch prices (input_cost_per_token_batches, "
                "output_cost_per_token_batches) where it has them, else half its ordinary "
                "price; unknown (null) for models LiteLLM has no price for")


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may hold (the provider's limits, or smaller)."""

    max_requests: int
    max_bytes: int


#: Providers whose batch API LiteLLM supports in OpenAI's request format, with their limits.
PROVIDERS: dict[str, BatchLimits] = {
    "openai": BatchLimits(50_000, 200 * 1024 * 1024),
    "azure": BatchLimits(100_000, 200 * 1024 * 1024),
}


@dataclass(frozen=True)
class BatchTarget:
    """Where a run's batches go: LiteLLM provider, the model name in request bodies, limits."""

    provider: str
    model_name: str
    limits: BatchLimits


def batch_target(settings: ModelSettings, batch_size: int | None = None,
                 max_bytes: int | None = None) -> BatchTarget:
    """The batch provider of ``settings.model``, or a :class:`UsageError` saying why not.

    Args:
        settings: The model settings.
        batch_size: At most this many requests per batch (default: the provider's limit).
        max_bytes: At most this many bytes per batch file (default: the provider's limit).

    Raises:
        UsageError: The model is embedded or its provider has no batch API that LiteLLM
            supports in OpenAI's format; or ``batch_size`` is not positive.
    """
    model = settings.model
    if batch_size is not None and batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if model.startswith("local/"):
        raise UsageError(f"--batch: the embedded model ({model}) runs in this process and has "
                         "no batch API; drop --batch")
    try:
        import litellm

        name, provider, _, _ = litellm.get_llm_provider(model, api_base=settings.api_base)
    except Exception:
        name, provider = model, model.split("/", 1)[0] if "/" in model else "unknown"
    if provider not in PROVIDERS:
        supported = ", ".join(f"{p}/..." for p in PROVIDERS)
        raise UsageError(
            f"--batch: no batch API for '{model}' (provider '{provider}'). Batches work with "
            f"providers whose batch API LiteLLM supports in OpenAI's format: {supported} "
            "(and bare OpenAI names such as gpt-4.1-mini). Drop --batch to code with "
            "ordinary requests.")
    lim = PROVIDERS[provider]
    lim = BatchLimits(min(lim.max_requests, batch_size or lim.max_requests),
                      min(lim.max_bytes, max_bytes or lim.max_bytes))
    return BatchTarget(provider, name, lim)


def check_batch(cfg: Any) -> BatchTarget:
    """Refuse, before any work, a batch run that cannot work; returns its target.

    Raises:
        UsageError: no batch API for the model, a bad ``--batch-size`` or ``--batch-poll``,
            or ``--units-per-call`` above 1 (a batch request codes one unit).
    """
    if getattr(cfg, "units_per_call", 1) > 1:
        raise UsageError("--batch sends one unit per request; drop --units-per-call")
    if cfg.batch_poll < 0:
        raise UsageError("--batch-poll must be 0 or more seconds")
    return batch_target(cfg.settings, cfg.batch_size)


def in_flight_error(prior: dict[str, Any], run_dir: Path) -> UsageError:
    """The error for resuming, without ``--batch``, a run with units in submitted batches."""
    n = (prior.get("batch") or {}).get("in_flight")
    return UsageError(f"{run_dir}: {n} unit(s) of this run are in batches submitted with "
                      "--batch; resume it with --batch so they are polled, not paid for twice "
                      "(or code into a new --out)")


# -- prices ------------------------------------------------------------------------------------


class BatchPricing:
    """Cost of a batch answer from its usage at LiteLLM's batch prices (:data:`PRICING_NOTE`)."""

    def __init__(self, model: str, provider: str):
        self.model = model
        self.provider = provider
        self._known: bool | None = None

    @property
    def known(self) -> bool:
        """Whether LiteLLM has a price for the model."""
        if self._known is None:
            try:
                import litellm

                litellm.get_model_info(self.model)
                self._known = True
            except Exception:
                self._known = False
        return self._known

    def cost(self, prompt_tokens: int, completion_tokens: int,
             cached_tokens: int = 0) -> float | None:
        """USD for one answer, or None when the price is unknown."""
        if not self.known:
            return None
        try:
            import litellm
            from litellm.cost_calculator import batch_cost_calculator
            from litellm.types.utils import PromptTokensDetailsWrapper

            usage = litellm.Usage(prompt_tokens=prompt_tokens,
                                  completion_tokens=completion_tokens,
                                  total_tokens=prompt_tokens + completion_tokens)
            if cached_tokens:
                usage.prompt_tokens_details = PromptTokensDetailsWrapper(
                    cached_tokens=cached_tokens)
            pin, pout = batch_cost_calculator(usage, model=self.model,
                                              custom_llm_provider=self.provider)
            return round(float(pin) + float(pout), 10)
        except Exception:
            return None


# -- replaying units through the coder ---------------------------------------------------------


class BatchRequestFailed(Exception):
    """The provider returned an error for a unit's batch request, or never ran it."""


class _NeedsRequest(Exception):
    """Raised where the coder would call the model and no stored answer exists."""



@dataclass
class _Replay:
    answers: dict[int, Answer]
    pending: tuple[int, str, dict[str, Any]] | None = None
    cached: list[Answer] = field(default_factory=list)


_REPLAY: contextvars.ContextVar[_Replay] = contextvars.ContextVar("vsdcoder_batch_replay")


def model_response(body: dict[str, Any]) -> Any:
    """A LiteLLM ``ModelResponse`` from a raw chat completion body, as LiteLLM would build it."""
    import litellm

    try:
        from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (
            convert_to_model_response_object,
        )

        return convert_to_model_response_object(response_object=dict(body),
                                                 model_response_object=litellm.ModelResponse())
    except Exception:
        return litellm.ModelResponse(**body)


class BatchCoder(LLMCoder):
    """An :class:`LLMCoder` whose model calls are answered from stored batch answers.

    :meth:`step` runs a unit through the ordinary coding path; each model call takes the
    stored answer of that attempt (or a cache hit) and the first call without one stops the
    unit and returns the request it needs.
    """

    def __init__(self, compiled: Any, settings: ModelSettings, target: BatchTarget,
                 cache: Any = None):
        super().__init__(compiled, settings, cache=cache)
        self.target = target
        self.pricing = BatchPricing(settings.model, target.provider)

    async def _complete(self, **kwargs: Any) -> Any:
        from vsdcoder.coding.cache import request_key

        rp = _REPLAY.get(None)
        if rp is None:  # outside step(): an ordinary coder
            return await super()._complete(**kwargs)
        log = _current.get()
        log.attempt += 1
        public = _public_request(kwargs)
        key = request_key(public)
        got = rp.answers.get(log.attempt)
        if got is not None and got.key != key:
            got = None  # stored for another request (cannot happen with an unchanged prompt)
        if got is None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                got = Answer(log.attempt, key, "cached", hit, created=time.time())
                rp.cached.append(got)
        if got is None:
            rp.pending = (log.attempt, key, public)
            raise _NeedsRequest(key)
        call = CallLog(attempt=log.attempt, started=got.created or time.time(),
                       model=self.settings.model, request=public,
                       cache_hit=got.status == "cached")
        if got.answered and got.created:
            call.latency = max(0.0, got.answered - got.created)
        if got.status == "error" or got.response is None:
            call.status = "http_error"
            call.errors = [got.error or "no answer"]
            log.calls.append(call)
            raise BatchRequestFailed(got.error or "no answer")
        if got.status == "cached":
            import litellm

            resp = litellm.ModelResponse(**got.response)
            call.response = got.response
            call.cost = 0.0
        else:
            resp = model_response(got.response)
            call.response = resp.model_dump(mode="json")
        call.tokens_in, call.tokens_out, call.cached_tokens = _usage(resp)
        if got.status != "cached":
            call.cost = self.pricing.cost(call.tokens_in, call.tokens_out, call.cached_tokens)
        log.calls.append(call)
        return resp

    async def step(self, unit: Any, answers: dict[int, Answer], send_text: str | None = None,
                   send_context: str | None = None
                   ) -> tuple[UnitResult | None, PendingRequest | None, list[Answer]]:
        """Run ``unit`` as far as its stored answers go.

        Returns:
            ``(result, None, cache_hits)`` when the unit is finished (coded or failed), or
            ``(None, request, cache_hits)`` with the request it needs next.
        """
        rp = _Replay(dict(answers))
        token = _REPLAY.set(rp)
        try:
            res = await self.code(unit, send_text=send_text, send_context=send_context)
        finally:
            _REPLAY.reset(token)
        if rp.pending is not None:
            attempt, key, public = rp.pending
            body = dict(public)
            body["model"] = self.target.model_name
            return None, PendingRequest(unit.id, attempt, key, body), rp.cached
        return res, None, rp.cached


# -- splitting ---------------------------------------------------------------------------------

#: Bytes of a request line beyond its body (custom_id, method, url, JSON punctuation).
LINE_OVERHEAD = 120


def split_sizes(sizes: Sequence[int], limits: BatchLimits) -> list[range]:
    """Consecutive groups of requests (by their line sizes) that respect ``limits``.

    A single request larger than ``max_bytes`` goes alone (the provider will refuse it).
    """
    groups: list[range] = []
    start, n, size = 0, 0, 0
    for i, s in enumerate(sizes):
        if n and (n + 1 > limits.max_requests or size + s > limits.max_bytes):
            groups.append(range(start, i))
            start, n, size = i, 0, 0
        n += 1
        size += s
    if n:
        groups.append(range(start, len(sizes)))
    return groups


def _body_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the batch tables of run.db ----------------------------------------------------------------


def estimate_tokens(model: str, body: dict[str, Any]) -> tuple[int, int]:
    """Estimated (input, output) tokens of a request, for ``--budget`` and the dry run.

    Input: its messages and schema, counted with LiteLLM's tokenizer; output: ``max_tokens``,
    else 150.
    """
    from vsdcoder.coding.runner import count_tokens

    text = json.dumps(body.get("messages"), ensure_ascii=False) + json.dumps(
        body.get("tools") or body.get("response_format") or "", ensure_ascii=False)
    return count_tokens(model, text), int(body.get("max_tokens") or 150)


# -- the session -------------------------------------------------------------------------------


class _Say:
    """Progress lines on stderr (only when progress is on)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(msg, file=sys.stderr, flush=True)


class _BatchSession:
    """One session of a batch run: resume, poll, ingest, replay, submit, until done."""

    def __init__(self, cfg: Any, compiled: Any, db: RunDB, run_dir: Path, cache: Any,
                 session: int, target: BatchTarget, pseudonyms: Any, on_change: Any):
        self.cfg = cfg
        self.db = db
        self.store = BatchStore(db)
        self.run_dir = run_dir
        self.cache = cache
        self.session = session
        self.target = target
        self.pseudonyms = pseudonyms
        self.on_change = on_change
        self.coder = BatchCoder(compiled, cfg.settings, target, cache=cache)
        self.provider = Provider(cfg.settings, target)
        # looked up in run.db (flat memory); units saved in this session count as done
        self.done = db.done_lookup(cfg.retry_failed, session=session)
        self.reds: dict[str, Any] = {}
        self.say = _Say(cfg.progress)
        self.stop = asyncio.Event()
        self.status = "finished"
        self.error: str | None = None
        self.coded = 0
        self.failed = 0
        self.withheld = 0
        self.committed = 0.0  # estimated cost of the requests submitted this session
        self.seen: dict[int, tuple[Any, ...]] = {}

    # -- main loop ---------------------------------------------------------------------------
    async def main(self, control: dict[str, Any]) -> str:
        """Run the session; returns its status. Ctrl-C stops at the next safe point.

        ``control`` receives the loop and the interrupt callback (for Ctrl-C in a notebook,
        where the loop runs in a worker thread).
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_sigint() -> None:
            if self.stop.is_set() and task is not None:
                task.cancel()  # a second Ctrl-C: stop now
            self.stop.set()

        control.update(loop=loop, interrupt=on_sigint)
        installed = False
        if sys.platform != "win32":
            try:
                loop.add_signal_handler(signal.SIGINT, on_sigint)
                installed = True
            except (RuntimeError, ValueError, NotImplementedError):
                pass
        try:
            return await self._loop()
        except asyncio.CancelledError:
            return "interrupted"
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
            # LiteLLM makes an OpenAI client per file/batch call; collected here, they close
            # on this loop instead of failing on a closed one later
            gc.collect()
            await asyncio.sleep(0)

    async def _loop(self) -> str:
        self.store.close_saved(self.cfg.store_text)
        await self._resume_submissions()
        advance = True
        while True:
            if self.stop.is_set():
                return "interrupted"
            if await self._poll():
                advance = True
            if self.stop.is_set():
                return "interrupted"
            if advance:
                advance = False
                await self._advance()
                if self.status != "finished":
                    return self.status
                if self.stop.is_set():
                    return "interrupted"
            if not self.store.batches("uploading", "submitting", "submitted"):
                return "budget" if self.withheld else "finished"
            await self._sleep(self.cfg.batch_poll)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))

    # -- submission --------------------------------------------------------------------------
    async def _resume_submissions(self) -> None:
        """Batches a killed session left half-submitted."""
        for b in self.store.batches("uploading"):  # upload unfinished: prepare them again
            self.store.abandon(b["n"])
        for b in self.store.batches("submitting"):  # uploaded; created or not?
            found = await self.provider.find(b["input_file_id"])
            if found is None:
                found = await self._checked(self.provider.create(b["input_file_id"], b["round"]),
                                            "create the batch")
            self.store.update(b["n"], batch_id=found.id, state="submitted", status=found.status)
            self.say(f"batch {found.id} (round {b['round']}): resumed after a restart")
            self.on_change()

    async def _checked(self, coro: Any, what: str) -> Any:
        try:
            return await coro
        except Exception as exc:
            raise self._refused(exc, what) from None

    def _refused(self, exc: BaseException, what: str) -> UsageError:
        hint = ""
        if fatal(exc):
            hint = (" Check the API key (e.g. OPENAI_API_KEY), the model name and --api-base: "
                    "the server must implement OpenAI's files and batches endpoints.")
        return UsageError(f"--batch: could not {what}: {short(exc)}.{hint} Requests already "
                          f"submitted are recorded in {self.run_dir}; run the same command "
                          "again to resume.")

    async def _submit(self, reqs: list[PendingRequest], attempt: int) -> None:
        """Upload ``reqs`` (one round, within the limits) as one batch."""
        if not reqs:
            return
        limit = self.cfg.budget
        if limit is not None:
            fits: list[PendingRequest] = []
            for r in reqs:
                c = r.est_cost or 0.0
                if self.committed + c > limit:
                    break
                self.committed += c
                fits.append(r)
            self.withheld += len(reqs) - len(fits)
            reqs = fits
            if not reqs:
                return
        keep_sent = bool(self.pseudonyms is not None and self.cfg.privacy.redacted_output)
        rows = None
        if self.pseudonyms is not None:  # the key is stored before the requests are sent
            rows = self.pseudonyms.rows_for(*(self.reds.get(r.unit_id) for r in reqs))
        n, ids = self.store.new_batch(self.target.provider, attempt, reqs, self.session,
                                      keep_sent, rows)
        if self.pseudonyms is not None:
            self.pseudonyms.mark_saved(rows)
        lines = [json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT,
                             "body": r.request}, ensure_ascii=False, separators=(",", ":"))
                 for cid, r in zip(ids, reqs, strict=True)]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        self.store.update(n, bytes=len(data))
        try:
            f = await self._checked(self.provider.upload(data), "upload the batch file")
        except BaseException:
            self.store.abandon(n)
            raise
        self.store.update(n, input_file_id=f.id, state="submitting")
        b = await self._checked(self.provider.create(f.id, attempt), "create the batch")
        self.store.update(n, batch_id=b.id, state="submitted", status=b.status)
        self.say(f"batch {b.id} (round {attempt}): {len(reqs):,} requests submitted "
                 f"({len(data) / 1024:,.1f} KB)")
        self.on_change()

    # -- polling -----------------------------------------------------------------------------
    async def _poll(self) -> int:
        """Poll every submitted batch once; ingest the finished ones. Returns how many."""
        ingested = 0
        for row in self.store.batches("submitted"):
            if self.stop.is_set():
                break
            try:
                b = await self.provider.retrieve(row["batch_id"])
            except Exception as exc:
                if fatal(exc):
                    raise self._refused(exc, f"poll batch {row['batch_id']}") from None
                self.say(f"batch {row['batch_id']}: polling failed ({short(exc)}); will retry")
                continue
            counts = getattr(b, "request_counts", None)
            counts_d = counts.model_dump() if hasattr(counts, "model_dump") else counts
            self.store.update(row["n"], status=b.status,
                              request_counts=json.dumps(counts_d) if counts_d else None,
                              output_file_id=getattr(b, "output_file_id", None),
                              error_file_id=getattr(b, "error_file_id", None))
            state = (b.status, json.dumps(counts_d, sort_keys=True))
            if self.seen.get(row["n"]) != state:
                self.seen[row["n"]] = state
                done = f" {counts_d.get('completed', 0)}/{counts_d.get('total', 0)}" \
                    if counts_d else ""
                self.say(f"batch {row['batch_id']} (round {row['round']}): {b.status}{done}")
            if b.status in TERMINAL:
                try:
                    await self._ingest(row, b)
                except Exception as exc:
                    if fatal(exc):
                        raise self._refused(exc, f"download the results of {row['batch_id']}"
                                            ) from None
                    self.say(f"batch {row['batch_id']}: downloading results failed "
                             f"({short(exc)}); will retry")
                    continue
                ingested += 1
                self.on_change()
        return ingested

    async def _ingest(self, row: dict[str, Any], b: Any) -> None:
        bid = row["batch_id"]
        lines: dict[str, dict[str, Any]] = {}
        for fid in (getattr(b, "output_file_id", None), getattr(b, "error_file_id", None)):
            if not fid:
                continue
            for raw in (await self.provider.content(fid)).decode("utf-8").splitlines():
                if raw.strip():
                    try:
                        obj = json.loads(raw)
                    except json.JSONDecodeError:
                        continue
                    if obj.get("custom_id") is not None:
                        lines[str(obj["custom_id"])] = obj
        results: dict[int, tuple[str, dict[str, Any] | None, str | None]] = {}
        keys = dict(self.db.db.execute(
            "SELECT id, key FROM batch_requests WHERE batch_n=?", (row["n"],)).fetchall())
        missing = missing_reason(b, bid)
        for cid, rid in self.store.requests_of(row["n"]).items():
            obj = lines.get(cid)
            results[rid] = result_of_line(obj, bid) if obj else ("error", None, missing)
        self.store.ingest(row["n"], results)
        if self.cache is not None:  # an identical request is never paid twice, across runs
            for rid, (st, body, _) in results.items():
                if st == "answered" and body is not None and keys.get(rid):
                    try:
                        dump = model_response(body).model_dump(mode="json")
                    except Exception:
                        continue
                    if no_answer(dump) is None:  # an empty answer or a refusal is asked again
                        self.cache.put(keys[rid], self.cfg.settings.model, dump)

    # -- replay ------------------------------------------------------------------------------
    def _redact(self, unit: Any, sent: dict[str, Any] | None) -> Any:
        if self.pseudonyms is None:
            return None
        red = self.reds.get(unit.id)
        if red is None and sent is not None:
            red = _Sent(sent.get("text") or "", sent.get("context"), sent.get("counts") or {})
        if red is None:
            red = self.pseudonyms.redact_unit(unit.text, unit.context)
        self.reds[unit.id] = red
        return red

    async def _advance(self) -> None:
        """Replay every open unit; save the finished ones; submit what the others need."""
        from vsdcoder.coding.runner import units_to_code
        from vsdcoder.data.read import UnitReader

        waiting = self.store.waiting_units()
        answers, sent = self.store.answers()
        groups: dict[int, list[PendingRequest]] = {}
        sizes: dict[int, int] = {}
        lim = self.target.limits
        n = 0
        for unit in units_to_code(self.cfg, UnitReader(self.cfg.data)):
            if unit.id in waiting or unit.id in self.done:
                continue
            n += 1
            if n % 100 == 0:
                await asyncio.sleep(0)  # let a Ctrl-C in
            if self.stop.is_set():
                return
            try:
                red = self._redact(unit, sent.get(unit.id))
            except Exception as exc:  # never send a text that could not be redacted
                self.status = "redaction_failed"
                self.error = f"unit {unit.id}: {type(exc).__name__}: {str(exc)[:300]}"
                return
            res, req, cached = await self.coder.step(
                unit, answers.get(unit.id, {}),
                send_text=red.send_text if red is not None else None,
                send_context=red.send_context if red is not None else None)
            for a in cached:
                self.store.add_cached(unit.id, a)
            if res is not None:
                self._save(res, red)
                continue
            assert req is not None
            if red is not None:
                req.sent = {"text": red.send_text, "context": red.send_context,
                            "counts": dict(red.counts)}
            req.est_cost = self._estimate(req.request)
            size = len(_body_bytes(req.request)) + LINE_OVERHEAD
            group = groups.setdefault(req.attempt, [])
            if group and (len(group) + 1 > lim.max_requests
                          or sizes[req.attempt] + size > lim.max_bytes):
                await self._submit(group, req.attempt)
                group.clear()
                sizes[req.attempt] = 0
            group.append(req)
            sizes[req.attempt] = sizes.get(req.attempt, 0) + size
        for attempt, group in sorted(groups.items()):
            if self.stop.is_set():
                return
            await self._submit(group, attempt)
        self.say(f"{self.coded:,} unit(s) saved this session ({self.failed:,} failed); "
                 f"{len(self.store.waiting_units()):,} waiting on a batch")

    def _estimate(self, body: dict[str, Any]) -> float | None:
        if self.cfg.budget is None:
            return None
        return self.coder.pricing.cost(*estimate_tokens(self.cfg.settings.model, body))

    def _save(self, res: UnitResult, red: Any) -> None:
        if red is not None:
            from vsdcoder.privacy.engine import apply_redaction

            apply_redaction(res, red, self.cfg.privacy.redacted_output)
        if self.pseudonyms is None:
            self.db.save(res, self.session, self.cfg.store_text)
        else:
            rows = self.pseudonyms.rows_for(red)
            self.db.save(res, self.session, self.cfg.store_text, pseudonyms=rows)
            self.pseudonyms.mark_saved(rows)
        self.store.close(res.id, self.cfg.store_text)
        self.reds.pop(res.id, None)
        self.coded += 1
        self.failed += res.status == "failed"


@dataclass
class _Sent:
    """What was sent for a unit of a ``--redacted-output`` run (its key is not kept)."""

    send_text: str
    send_context: str | None
    counts: dict[str, int]


# -- entry points ------------------------------------------------------------------------------


def _manifest_batch(manifest: dict[str, Any], store: BatchStore, target: BatchTarget,
                    cfg: Any) -> dict[str, Any]:
    m = dict(manifest)
    m["run"] = dict(m.get("run") or {}, batch=True)
    m["batch"] = {
        "provider": target.provider, "endpoint": ENDPOINT, "completion_window": "24h",
        "model": target.model_name, "poll_seconds": cfg.batch_poll,
        "max_requests": target.limits.max_requests, "max_bytes": target.limits.max_bytes,
        "pricing": PRICING_NOTE, "batches": store.manifest_rows(),
        "in_flight": len(store.waiting_units()),
    }
    return m


def run_batch(cfg: Any, compiled: Any, loaded: Any, db: RunDB, run_dir: Path, cache: Any,
              data_hash: str, prior: dict[str, Any] | None) -> Any:
    """A coding session over a provider batch API (the caller holds the run's lock).

    Args:
        cfg: The :class:`~vsdcoder.coding.runner.CodeConfig` (``batch`` set).
        compiled: The compiled codebook.
        loaded: The loaded codebook.
        db: The open run database.
        run_dir: The run directory.
        cache: The response cache, or None.
        data_hash: Hash of the data file.
        prior: The manifest of an earlier session, or None.

    Returns:
        A :class:`~vsdcoder.coding.runner.RunSummary`; its status is finished, interrupted
        (batches stay submitted; the same command polls them again) or budget.

    Raises:
        UsageError: an unsupported provider, a refused upload or batch, a redaction failure.
    """
    from vsdcoder.coding.runner import RunSummary, save_skip, units_to_code
    from vsdcoder.data.read import UnitReader
    from vsdcoder.privacy.engine import RunPseudonyms
    from vsdcoder.store import manifest as mf
    from vsdcoder.store.exports import write_exports

    target = batch_target(cfg.settings, cfg.batch_size)
    reader = UnitReader(cfg.data)
    # validates the whole file before anything is sent or a session is started
    for _ in units_to_code(cfg, reader):
        pass
    pseudonyms = None
    if cfg.privacy.redact:
        pseudonyms = RunPseudonyms.open(cfg.privacy.redact, db, run_dir,
                                        keep_key=not cfg.privacy.redacted_output)
    store = BatchStore(db)
    session = db.start_session(cfg.argv)
    started = time.time()
    manifest = _manifest_batch(mf.build(cfg, compiled, loaded, data_hash, run_dir, prior),
                               store, target, cfg)
    mf.write(run_dir, manifest)
    for skip in reader.skips:
        save_skip(db, skip, session, cfg.store_text)

    def on_change() -> None:  # batch ids in the manifest as soon as they exist
        mf.write(run_dir, _manifest_batch(manifest, store, target, cfg))

    runner = _BatchSession(cfg, compiled, db, run_dir, cache, session, target, pseudonyms,
                           on_change)
    control: dict[str, Any] = {}

    def interrupt() -> None:  # Ctrl-C while the loop runs in a worker thread (a notebook)
        if "loop" in control:
            control["loop"].call_soon_threadsafe(control["interrupt"])

    status = "failed"
    try:
        status = run_sync(runner.main(control), on_interrupt=interrupt)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        db.end_session(session, status)
        write_exports(db, run_dir, compiled.codebook, list(cfg.data.meta_cols))
        manifest = _manifest_batch(mf.finish(manifest, db, status, started), store, target,
                                   cfg)
        mf.write(run_dir, manifest)
    if status == "interrupted":
        runner.say(f"interrupted: {manifest['batch']['in_flight']:,} unit(s) stay in submitted "
                   "batches; run the same command to poll them again")
    if status == "redaction_failed":
        raise UsageError(
            f"redaction failed, so the run stopped before sending that unit: {runner.error}\n"
            f"Units coded so far are saved in {run_dir}.")
    return RunSummary(run_dir, status, db.counts(), db.totals(), runner.coded,
                      time.time() - started, privacy=manifest.get("privacy"))
