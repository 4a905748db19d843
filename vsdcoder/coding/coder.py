"""Code one unit with a model: instructor over LiteLLM, with re-asks, HTTP retries, cache and logs.

- Validation failures (unknown code, gate broken, quote not verbatim...) are sent back to the
  model with the codebook's own message and re-asked (``max_retries`` re-asks, instructor).
- Transient HTTP failures (429, 5xx, timeouts, connection errors) are retried with
  exponential backoff and jitter, honouring ``Retry-After`` (tenacity), without a re-ask.
- Every request (including cache hits and failed HTTP attempts) is logged as a :class:`CallLog`.
- When re-asks run out and the only remaining problem is the quote, the answer is kept and
  flagged ``quote_verified: false``; anything else is a failure with its reason. An answer is
  never coerced into a code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from vsdcoder.codebook.compile import CompiledCodebook, answer_errors
from vsdcoder.codebook.model import SPECIFY_SUFFIX
from vsdcoder.codebook.response_model import ANSWER_CONTEXT
from vsdcoder.data.read import Unit
from vsdcoder.evidence import count_words, dimension_records, find_quote
from vsdcoder.store.rundb import CallLog, UnitResult

#: Request parameters never logged or cached (secrets).
SECRET_KEYS = ("api_key", "aws_secret_access_key", "aws_access_key_id", "aws_session_token",
               "azure_ad_token", "vertex_credentials", "extra_headers", "headers")


@dataclass
class ModelSettings:
    """Which model to call and how."""

    model: str
    api_base: str | None = None
    api_key: str | None = None  # passed through to LiteLLM only; never logged or stored
    mode: str = "tools"
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    timeout: float = 120.0
    max_retries: int = 2
    http_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0

    def public(self) -> dict[str, Any]:
        """Settings safe to write to the manifest (no key)."""
        return {"model": self.model, "api_base": self.api_base, "mode": self.mode,
                "temperature": self.temperature, "seed": self.seed, "max_tokens": self.max_tokens,
                "timeout": self.timeout, "max_retries": self.max_retries,
                "http_retries": self.http_retries}


class BudgetExceeded(Exception):
    """The next call would go over ``--budget``.

    ``partial``: raised from a multi-unit call, the units it had already finished (aligned
    with its units, None where a unit still needed a call), so their paid answers are saved.
    """

    partial: list[Any] | None = None

    def record(self, unit_id: str, calls: list[CallLog]) -> None:
        """Keep the calls already paid for a unit that will not be saved (logged, not lost)."""
        if not hasattr(self, "spent"):
            self.spent: list[tuple[str, list[CallLog]]] = []
        if calls:
            self.spent.append((unit_id, list(calls)))


class _Probe(Exception):
    """Raised inside a probe call to capture the request instructor would send."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


@dataclass
class _UnitLog:
    calls: list[CallLog] = field(default_factory=list)
    attempt: int = 0
    probe: bool = False


_current: contextvars.ContextVar[_UnitLog] = contextvars.ContextVar("vsdcoder_unit_log")


