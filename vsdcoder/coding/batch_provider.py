"""The provider side of ``--batch``: LiteLLM's file and batch calls, and reading their results.

:class:`Provider` uploads batch files, creates, polls and finds batches and downloads their
output, retrying transient failures; :func:`result_of_line` turns a line of an output or error
file into what is stored for the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from vsdcoder.coding.coder import ModelSettings, WaitRetryAfter, is_fatal, is_transient

#: The endpoint every request line targets.
ENDPOINT = "/v1/chat/completions"


def transient(exc: BaseException) -> bool:
    """Whether a file or batch call failed for a reason that may pass (retry it)."""
    try:
        import openai

        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError,
                            openai.RateLimitError, openai.InternalServerError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return is_transient(exc)


def fatal(exc: BaseException) -> bool:
    """Whether a file or batch call was refused (key, model, endpoint): retrying is useless."""
    try:
        import openai

        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError,
                            openai.NotFoundError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return is_fatal(exc)


def short(exc: BaseException) -> str:
    """An exception as one short line."""
    return f"{type(exc).__name__}: {str(exc)[:500]}"


class Provider:
    """LiteLLM's file and batch functions for one target, with transient retries."""

    def __init__(self, settings: ModelSettings, target: Any):
        self.s = settings
        self.t = target

    async def call(self, fn_name: str, **kw: Any) -> Any:
        """LiteLLM's ``fn_name`` for this target, retried on transient failures."""
        import litellm
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        fn = getattr(litellm, fn_name)
        s = self.s
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(s.http_retries + 1),
            retry=retry_if_exception(transient),
            wait=WaitRetryAfter(s.backoff_base, s.backoff_max),
            reraise=True,
        ):
            with attempt:
                return await fn(custom_llm_provider=self.t.provider, api_base=s.api_base,
                                api_key=s.api_key, timeout=s.timeout, max_retries=0, **kw)
        raise RuntimeError("unreachable")  # pragma: no cover

    async def upload(self, data: bytes) -> Any:
        """Upload a batch input file (JSONL)."""
        return await self.call("acreate_file", file=("vsdcoder-batch.jsonl", data,
                                                     "application/jsonl"), purpose="batch")

    async def create(self, input_file_id: str, attempt: int) -> Any:
        """Create a batch from an uploaded file, at most once.

        A transient failure may come after the provider created the batch (a lost answer),
        so before trying again the provider's recent batches are searched for this file.
        """
        import random

        import litellm

        s = self.s
        for n in range(s.http_retries + 1):
            try:
                return await litellm.acreate_batch(
                    completion_window="24h", endpoint=ENDPOINT, input_file_id=input_file_id,
                    metadata={"created_by": "vsdcoder", "round": str(attempt)},
                    custom_llm_provider=self.t.provider, api_base=s.api_base,
                    api_key=s.api_key, timeout=s.timeout, max_retries=0)
            except Exception as exc:
                if not transient(exc) or n >= s.http_retries:
                    raise
                ceiling = min(s.backoff_max, s.backoff_base * 2 ** n)
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
                found = await self.find(input_file_id)
                if found is not None:
                    return found
        raise RuntimeError("unreachable")  # pragma: no cover

    async def retrieve(self, batch_id: str) -> Any:
        """The batch as the provider reports it now."""
        # without the flag LiteLLM's logging downloads the output file of a finished batch
        # once more, in a background task, to price it for its own callbacks
        return await self.call("aretrieve_batch", batch_id=batch_id,
                               litellm_metadata={"batch_ignore_default_logging": True})

    async def content(self, file_id: str) -> bytes:
        """The bytes of an output or error file."""
        resp = await self.call("afile_content", file_id=file_id)
        data = getattr(resp, "content", resp)
        return data if isinstance(data, bytes) else str(data).encode("utf-8")

    async def find(self, input_file_id: str) -> Any | None:
        """A batch already created from ``input_file_id`` (the last 100 batches), or None."""
        try:
            page = await self.call("alist_batches", limit=100)
        except Exception:
            return None
        for b in getattr(page, "data", None) or []:
            if getattr(b, "input_file_id", None) == input_file_id:
                return b
        return None


def result_of_line(obj: dict[str, Any], batch_id: str
                    ) -> tuple[str, dict[str, Any] | None, str | None]:
    """(status, response body, error) of one output or error file line."""
    resp = obj.get("response") or {}
    err = obj.get("error")
    code = resp.get("status_code")
    body = resp.get("body")
    if isinstance(body, str):
        with contextlib.suppress(json.JSONDecodeError):
            body = json.loads(body)
    if not err and code == 200 and isinstance(body, dict):
        return "answered", body, None
    detail = None
    if isinstance(err, dict):
        detail = ": ".join(str(x) for x in (err.get("code"), err.get("message")) if x)
    elif err:
        detail = str(err)
    code_name = err.get("code") if isinstance(err, dict) else None
    if code_name in ("batch_expired", "batch_cancelled"):
        what = "expired (24h window)" if code_name == "batch_expired" else "was cancelled"
        return "error", None, (f"batch {batch_id} {what} before this request was run; rerun "
                               "with --retry-failed")
    if not detail and isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]
        detail = ": ".join(str(x) for x in (e.get("code") or e.get("type"), e.get("message"))
                           if x)
    where = f" (HTTP {code})" if code else ""
    return "error", None, (f"batch {batch_id}: the provider answered this request with an "
                           f"error{where}: {detail or 'no details'}")[:2000]


def missing_reason(batch: Any, batch_id: str) -> str:
    """Why a request of a finished batch has no line in its output or error file."""
    status = getattr(batch, "status", None) or "unknown"
    if status == "failed":
        errs = getattr(getattr(batch, "errors", None), "data", None) or []
        detail = "; ".join(": ".join(str(x) for x in (getattr(e, "code", None),
                                                       getattr(e, "message", None)) if x)
                           for e in errs[:5])
        return f"batch {batch_id} failed: {detail or 'no details'}"
    if status == "expired":
        return (f"batch {batch_id} expired (24h window) before this request was run; "
                "rerun with --retry-failed")
    if status == "cancelled":
        return f"batch {batch_id} was cancelled before this request was run"
    return f"batch {batch_id} ended '{status}' without a result for this request"

