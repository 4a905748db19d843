"""A scripted OpenAI-compatible server on 127.0.0.1, for tests and benchmarks only.

It answers ``POST /v1/chat/completions`` with whatever a *responder* function returns, so a
test can script correct answers, invalid JSON, wrong codes, non-verbatim quotes, 429s with
``Retry-After``, 500s and slow answers, and drive the real LiteLLM -> instructor path over
HTTP. The files and batches endpoints (``server.batch_api``, see
:mod:`vsdcoder.testing.fake_batches`) answer each batch line through the same responder.
It is never used by vsdcoder itself.

    with FakeOpenAI(responder) as server:
        vsdcoder.code(..., model="openai/fake", api_base=server.url)
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server sends back: a JSON body (or raw text), a status, headers and a delay.

    With ``until_hangup`` the reply is held back until the client hangs up (gives up on the
    request), for at most ``delay`` seconds: a client that timed out never gets it, however
    late its event loop noticed its timer, so a scripted timeout is a timeout on any machine.
    A client still waiting after ``delay`` seconds gets the reply then (late).
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: str | None = None
    until_hangup: bool = False


def user_text(request: dict[str, Any]) -> str:
    """The text of the first user message (the unit being coded)."""
    for m in request.get("messages", []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c)
    return ""


def unit_text(request: dict[str, Any]) -> str:
    """The unit's text inside vsdcoder's user message (between the triple quotes)."""
    u = user_text(request)
    marker = 'Text to code:\n"""\n'
    if marker in u:
        return u.split(marker, 1)[1].rsplit('\n"""', 1)[0]
    return u


def multi_units(request: dict[str, Any]) -> list[tuple[str, str]]:
    """``(unit_id, text)`` of each unit in a multi-unit request (``--units-per-call``)."""
    import re

    u = user_text(request)
    parts = re.split(r"^=== unit_id: (\S+) ===$", u, flags=re.M)
    out = []
    for uid, body in zip(parts[1::2], parts[2::2], strict=True):
        marker = 'Text to code:\n"""\n'
        text = body.split(marker, 1)[1].rsplit('\n"""', 1)[0] if marker in body else body
        out.append((uid, text))
    return out