def _public_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    # a copy of the message list: instructor appends its re-ask messages to the list it
    # passed, which would otherwise show up in the logged request of the earlier attempt
    return {k: list(v) if k == "messages" and isinstance(v, list) else v
            for k, v in kwargs.items() if k not in SECRET_KEYS}


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (Retry-After header), if any."""
    headers = None
    resp = getattr(exc, "response", None)
    if resp is not None:
        headers = getattr(resp, "headers", None)
    headers = headers or getattr(exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class WaitRetryAfter:
    """tenacity wait: the server's ``Retry-After`` if it sent one, else exponential with jitter."""

    def __init__(self, base: float, maximum: float):
        self.base = base
        self.maximum = maximum

    def __call__(self, retry_state: Any) -> float:
        """Seconds to wait before the next try."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = _retry_after(exc) if exc is not None else None
        if asked is not None:
            return min(asked, RETRY_AFTER_MAX)  # the server's wish, not our backoff cap
        ceiling = min(self.maximum, self.base * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)


#: Messages of client-side configuration errors that no retry can fix (e.g. no API key).
_CONFIG_ERRORS = ("Missing credentials", "api_key client option must be set")
#: Longest Retry-After honoured (seconds); a longer wish is treated as this long.
RETRY_AFTER_MAX = 900.0


class ProviderRejected(Exception):
    """The provider refused the credentials or the model: no unit can succeed, stop the run."""


def is_fatal(exc: BaseException) -> bool:
    """Authentication, permission and unknown-model errors: retrying other units is pointless."""
    import litellm

    if any(p in str(exc) for p in _CONFIG_ERRORS):
        return True
    fatal = (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError)
    return isinstance(exc, fatal)


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors are worth retrying; the rest are not."""
    import litellm

    if isinstance(exc, BudgetExceeded):
        return False
    transient = (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError,
                 litellm.InternalServerError, litellm.ServiceUnavailableError)
    if any(p in str(exc) for p in _CONFIG_ERRORS):
        return False  # raised before any request (LiteLLM reports it as a 500): fix, not retry
    original = _server_status(exc)
    if original is not None and 400 <= original < 500 and original not in (408, 409, 429):
        return False  # e.g. 413 "request too large", which LiteLLM reports as a 429
    if isinstance(exc, transient):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _server_status(exc: BaseException) -> int | None:
    """The HTTP status the server sent, from the provider error LiteLLM wrapped (if any).

    LiteLLM maps some statuses onto its own classes and codes (a 413 becomes a 429
    ``RateLimitError``); the provider's exception it was raised from keeps the real one. It is
    read when the error is first caught (``server_status``), since re-raising it elsewhere
    replaces ``__context__``.
    """
    known = getattr(exc, "server_status", None)
    if isinstance(known, int):
        return known
    seen = 0
    inner = exc.__context__
    while inner is not None and seen < 5:
        status = getattr(inner, "status_code", None)
        if isinstance(status, int):
            return status
        inner, seen = inner.__context__, seen + 1
    return None


