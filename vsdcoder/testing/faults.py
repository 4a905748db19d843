"""A seeded fault-injecting responder for :class:`~vsdcoder.testing.fake_openai.FakeOpenAI`.

For each request it answers correctly for the request's own response schema, or, with
probability ``rate``, injects one fault:

==================  ==========================================================================
kind                what the server sends
==================  ==========================================================================
``rate_limit``      429 with a small ``Retry-After``
``server_error``    500, 502 or 503
``timeout``         a correct answer, held back until the client gives up and hangs up, so it
                    never reaches a client that timed out (at most ``timeout_delay`` seconds:
                    set it longer than the client's timeout)
``malformed_body``  HTTP 200 whose body is not JSON (truncated)
``malformed_json``  a completion whose answer is not valid JSON
``schema``          a completion whose answer breaks the schema: an unknown code or a missing
                    field
``quote``           a valid answer whose quote is not in the text
==================  ==========================================================================

The choice is a pure function of ``(seed, unit text, n)``, where ``n`` counts the requests
seen for that text, so a run against the same data is reproducible whatever the concurrency.
Every request is logged (:attr:`FaultInjector.log`) so a test can reconcile what the server
did with what the run recorded::

    faults = FaultInjector(seed=7, rate=0.2)
    with FakeOpenAI(faults) as server:
        vsdcoder.code(data, "sad-stressors", model="openai/fake", api_base=server.url, ...)
    faults.counts            # Counter({'ok': ..., 'rate_limit': ..., ...})
    faults.last(text).kind   # what the last answer for a unit was

:class:`FaultServer` runs the same responder in a process of its own (so that the client
under test keeps a core to itself) and hands its log back when it stops. Neither is used by
vsdcoder itself.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vsdcoder.testing.fake_openai import (
    FakeOpenAI,
    Reply,
    attempt_number,
    completion,
    response_schema,
    unit_text,
)

#: Every kind of fault, in the order :meth:`FaultInjector.decide` picks from.
FAULT_KINDS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "malformed_body",
                                "malformed_json", "schema", "quote")
#: Faults answered with an HTTP error (or no answer in time): the client retries them.
TRANSPORT_FAULTS: frozenset[str] = frozenset(
    {"rate_limit", "server_error", "timeout", "malformed_body"})
#: Faults answered with a completion the codebook rejects: the client re-asks.
ANSWER_FAULTS: frozenset[str] = frozenset({"malformed_json", "schema", "quote"})
#: A quote that no test text contains.
BAD_QUOTE = "zzq words that are nowhere in the text qqz"


@dataclass(frozen=True)
class Injected:
    """One request the server saw and what it was sent back.

    Attributes:
        text: The unit's text (from the user message).
        n: 1 for the first request for this text, 2 for the second, and so on.
        attempt: 1 for a first ask, 2+ for a re-ask (see ``attempt_number``).
        kind: ``ok`` or one of :data:`FAULT_KINDS`.
        status: The HTTP status sent.
        detail: For ``server_error`` the status, for ``schema`` ``unknown_code`` or
            ``missing_field``, for ``quote`` on a schema without quotes ``no quote field``,
            else empty.
    """

    text: str
    n: int
    attempt: int
    kind: str
    status: int
    detail: str = ""


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return defs.get(ref.rsplit("/", 1)[1], {})
    return prop


def _quote_for(text: str, description: str) -> str:
    """The first words of ``text``: at least as many as the schema asks, at least three."""
    words = text.split()
    m = re.search(r"at least (\d+) word", description or "")
    n = max(3, int(m.group(1)) if m else 1)
    return " ".join(words[:n])


#: How a compiled codebook describes a gated dimension.
_GATE = re.compile(r"Only answered when (\w+) is one of ([^;]+);")


def _value(prop: dict[str, Any], defs: dict[str, Any], text: str, name: str,
           siblings: dict[str, Any]) -> Any:
    """A valid value for one property: first enum value, a verbatim quote, an item, ...

    A nullable property is null unless its description names a gate that the answer so far
    (``siblings``) opens ("Only answered when personal_use is one of yes; otherwise null");
    "Other (term)" fields are therefore null, as no first code is "other".
    """
    prop = _resolve(prop, defs)
    if name == "quote":
        return _quote_for(text, prop.get("description", ""))
    if "enum" in prop:
        return prop["enum"][0]
    if "const" in prop:
        return prop["const"]
    options = [_resolve(o, defs) for o in prop.get("anyOf", [])]
    if any(o.get("type") == "null" for o in options):
        gate = _GATE.search(prop.get("description") or "")
        if gate is None:
            return None
        chosen = siblings.get(gate.group(1))
        chosen = chosen if isinstance(chosen, list) else [chosen]
        if not {str(c) for c in chosen} & {v.strip() for v in gate.group(2).split(",")}:
            return None
        options = [o for o in options if o.get("type") != "null"]
    for o in options:
        if "enum" in o or "const" in o:
            return _value(o, defs, text, name, siblings)
    for o in options:
        if o.get("type") not in (None, "null"):
            return _value(o, defs, text, name, siblings)
    kind = prop.get("type")
    if kind == "array":
        return [_value(prop.get("items") or {}, defs, text, name, siblings)]
    if kind == "object":
        return _object(prop, defs, text)
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 0
    if kind == "string":
        return "injected"
    return None


def _object(schema: dict[str, Any], defs: dict[str, Any], text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        out[name] = _value(prop, defs, text, name, out)  # gates come before what they gate
    return out


def valid_answer(request: dict[str, Any]) -> dict[str, Any]:
    """A correct answer for the request's schema and text.

    Every property gets a valid value: a quote is the first words of the unit's text (at least
    as many as the schema's description asks), a code is the first value of its enum, a
    multi-label dimension one code, a relevance flag ``true``, a gated dimension a code only
    when its gate is open (else null), an "Other (term)" field null; segment codebooks get one
    record. Written for vsdcoder's compiled codebooks (every bundled one answers correctly),
    not for arbitrary schemas.
    """
    schema = response_schema(request)
    return _object(schema, schema.get("$defs") or {}, unit_text(request))


def _set_quotes(answer: Any, quote: str) -> bool:
    """Replace every ``quote`` in an answer (records included); whether there was one."""
    found = False
    if isinstance(answer, dict):
        for k, v in answer.items():
            if k == "quote":
                answer[k] = quote
                found = True
            else:
                found = _set_quotes(v, quote) or found
    elif isinstance(answer, list):
        for v in answer:
            found = _set_quotes(v, quote) or found
    return found


def _break_schema(answer: dict[str, Any], request: dict[str, Any],
                  rng: random.Random) -> tuple[dict[str, Any], str]:
    """An answer with an unknown code, or with a required field missing."""
    schema = response_schema(request)
    props = schema.get("properties") or {}
    coded = [n for n, p in props.items() if n != "quote" and (
        "enum" in p or any("enum" in o for o in p.get("anyOf", []))
        or "enum" in (p.get("items") or {}))]
    if coded and rng.random() < 0.5:
        name = rng.choice(coded)
        bad = "no_such_code_zz"
        answer[name] = [bad] if isinstance(answer.get(name), list) else bad
        return answer, "unknown_code"
    required = [n for n in schema.get("required", []) if n in answer] or list(answer)
    if required:
        answer.pop(rng.choice(required))
    return answer, "missing_field"


class FaultInjector:
    """A :data:`~vsdcoder.testing.fake_openai.Responder` that injects seeded faults.

    Args:
        seed: Seed of the fault choice.
        rate: Probability that a request gets a fault.
        kinds: Which faults to inject (default: all of :data:`FAULT_KINDS`, equally likely).
        timeout_delay: Longest a ``timeout`` reply waits for the client to hang up (then it
            is sent, late); longer than the client's timeout.
        retry_after: The ``Retry-After`` value (seconds) of a 429.
        latency: Delay of every other reply, in seconds.
        answer: Builds the correct answer of a request (default :func:`valid_answer`).
    """

    def __init__(self, seed: int = 0, rate: float = 0.2, kinds: tuple[str, ...] = FAULT_KINDS,
                 timeout_delay: float = 1.5, retry_after: float = 0.05, latency: float = 0.0,
                 answer: Callable[[dict[str, Any]], dict[str, Any]] = valid_answer):
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.seed = seed
        self.rate = rate
        self.kinds = tuple(kinds)
        self.timeout_delay = timeout_delay
        self.retry_after = retry_after
        self.latency = latency
        self.answer = answer
        self.log: list[Injected] = []
        self.counts: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _rng(self, text: str, n: int) -> random.Random:
        # str seeds are hashed with SHA-512: the same in every process (no PYTHONHASHSEED)
        return random.Random(f"{self.seed}\x00{n}\x00{text}")

    def decide(self, text: str, n: int) -> str:
        """The kind of reply to the ``n``-th request for ``text`` (``ok`` or a fault)."""
        rng = self._rng(text, n)
        if not self.kinds or rng.random() >= self.rate:
            return "ok"
        return rng.choice(self.kinds)

    def __call__(self, request: dict[str, Any], server: FakeOpenAI) -> Reply:
        """Answer one request (called by the server, from its request threads)."""
        text = unit_text(request)
        with self._lock:
            self._seen[text] += 1
            n = self._seen[text]
        kind = self.decide(text, n)
        rng = self._rng(text, n)
        rng.random()  # the draw decide() used
        reply, detail = self._reply(kind, request, rng)
        with self._lock:
            self.log.append(Injected(text, n, attempt_number(request), kind, reply.status,
                                     detail))
            self.counts[kind] += 1
        return reply

    def _reply(self, kind: str, request: dict[str, Any],
               rng: random.Random) -> tuple[Reply, str]:
        if kind == "rate_limit":
            return Reply({"error": {"message": "injected rate limit", "type": "rate_limit"}},
                         429, headers={"Retry-After": f"{self.retry_after:g}"},
                         delay=self.latency), ""
        if kind == "server_error":
            status = rng.choice((500, 502, 503))
            return Reply({"error": {"message": f"injected {status}"}}, status,
                         delay=self.latency), str(status)
        if kind == "malformed_body":
            return Reply(raw='{"id": "chatcmpl-injected", "choices": [{"mess', status=200,
                         delay=self.latency), ""
        answer = self.answer(request)
        if kind == "timeout":
            return Reply(completion(request, answer), delay=self.timeout_delay,
                         until_hangup=True), ""
        if kind == "malformed_json":
            raw = completion(request, answer)
            body = raw["choices"][0]["message"]
            broken = '{"quote": "' + str(answer.get("quote", ""))[:20] + '", "'
            if body.get("tool_calls"):
                body["tool_calls"][0]["function"]["arguments"] = broken
            else:
                body["content"] = broken
            return Reply(raw, delay=self.latency), ""
        detail = ""
        if kind == "schema":
            answer, detail = _break_schema(answer, request, rng)
        elif kind == "quote" and not _set_quotes(answer, BAD_QUOTE):
            detail = "no quote field"  # a codebook without quotes: the answer stays valid
        return Reply(completion(request, answer), delay=self.latency), detail

    # -- reconciliation helpers -----------------------------------------------------------
    def by_text(self) -> dict[str, list[Injected]]:
        """The requests seen per unit text, in the order they arrived."""
        out: dict[str, list[Injected]] = defaultdict(list)
        with self._lock:
            for r in sorted(self.log, key=lambda r: r.n):
                out[r.text].append(r)
        return dict(out)

    def last(self, text: str) -> Injected | None:
        """The last request seen for ``text``, or None."""
        seen = self.by_text().get(text)
        return seen[-1] if seen else None


def _serve(kwargs: dict[str, Any]) -> None:
    """Body of :class:`FaultServer`'s process.

    Prints the URL, serves until stdin says stop, then prints the log as one JSON line.
    """
    import json
    import sys

    injector = FaultInjector(**kwargs)
    server = FakeOpenAI(injector)
    server.keep_requests = False
    server.start()
    print(server.url, flush=True)
    sys.stdin.readline()  # "stop", or end of file when the parent went away
    server.stop()
    log = [[r.text, r.n, r.attempt, r.kind, r.status, r.detail] for r in injector.log]
    print(json.dumps({"log": log, "counts": dict(injector.counts)}), flush=True)


class FaultServer:
    """A :class:`FaultInjector` behind a :class:`FakeOpenAI` in a process of its own.

    The client under test then keeps a core to itself and the server's threads do not compete
    with it for the GIL. After :meth:`stop` (or the ``with`` block) :attr:`injector` holds what
    the server did (``log``, ``counts``, ``by_text()``, ``last()``).

    Args:
        **kwargs: JSON-serialisable arguments of :class:`FaultInjector` (seed, rate, kinds,
            timeout_delay, retry_after, latency).
    """

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
        self.injector = FaultInjector(**kwargs)  # bad arguments fail here, not in the child
        self.url = ""
        self._proc: Any = None

    def start(self, timeout: float = 60.0) -> FaultServer:
        """Start the server process and wait for its URL.

        Args:
            timeout: Seconds to wait for a server that failed to start to exit.

        Raises:
            RuntimeError: the process did not print its URL.
        """
        import json
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "vsdcoder.testing.faults", json.dumps(self.kwargs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self._proc.kill()
            self._proc.wait(timeout)
            raise RuntimeError(f"the fault server did not start: {line!r}")
        self.url = line
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and collect its log into :attr:`injector`."""
        import json

        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            out, _ = proc.communicate("stop\n", timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        data = json.loads(out.strip().splitlines()[-1])
        self.injector.log = [Injected(*r) for r in data["log"]]
        self.injector.counts = Counter(data["counts"])

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":
    import json
    import sys

    _serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