def response_schema(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema the request asks the answer to follow (tools or response_format)."""
    tools = request.get("tools")
    if tools:
        return tools[0]["function"].get("parameters") or {}
    rf = request.get("response_format") or {}
    return (rf.get("json_schema") or {}).get("schema") or rf.get("schema") or {}


def count_tokens(obj: Any) -> int:
    """Tokens of ``obj`` (a string, or JSON-dumped) with tiktoken's cl100k_base encoding.

    Gives the benchmark server realistic ``usage`` numbers: the same count for the same
    request, whatever the client.
    """
    enc = _encoding(None)
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return len(enc.encode(text, disallowed_special=()))


def _encoding(_: Any) -> Any:
    global _ENCODING
    if _ENCODING is None:  # LiteLLM's bundled copy of cl100k_base: no download
        from litellm.litellm_core_utils.default_encoding import encoding

        _ENCODING = encoding
    return _ENCODING


_ENCODING: Any = None


def attempt_number(request: dict[str, Any]) -> int:
    """1 for a first ask; 2+ when the conversation carries re-ask messages."""
    return 1 + sum(1 for m in request.get("messages", [])[2:] if m.get("role") in ("user", "tool"))


def completion(request: dict[str, Any], answer: Any, *, prompt_tokens: int = 100,
               completion_tokens: int = 20, cached_tokens: int = 0) -> dict[str, Any]:
    """A chat completion carrying ``answer`` the way the request asked for it.

    With ``tools`` in the request (instructor TOOLS mode) the answer is a tool call to the first
    tool; otherwise it is the message content. ``answer`` may be a dict (dumped as JSON) or a
    string sent as is (e.g. invalid JSON).
    """
    content = answer if isinstance(answer, str) else json.dumps(answer)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish = "stop"
    tools = request.get("tools")
    if tools:
        name = tools[0]["function"]["name"]
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{abs(hash(content)) % 10**8}", "type": "function",
            "function": {"name": name, "arguments": content}}]}
        finish = "tool_calls"
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


Responder = Callable[[dict[str, Any], "FakeOpenAI"], Reply]


class _Server(ThreadingHTTPServer):
    """The HTTP server: a deep accept queue and quiet about clients that hang up."""

    # the default backlog of 5 overflows when dozens of clients connect at once (e.g. after
    # timeouts); the kernel then drops SYNs and the client waits a full second to retry
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """Serve a responder on an ephemeral 127.0.0.1 port in a background thread."""

    def __init__(self, responder: Responder, host: str = "127.0.0.1", port: int = 0):
        self.responder = responder
        self.latency = 0.0
        self.count_tokens = False
        self.keep_requests = True
        self.requests: list[dict[str, Any]] = []
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        from vsdcoder.testing.fake_batches import FakeBatchAPI

        #: OpenAI files and batches endpoints, answered through the same responder
        self.batch_api = FakeBatchAPI(self)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes; without TCP_NODELAY, Nagle's
                # algorithm and the client's delayed ACK add ~40 ms to every response
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _hung_up(self, limit: float) -> bool:
                """Wait up to ``limit`` s for the client to close the connection; did it?"""
                deadline = time.monotonic() + limit
                with selectors.DefaultSelector() as sel:
                    sel.register(self.connection, selectors.EVENT_READ)
                    while (left := deadline - time.monotonic()) > 0:
                        if not sel.select(left):
                            return False
                        try:
                            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                                return True  # end of file: the client closed the connection
                        except OSError:  # reset by the client
                            return True
                        time.sleep(0.01)  # bytes of another request: not a hang-up
                return False

            def _send(self, reply: Reply) -> None:
                if reply.delay and reply.until_hangup:
                    if self._hung_up(reply.delay):
                        self.close_connection = True
                        return
                elif reply.delay:
                    time.sleep(reply.delay)
                data = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if server.batch_api.handles(self.path):
                    self._send(server.batch_api.get(self.path, self.headers))
                elif self.path.rstrip("/").endswith("/models"):
                    models = [{"id": "fake", "object": "model"}]
                    self._send(Reply({"object": "list", "data": models}))
                else:
                    self._send(Reply({"error": {"message": "not found"}}, 404))

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if server.batch_api.handles(self.path):  # files and batches: fake_batches.py
                    self._send(server.batch_api.post(self.path, self.headers, self.rfile.read(n)))
                    return
                try:
                    req = json.loads(self.rfile.read(n) or b"{}")
                except json.JSONDecodeError:
                    self._send(Reply({"error": {"message": "bad json"}}, 400))
                    return
                req["_path"] = self.path
                req["_auth"] = self.headers.get("Authorization", "")
                with server.lock:
                    if server.keep_requests:
                        server.requests.append(req)
                    server.hits[unit_text(req)] += 1
                try:
                    reply = server.responder(req, server)
                except Exception as exc:  # a broken script shows up as a 500 with the reason
                    reply = Reply({"error": {"message": f"responder failed: {exc!r}"}}, 500)
                self._send(reply)

        self._httpd = _Server((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to pass as ``api_base`` (ends in ``/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _first_words_answer(request: dict[str, Any], server: FakeOpenAI) -> Reply:
    """Benchmark responder for document codebooks, one unit or several per request.

    Answers ``{"quote": <first word>, <dim>: <first enum value>}`` for each unit, following
    the request's schema; with ``server.count_tokens`` the usage is counted with tiktoken
    (prompt: the messages and the tools or response format as JSON; completion: the answer).
    """
    schema = response_schema(request)
    props = schema.get("properties") or {}

    def one(item_schema: dict[str, Any], text: str) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for name, prop in (item_schema.get("properties") or {}).items():
            if name == "quote":
                words = text.split()
                answer[name] = words[0] if words else ""
            elif "enum" in prop:
                answer[name] = prop["enum"][0]
            elif prop.get("type") == "boolean":
                answer[name] = True
            elif prop.get("type") == "array":  # multi-code dimensions, segment records
                answer[name] = []
            else:
                options = [o for o in prop.get("anyOf", []) if "enum" in o]
                answer[name] = options[0]["enum"][0] if options else None
        return answer

    if "answers" in props:  # a multi-unit request
        item = props["answers"]["items"]
        answer: dict[str, Any] = {"answers": [
            dict(one(item, text), unit_id=uid) for uid, text in multi_units(request)]}
    else:
        answer = one(schema, unit_text(request))
    kw: dict[str, int] = {}
    if getattr(server, "count_tokens", False):
        sent = {k: request.get(k) for k in ("messages", "tools", "response_format")}
        kw = {"prompt_tokens": count_tokens(sent), "completion_tokens": count_tokens(answer)}
    return Reply(completion(request, answer, **kw), delay=server.latency)


def main(argv: list[str] | None = None) -> None:
    """Serve the benchmark responder: ``python -m vsdcoder.testing.fake_openai --latency 0.2``."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--count-tokens", action="store_true",
                    help="report usage counted with tiktoken instead of fixed numbers")
    args = ap.parse_args(argv)
    server = FakeOpenAI(_first_words_answer, port=args.port)
    server.latency = args.latency
    server.count_tokens = args.count_tokens
    server.keep_requests = False
    print(server.url, flush=True)
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server._httpd.serve_forever()


if __name__ == "__main__":
    main()