def _usage(resp: Any) -> tuple[int, int, int]:
    u = getattr(resp, "usage", None)
    if u is None:
        return 0, 0, 0
    pin = int(getattr(u, "prompt_tokens", 0) or 0)
    pout = int(getattr(u, "completion_tokens", 0) or 0)
    details = getattr(u, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    return pin, pout, cached


def _cost(resp: Any) -> float | None:
    hidden = getattr(resp, "_hidden_params", None) or {}
    c = hidden.get("response_cost")
    if c is not None:
        return float(c)
    try:
        import litellm

        return float(litellm.completion_cost(completion_response=resp))
    except Exception:
        return None


def no_answer(response: dict[str, Any] | None) -> str | None:
    """Why a logged response carries no answer at all, or None when it has one.

    No choices, a refusal, or a message with neither content nor tool calls: such a response
    is a failure of the server or a refusal of the model, so it is reported as that (not as a
    schema error) and never cached.
    """
    if not isinstance(response, dict):
        return None
    choices = response.get("choices") or []
    if not choices:
        return "the server's response had no choices (no answer at all)"
    msg = (choices[0] or {}).get("message") or {}
    if msg.get("content") or msg.get("tool_calls") or msg.get("function_call"):
        return None
    refusal = msg.get("refusal") or (msg.get("provider_specific_fields") or {}).get("refusal")
    if refusal:  # LiteLLM keeps OpenAI's refusal among the provider-specific fields
        return f"the model refused to answer: {str(refusal)[:500]}"
    return (f"the model's answer was empty (finish_reason="
            f"{(choices[0] or {}).get('finish_reason')})")


def clear_refusal(resp: Any) -> None:
    """Clear ``message.refusal`` in a response, so instructor re-asks a refusal.

    LiteLLM 1.110 puts OpenAI's refusal on the message itself (1.106 kept it only among the
    provider-specific fields), and instructor answers a message with a refusal by raising an
    AssertionError, which it never re-asks: whether a refusal was re-asked depended on the
    LiteLLM release installed.
    Cleared, a refusal without an answer is re-asked like an empty message; what the model
    said stays in the logged response (see :func:`no_answer`).
    """
    for choice in getattr(resp, "choices", None) or []:
        msg = getattr(choice, "message", None)
        if msg is not None and getattr(msg, "refusal", None) is not None:
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                msg.refusal = None


def extract_json(resp: Any) -> str | None:
    """The JSON text of an answer: the first tool call's arguments, else the message content."""
    try:
        msg = resp.choices[0].message
    except (AttributeError, IndexError):
        return None
    calls = getattr(msg, "tool_calls", None)
    if calls:
        return calls[0].function.arguments
    content = getattr(msg, "content", None)
    if not content:
        return None
    m = re.search(r"```(?:json)?\s*(.*?)```", content, re.S)
    if m:
        return m.group(1)
    start, end = content.find("{"), content.rfind("}")
    return content[start:end + 1] if start >= 0 and end > start else content


class LLMCoder:
    """Codes units with one model and one compiled codebook.

    Args:
        compiled: The compiled codebook.
        settings: Model and retry settings.
        cache: A :class:`~vsdcoder.coding.cache.ResponseCache`, or None to bypass it.
        limiter: Optional rate limiter with ``async acquire(tokens)``.
        budget: Optional object with ``check(estimated_cost)`` / ``add(cost)``.
    """

    def __init__(self, compiled: CompiledCodebook, settings: ModelSettings, cache=None,
                 limiter=None, budget=None):
        import instructor
        import litellm

        from vsdcoder.coding.providers import instructor_mode

        if settings.model.startswith("local/"):
            from vsdcoder.coding.local import register_with_litellm

            register_with_litellm()
        self.compiled = compiled
        self.settings = settings
        self.cache = cache
        self.limiter = limiter
        self.budget = budget
        self._litellm = litellm
        quiet_libraries()
        self.client = instructor.from_litellm(self._answer, mode=instructor_mode(settings.mode))
        from instructor.v2.core.function_calls import response_schema

        # wrap once: instructor would otherwise rebuild the wrapper model on every call
        self.response_model = response_schema(compiled.response_model)
        self.client.on("parse:error", self._on_parse_error)
        self._multi = None
        self._multi_model = None

    # -- one HTTP request (or cache hit), with transient retries ---------------------------
    async def _answer(self, **kwargs: Any) -> Any:
        """The model call instructor makes: :meth:`_complete`, its refusal field cleared."""
        resp = await self._complete(**kwargs)
        clear_refusal(resp)
        return resp

    async def _complete(self, **kwargs: Any) -> Any:
        from vsdcoder.coding.cache import request_key

        log = _current.get()
        log.attempt += 1
        public = _public_request(kwargs)
        key = request_key(public)
        if log.probe:
            raise _Probe(key)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                resp = self._litellm.ModelResponse(**hit)
                pin, pout, cached = _usage(resp)
                log.calls.append(CallLog(attempt=log.attempt, started=time.time(),
                                         model=self.settings.model, request=public, response=hit,
                                         latency=0.0, tokens_in=pin, tokens_out=pout,
                                         cached_tokens=cached, cost=0.0, cache_hit=True))
                return resp
        s = self.settings
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(s.http_retries + 1),
            retry=retry_if_exception(is_transient),
            wait=WaitRetryAfter(s.backoff_base, s.backoff_max),
            reraise=True,
        ):
            with attempt:
                return await self._one_http_call(kwargs, public, key, log)
        raise RuntimeError("unreachable")  # pragma: no cover

    async def _one_http_call(self, kwargs: dict[str, Any], public: dict[str, Any], key: str,
                             log: _UnitLog) -> Any:
        s = self.settings
        if self.budget is not None:
            self.budget.check()
        if self.limiter is not None:
            await self.limiter.acquire(kwargs)
        call = CallLog(attempt=log.attempt, started=time.time(), model=s.model, request=public)
        t0 = time.perf_counter()
        try:
            resp = await self._litellm.acompletion(
                **kwargs, api_base=s.api_base, api_key=s.api_key, timeout=s.timeout,
                num_retries=0, max_retries=0)
        except Exception as exc:
            call.latency = time.perf_counter() - t0
            with contextlib.suppress(AttributeError):  # an exception type with __slots__
                exc.server_status = _server_status(exc)  # type: ignore[attr-defined]
            call.status = "http_error"
            call.errors = [f"{type(exc).__name__}: {str(exc)[:500]}"]
            log.calls.append(call)
            raise
        call.latency = time.perf_counter() - t0
        call.response = resp.model_dump(mode="json")
        call.tokens_in, call.tokens_out, call.cached_tokens = _usage(resp)
        call.cost = _cost(resp)
        log.calls.append(call)
        if self.budget is not None and call.cost:
            self.budget.add(call.cost)
        if self.cache is not None and no_answer(call.response) is None:
            self.cache.put(key, s.model, call.response)
        return resp

    def _on_parse_error(self, error: Exception, *args: Any, **kwargs: Any) -> None:
        log = _current.get(None)
        if log and log.calls:
            log.calls[-1].errors = answer_errors(error)
            log.calls[-1].status = "invalid"

    def _params(self) -> dict[str, Any]:
        s = self.settings
        params: dict[str, Any] = {"temperature": s.temperature}
        if s.seed is not None:
            params["seed"] = s.seed
        if s.max_tokens is not None:
            params["max_tokens"] = s.max_tokens
        return params

    def first_request_key(self, unit: Unit, send_text: str | None = None,
                          send_context: str | None = None) -> str:
        """Cache key of the first request for ``unit``, exactly as instructor would build it.

        ``send_text``/``send_context``: the text and context actually sent (e.g. redacted).
        """
        text = unit.text if send_text is None else send_text
        context = unit.context if send_context is None else send_context
        return self._probe_key(self.compiled.messages(text, context), self.response_model)

    def group_request_key(self, sends: list[tuple[str, str | None]]) -> str:
        """Cache key of the first multi-unit request for ``(text, context)`` pairs."""
        if len(sends) == 1:
            return self._probe_key(self.compiled.messages(*sends[0]), self.response_model)
        messages = self.multi.messages([(str(i + 1), t, c) for i, (t, c) in enumerate(sends)])
        return self._probe_key(messages, self._multi_model)

    def _probe_key(self, messages: list[dict[str, str]], response_model: Any) -> str:
        log = _UnitLog(probe=True)
        token = _current.set(log)
        try:
            run_sync(self.client.chat.completions.create(
                model=self.settings.model, messages=messages,
                response_model=response_model, max_retries=0, **self._params()))
        except _Probe as p:
            return p.key
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, _Probe):
                return cause.key
            raise
        finally:
            _current.reset(token)
        raise RuntimeError("probe did not reach the model call")

    # -- one unit ------------------------------------------------------------------------
    async def code(self, unit: Unit, send_text: str | None = None,
                   send_context: str | None = None,
                   reask: tuple[str, list[str], int] | None = None) -> UnitResult:
        """Code ``unit``; never raises for model or provider failures (they become ``failed``).

        Args:
            unit: The unit.
            send_text: The text actually sent (e.g. redacted); defaults to ``unit.text``.
            send_context: The context actually sent; defaults to ``unit.context``.
            reask: ``(answer, errors, attempts so far)`` when this unit's answer from a
                multi-unit call was wrong: the unit is re-asked on its own, with that answer
                and the codebook's messages about it, using the re-asks that are left.
        """
        log = _UnitLog(attempt=reask[2] if reask else 0)
        token = _current.set(log)
        text = unit.text if send_text is None else send_text
        context = unit.context if send_context is None else send_context
        s = self.settings
        params = self._params()
        res = UnitResult(id=unit.id, row=unit.row, status="failed", text=unit.text,
                         context=unit.context, meta=unit.meta)
        messages = self.compiled.messages(text, context)
        retries = s.max_retries
        if reask is not None:
            messages += [{"role": "assistant", "content": reask[0]},
                         {"role": "user", "content": reask_message(reask[1])}]
            retries = max(0, s.max_retries - 1)
        # the validation context travels in a ContextVar, not instructor's context=, which
        # would render every message (the unit's text included) as a Jinja template
        ctx_token = ANSWER_CONTEXT.set({"text": text})
        try:
            obj = await self.client.chat.completions.create(
                model=s.model, messages=messages,
                response_model=self.response_model, max_retries=retries, **params)
            if log.calls:
                log.calls[-1].parsed = obj.model_dump(mode="json")
            res.status = "coded"
            res.result, res.quote_verified = self.result_from_answer(
                obj.model_dump(mode="json"), text)
        except BudgetExceeded as exc:
            exc.record(unit.id, log.calls)
            raise
        except Exception as exc:
            try:
                self._fail_or_keep(exc, res, text)
            except BudgetExceeded as stop:
                stop.record(unit.id, log.calls)
                raise
        finally:
            ANSWER_CONTEXT.reset(ctx_token)
            _current.reset(token)
        res.calls = log.calls
        res.attempts = max((c.attempt for c in log.calls), default=0)
        res.tokens_in = sum(c.tokens_in for c in log.calls)
        res.tokens_out = sum(c.tokens_out for c in log.calls)
        res.cost = sum(c.cost or 0.0 for c in log.calls)
        res.cached = bool(log.calls) and all(c.cache_hit for c in log.calls)
        return res

    # -- several units in one call (--units-per-call) ----------------------------------
    @property
    def multi(self):
        """The :class:`~vsdcoder.codebook.multi.MultiCodebook` (built on first use)."""
        if self._multi is None:
            from instructor.v2.core.function_calls import response_schema

            from vsdcoder.codebook.multi import MultiCodebook

            self._multi = MultiCodebook(self.compiled)
            self._multi_model = response_schema(self._multi.response_model)
        return self._multi

    async def code_group(self, units: list[Unit],
                         sends: list[tuple[str, str | None]] | None = None) -> list[UnitResult]:
        """Code several units in one call; each answer is checked (and re-asked) on its own.

        The units get short ids 1..K in the prompt (their own ids are never sent). A unit
        whose answer is missing or breaks the codebook is re-asked alone with that answer and
        the codebook's messages; if the call as a whole cannot be parsed after its re-asks, or
        the provider refuses it for its content (a content filter, the context window, any
        other 4xx), every unit is coded on its own; a transient failure that outlasts its
        retries (429, 5xx, timeouts) fails every unit with its reason.
        The shared call is logged on every unit's row (request and response on the first
        unit's only) with tokens and cost split between them.

        Args:
            units: The units (one unit is simply :meth:`code`).
            sends: ``(text, context)`` actually sent per unit (e.g. redacted).
        """
        from vsdcoder.codebook.multi import split_answers

        sends = sends or [(u.text, u.context) for u in units]
        if len(units) == 1:
            return [await self.code(units[0], *sends[0])]
        multi = self.multi
        ids = [str(i + 1) for i in range(len(units))]
        s = self.settings
        log = _UnitLog()
        token = _current.set(log)
        answers: list[dict[str, Any]] | None = None
        failure: Exception | None = None
        try:
            obj = await self.client.chat.completions.create(
                model=s.model, messages=multi.messages(
                    [(ids[i], t, c) for i, (t, c) in enumerate(sends)]),
                response_model=self._multi_model, max_retries=s.max_retries, **self._params())
            answers = obj.answers
            if log.calls:
                log.calls[-1].parsed = obj.model_dump(mode="json")
        except BudgetExceeded as exc:
            exc.record(units[0].id, log.calls)  # the whole call's cost, on its first unit
            raise
        except Exception as exc:
            failure = exc
        finally:
            _current.reset(token)
        group = f"g{random.getrandbits(64):016x}"
        shared = log.calls
        if failure is not None:
            return await self._group_failed(units, sends, shared, group, failure)
        split = split_answers(answers or [], ids)
        results: list[Any] = []
        pending: list[tuple[list[CallLog], Any, list[str]]] = []
        for i, (unit, (text, _context)) in enumerate(zip(units, sends, strict=True)):
            item = split[ids[i]]
            errors: list[str] = []
            res = UnitResult(id=unit.id, row=unit.row, status="failed", text=unit.text,
                             context=unit.context, meta=unit.meta)
            if isinstance(item, str):
                errors = [item]
            else:
                try:
                    ans = self.compiled.response_model.model_validate(
                        item, context={"text": text})
                except Exception as exc:
                    errors = answer_errors(exc)
                else:
                    res.status = "coded"
                    res.result, res.quote_verified = self.result_from_answer(
                        ans.model_dump(mode="json"), text)
            calls = _shares(shared, i, len(units), group, item, errors)
            if errors and s.max_retries > 0:
                res = None  # re-asked alone below, once every valid answer is kept
            else:
                if errors:
                    self._keep_unverified_or_fail(res, item, errors, text)
                res.calls = calls
                _sum_calls(res)
            results.append(res)
            pending.append((calls, item, errors))
        for i, (unit, (text, context)) in enumerate(zip(units, sends, strict=True)):
            if results[i] is not None:
                continue
            calls, item, errors = pending[i]
            raw = json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else ""
            try:
                res = await self.code(unit, text, context, reask=(raw, errors, len(shared)))
            except BudgetExceeded as exc:
                exc.partial = results  # the answers already paid for are saved
                for j in range(i, len(units)):  # the others' shares of the shared call
                    if results[j] is None:
                        exc.record(units[j].id, pending[j][0])
                raise
            res.calls = calls + res.calls
            _sum_calls(res)
            results[i] = res
        return results

    async def _group_failed(self, units: list[Unit], sends: list[tuple[str, str | None]],
                            shared: list[CallLog], group: str,
                            failure: Exception) -> list[UnitResult]:
        from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
        from pydantic import ValidationError

        cause = failure.__cause__ if isinstance(failure, InstructorRetryException) else None
        if isinstance(cause, BudgetExceeded):
            raise cause
        inner = cause if cause is not None else failure
        why: str | None = None  # None: the answer had the wrong shape, code each unit alone
        shape: list[str] = []  # what was wrong with it, logged on the shared call
        empty = no_answer(shared[-1].response) if shared else None
        if empty is not None:
            shape = [f"{empty}; each unit is coded on its own"]
        elif isinstance(inner, IncompleteOutputException):
            shape = ["the answer was cut off (finish_reason=length); each unit is coded on "
                     "its own (or raise --max-tokens)"]
        elif isinstance(inner, (ValidationError, ValueError)):
            shape = answer_errors(inner)
        else:
            if is_fatal(inner):
                raise ProviderRejected(f"{type(inner).__name__}: {str(inner)[:600]}") from None
            why = f"{type(inner).__name__}: {str(inner)[:1000]}"
            if not is_transient(inner):
                # refused for its content (a content filter, a context window, a 400): one
                # unit may be the cause, so each is coded alone and only that one fails
                shape = [f"the provider refused the multi-unit call ({why[:500]}); each unit "
                         "is coded on its own"]
                why = None
        results = []
        for i, (unit, (text, context)) in enumerate(zip(units, sends, strict=True)):
            calls = _shares(shared, i, len(units), group, None, shape)
            if why is None:  # the call's answer never had the right shape: code each alone
                try:
                    res = await self.code(unit, text, context)
                except BudgetExceeded as exc:
                    exc.partial = results + [None] * (len(units) - len(results))
                    for j in range(i, len(units)):  # the others' shares of the shared call
                        exc.record(units[j].id, _shares(shared, j, len(units), group, None,
                                                        shape))
                    raise
                for c in res.calls:
                    c.attempt += len(shared)
            else:
                res = UnitResult(id=unit.id, row=unit.row, status="failed", text=unit.text,
                                 context=unit.context, meta=unit.meta,
                                 error="multi-unit call failed: " + why)
            res.calls = calls + res.calls
            _sum_calls(res)
            results.append(res)
        return results

    def _keep_unverified_or_fail(self, res: UnitResult, item: Any, errors: list[str],
                                 text: str) -> None:
        """No re-asks left: keep an answer whose only problem is its quote, else fail."""
        if isinstance(item, dict):
            try:
                obj = self.compiled.response_model.model_validate(
                    item, context={"text": text, "quotes": "lenient"})
            except Exception:
                pass
            else:
                res.status = "coded"
                res.result, res.quote_verified = self.result_from_answer(
                    obj.model_dump(mode="json"), text)
                res.error = "quote not verified: " + "; ".join(errors)[:2000]
                return
        res.error = "invalid answer: " + "; ".join(errors)[:2000]

    def _fail_or_keep(self, exc: Exception, res: UnitResult, text: str) -> None:
        from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
        from pydantic import ValidationError

        cause = exc.__cause__ if isinstance(exc, InstructorRetryException) else None
        if isinstance(cause, BudgetExceeded):
            raise cause
        if isinstance(exc, IncompleteOutputException) or isinstance(
                cause, IncompleteOutputException):
            res.error = ("the answer was cut off (finish_reason=length); raise --max-tokens")
            return
        if cause is not None and not isinstance(cause, (ValidationError, ValueError)):
            exc = cause  # a provider error surfaced through instructor
        if is_fatal(exc):
            raise ProviderRejected(f"{type(exc).__name__}: {str(exc)[:600]}") from None
        log = _current.get(None)
        empty = no_answer(log.calls[-1].response) if log and log.calls else None
        if empty is not None:
            res.error = f"no answer: {empty}"
            return
        if isinstance(exc, InstructorRetryException):
            last = exc.last_completion
            raw = extract_json(last) if last is not None else None
            errors = answer_errors(exc.__cause__) if exc.__cause__ else [str(exc)]
            if raw is not None:
                try:
                    obj = self.compiled.response_model.model_validate_json(
                        raw, context={"text": text, "quotes": "lenient"})
                except Exception as exc2:
                    errors = answer_errors(exc2)
                else:
                    res.status = "coded"
                    res.result, res.quote_verified = self.result_from_answer(
                        obj.model_dump(mode="json"), text)
                    res.error = "quote not verified after re-asks: " + "; ".join(
                        self._last_errors() or errors)[:2000]
                    return
            res.error = "invalid answer after re-asks: " + "; ".join(errors)[:2000]
            return
        res.error = f"{type(exc).__name__}: {str(exc)[:1000]}"

    def _last_errors(self) -> list[str]:
        log = _current.get(None)
        if log:
            for c in reversed(log.calls):
                if c.errors:
                    return c.errors
        return []

    # -- answer -> stored result --------------------------------------------------------
    def result_from_answer(self, answer: dict[str, Any], text: str) -> tuple[dict[str, Any], bool]:
        """Stored result of a valid answer, and whether every quote was verified."""
        cb = self.compiled.codebook
        min_words = cb.quote_min_words

        def evidence(quote: str | None) -> dict[str, Any]:
            if not quote:
                return {"quote": None, "start": None, "end": None, "quote_verified": None}
            span = find_quote(text, quote)
            ok = span is not None and count_words(quote) >= min_words
            return {"quote": quote, "start": span[0] if span else None,
                    "end": span[1] if span else None, "quote_verified": ok}

        def codes(values: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for d in cb.dimensions:
                out[d.name] = values.get(d.name)
                if d.specify_names():
                    out[d.name + SPECIFY_SUFFIX] = values.get(d.name + SPECIFY_SUFFIX)
            return out

        if cb.unit == "segment":
            records = []
            for rec in answer.get("records", []):
                ev = evidence(rec.get("quote"))
                r = {"quote": ev["quote"], "start": ev["start"], "end": ev["end"],
                     "quote_verified": ev["quote_verified"], "codes": codes(rec)}
                if cb.evidence.rationale:
                    r["rationale"] = rec.get("rationale")
                records.append(r)
            verified = all(r["quote_verified"] for r in records)
            return {"records": records}, verified
        result: dict[str, Any] = {}
        if cb.relevance is not None:
            result["relevant"] = answer.get("relevant")
        result["codes"] = codes(answer)
        if cb.evidence.quote:
            ev = evidence(answer.get("quote"))
            result["evidence"] = ev
            verified = ev["quote_verified"] is not False
        else:
            verified = True
        if cb.evidence.rationale:
            result["rationale"] = answer.get("rationale")
        if cb.quote_dimensions():  # a quote per dimension: stored as records, like segments'
            result["records"] = dimension_records(cb, answer, text)
            verified = verified and all(r["quote_verified"] for r in result["records"])
        return result, verified


def reask_message(errors: list[str]) -> str:
    """The user message that re-asks a unit whose answer broke the codebook."""
    lines = "\n".join(f"- {e}" for e in errors)
    return (f"Your answer for this text does not follow the codebook:\n{lines}\n"
            "Answer again for this text only, fixing these problems.")


def _split(n: int | None, i: int, k: int) -> int:
    """Unit ``i``'s share of ``n`` over ``k`` units (the remainder goes to the first ones)."""
    n = int(n or 0)
    return n // k + (1 if i < n % k else 0)


def _shares(calls: list[CallLog], i: int, k: int, group: str, item: Any,
            errors: list[str]) -> list[CallLog]:
    """Unit ``i``'s rows for calls shared by ``k`` units (see :meth:`LLMCoder.code_group`)."""
    out = []
    for n, c in enumerate(calls):
        last = n == len(calls) - 1
        out.append(CallLog(
            attempt=c.attempt, started=c.started, model=c.model,
            request=c.request if i == 0 else None, response=c.response if i == 0 else None,
            parsed=item if last and isinstance(item, dict) else None,
            errors=(errors if last and errors else list(c.errors)),
            latency=c.latency, tokens_in=_split(c.tokens_in, i, k),
            tokens_out=_split(c.tokens_out, i, k),
            cached_tokens=_split(c.cached_tokens, i, k),
            cost=None if c.cost is None else c.cost / k, cache_hit=c.cache_hit,
            status="invalid" if last and errors else c.status, group=f"{group}/{n + 1}"))
    return out


def _sum_calls(res: UnitResult) -> None:
    """Attempts, tokens and cost of a unit from its calls."""
    res.attempts = max((c.attempt for c in res.calls), default=0)
    res.tokens_in = sum(c.tokens_in for c in res.calls)
    res.tokens_out = sum(c.tokens_out for c in res.calls)
    res.cost = sum(c.cost or 0.0 for c in res.calls)
    res.cached = bool(res.calls) and all(c.cache_hit for c in res.calls)


def quiet_libraries() -> None:
    """Keep instructor's and LiteLLM's own log lines off the researcher's terminal.

    Every attempt and error is recorded in run.db instead.
    """
    import logging

    import litellm

    litellm.suppress_debug_info = True
    for name in ("instructor", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.CRITICAL)
        lg.propagate = False


def dump_json(obj: Any) -> str:
    """Compact JSON for logs."""
    return json.dumps(obj, ensure_ascii=False, default=str)


def run_sync(coro: Any, on_interrupt: Any = None) -> Any:
    """``asyncio.run(coro)``, also when an event loop is already running (a Jupyter notebook).

    Inside a running loop the coroutine runs on a fresh loop in a worker thread, with this
    thread's context variables. A Ctrl-C while waiting calls ``on_interrupt()`` (which must make
    the coroutine finish soon) and keeps waiting; without ``on_interrupt`` it propagates.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    ctx = contextvars.copy_context()
    pool = ThreadPoolExecutor(1, thread_name_prefix="vsdcoder")
    future = pool.submit(ctx.run, asyncio.run, coro)
    try:
        while True:
            try:
                return future.result()
            except KeyboardInterrupt:
                if on_interrupt is None:
                    raise
                on_interrupt()
    finally:
        pool.shutdown(wait=on_interrupt is not None)
