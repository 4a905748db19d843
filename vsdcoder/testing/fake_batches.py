"""OpenAI's files and batches endpoints for :class:`~vsdcoder.testing.fake_openai.FakeOpenAI`.

Tests and benchmarks only. Implements what a batch client needs:

- ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``
- ``POST /v1/batches``, ``GET /v1/batches``, ``GET /v1/batches/{id}``,
  ``POST /v1/batches/{id}/cancel``

Each line of a batch's input file is answered by the server's *responder*, the same function
that answers ``POST /v1/chat/completions``, so one script drives both paths. A batch is
``validating`` when created, ``in_progress`` while polled, and finishes on the
``polls_to_complete``-th ``GET /v1/batches/{id}``. A responder reply with a status other than
200 puts that line in the batch's error file. ``outcome`` makes batches finish as
``completed`` (default), ``failed`` (no output, ``errors`` set) or ``expired`` (the first
``expire_keep`` lines answered, the rest in the error file with code ``batch_expired``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from vsdcoder.testing.fake_openai import FakeOpenAI, Reply

TERMINAL = ("completed", "failed", "expired", "cancelled")


class FakeBatchAPI:
    """In-memory files and batches, answered through a :class:`FakeOpenAI`'s responder.

    Attributes:
        uploads: Every uploaded file: id, filename, purpose, bytes, parsed lines, auth header.
        created: Every ``POST /v1/batches`` body, with ``_auth`` and the new batch ``id``.
        polls: ``GET /v1/batches/{id}`` count per batch id.
        polls_to_complete: The poll on which a batch finishes (set it high to hold batches).
        outcome: ``completed``, ``failed`` or ``expired``: how the next batches finish.
        expire_keep: With ``expired``: how many lines are answered before the expiry.
    """

    def __init__(self, server: FakeOpenAI):
        self.server = server
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.uploads: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.polls: Counter[str] = Counter()
        self.polls_to_complete = 1
        self.outcome = "completed"
        self.expire_keep = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # -- routing ----------------------------------------------------------------------------
    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` is a files or batches endpoint."""
        p = urlparse(path).path.rstrip("/")
        return p.startswith("/v1/files") or p.startswith("/v1/batches") or \
            p.startswith("/files") or p.startswith("/batches")

    def get(self, path: str, headers: Any) -> Reply:
        """Answer a GET."""
        parts = self._parts(path)
        with self._lock:
            if parts[0] == "files" and len(parts) == 2:
                f = self.files.get(parts[1])
                return self._reply(f["meta"]) if f else self._missing("file", parts[1])
            if parts[0] == "files" and len(parts) == 3 and parts[2] == "content":
                f = self.files.get(parts[1])
                if f is None:
                    return self._missing("file", parts[1])
                return self._raw(f["data"].decode("utf-8"))
            if parts == ["batches"]:
                data = [self._public(b) for b in reversed(list(self.batches.values()))]
                return self._reply({"object": "list", "data": data, "has_more": False,
                                    "first_id": data[0]["id"] if data else None,
                                    "last_id": data[-1]["id"] if data else None})
            if parts[0] == "batches" and len(parts) == 2:
                b = self.batches.get(parts[1])
                if b is None:
                    return self._missing("batch", parts[1])
                self.polls[b["id"]] += 1
                self._advance(b)
                return self._reply(self._public(b))
        return self._missing("path", path)

    def post(self, path: str, headers: Any, raw: bytes) -> Reply:
        """Answer a POST."""
        parts = self._parts(path)
        auth = headers.get("Authorization", "")
        with self._lock:
            if parts == ["files"]:
                return self._upload(headers.get("Content-Type", ""), raw, auth)
            if parts == ["batches"]:
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    return self._error(400, "bad json")
                return self._create(body, auth)
            if parts[0] == "batches" and len(parts) == 3 and parts[2] == "cancel":
                b = self.batches.get(parts[1])
                if b is None:
                    return self._missing("batch", parts[1])
                if b["status"] not in TERMINAL:
                    b["status"] = "cancelling"
                    b["cancelling_at"] = int(time.time())
                return self._reply(self._public(b))
        return self._missing("path", path)

    # -- files --------------------------------------------------------------------------------
    def _upload(self, content_type: str, raw: bytes, auth: str) -> Reply:
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        filename = "upload"
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                filename = part.get_filename()
            fields[str(name)] = payload
        data = fields.get("file")
        if data is None:
            return self._error(400, "no file in the upload")
        purpose = fields.get("purpose", b"batch").decode()
        return self._reply(self._store_file(data, filename, purpose, auth))

    def _store_file(self, data: bytes, filename: str, purpose: str,
                    auth: str = "") -> dict[str, Any]:
        fid = f"file-{next(self._ids):04d}"
        meta = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[fid] = {"meta": meta, "data": data}
        if purpose == "batch":
            lines = [json.loads(x) for x in data.decode("utf-8").splitlines() if x.strip()]
            self.uploads.append({"id": fid, "filename": filename, "purpose": purpose,
                                 "bytes": len(data), "lines": lines, "_auth": auth})
        return meta

    # -- batches ------------------------------------------------------------------------------
    def _create(self, body: dict[str, Any], auth: str) -> Reply:
        fid = body.get("input_file_id")
        if fid not in self.files:
            return self._error(400, f"no such input file: {fid}")
        bid = f"batch_{next(self._ids):04d}"
        now = int(time.time())
        b = {"id": bid, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
             "input_file_id": fid, "completion_window": body.get("completion_window", "24h"),
             "status": "validating", "output_file_id": None, "error_file_id": None,
             "created_at": now, "expires_at": now + 86400,
             "request_counts": {"total": 0, "completed": 0, "failed": 0},
             "metadata": body.get("metadata"), "_auth": auth}
        self.batches[bid] = b
        self.created.append(dict(body, _auth=auth, id=bid))
        return self._reply(self._public(b))

    def _advance(self, b: dict[str, Any]) -> None:
        if b["status"] in TERMINAL:
            return
        if b["status"] == "cancelling":
            b["status"] = "cancelled"
            b["cancelled_at"] = int(time.time())
            return
        if self.polls[b["id"]] >= self.polls_to_complete:
            self._finish(b)
        else:
            b["status"] = "in_progress"
            b.setdefault("in_progress_at", int(time.time()))
            total = len(self._lines(b))
            b["request_counts"] = {"total": total, "completed": 0, "failed": 0}

    def _lines(self, b: dict[str, Any]) -> list[dict[str, Any]]:
        data = self.files[b["input_file_id"]]["data"].decode("utf-8")
        return [json.loads(x) for x in data.splitlines() if x.strip()]

    def _finish(self, b: dict[str, Any]) -> None:
        now = int(time.time())
        lines = self._lines(b)
        if self.outcome == "failed":
            b.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "scripted failure of the whole batch",
                 "line": None, "param": None}]},
                request_counts={"total": len(lines), "completed": 0, "failed": 0})
            return
        keep = len(lines) if self.outcome != "expired" else self.expire_keep
        out: list[dict[str, Any]] = []
        err: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            cid = line.get("custom_id")
            rid = f"req_{b['id']}_{i}"
            if i >= keep:
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": "batch_expired", "message": "This request could"
                                      " not be executed before the completion window expired."}})
                continue
            reply = self._answer(b, line)
            entry = {"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                     "response": {"status_code": reply.status, "request_id": rid,
                                  "body": reply.body}}
            (out if reply.status == 200 else err).append(entry)
        if out:
            b["output_file_id"] = self._store_file(_jsonl(out), f"{b['id']}_output.jsonl",
                                                   "batch_output")["id"]
        if err:
            b["error_file_id"] = self._store_file(_jsonl(err), f"{b['id']}_error.jsonl",
                                                  "batch_output")["id"]
        status = "expired" if self.outcome == "expired" else "completed"
        b.update(status=status, **{f"{status}_at": now},
                 request_counts={"total": len(lines), "completed": len(out), "failed": len(err)})

    def _answer(self, b: dict[str, Any], line: dict[str, Any]) -> Reply:
        """One input line through the responder, recorded like a chat completion request."""
        from vsdcoder.testing.fake_openai import Reply, unit_text

        s = self.server
        req = dict(line.get("body") or {})
        req["_path"] = line.get("url", "/v1/chat/completions")
        req["_auth"] = b["_auth"]
        req["_batch"] = b["id"]
        req["_custom_id"] = line.get("custom_id")
        with s.lock:
            if s.keep_requests:
                s.requests.append(req)
            s.hits[unit_text(req)] += 1
        try:
            return s.responder(req, s)
        except Exception as exc:  # a broken script shows up as a failed line with the reason
            return Reply({"error": {"message": f"responder failed: {exc!r}"}}, 500)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _parts(path: str) -> list[str]:
        p = urlparse(path).path.strip("/").split("/")
        return p[1:] if p and p[0] == "v1" else p

    @staticmethod
    def _public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    @staticmethod
    def _reply(body: Any) -> Reply:
        from vsdcoder.testing.fake_openai import Reply

        return Reply(body)

    @staticmethod
    def _raw(text: str) -> Reply:
        from vsdcoder.testing.fake_openai import Reply

        return Reply(raw=text)

    @staticmethod
    def _error(status: int, message: str) -> Reply:
        from vsdcoder.testing.fake_openai import Reply

        return Reply({"error": {"message": message, "type": "invalid_request_error"}}, status)

    def _missing(self, what: str, ident: str) -> Reply:
        return self._error(404, f"No such {what}: {ident}")


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
