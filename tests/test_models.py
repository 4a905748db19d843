"""``vsdcoder models``: the catalogue, pulls against a local HTTP server, and local/NAME.

Every pull goes to an HTTP server these tests start on 127.0.0.1 (``http.server`` in a thread,
with Range support that can be switched off, and a one-time cut of the connection mid-file),
serving small made-up files whose sha256 the tests compute. The real catalogue URLs are never
contacted: ``VSDCODER_MODELS_BASE_URL`` points at the local server and the catalogue is replaced
by test entries.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import skip_unprivileged

from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.models import catalogue, download, store
from vsdcoder.models.catalogue import ModelEntry

MIB = 1 << 20
REPO = "test/Fake-Instruct-GGUF"
REV = "0123456789abcdef0123456789abcdef01234567"


def fake_bytes(n: int, seed: int = 1) -> bytes:
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def entry_for(name: str, data: bytes, *, file: str | None = None,
              sha256: str | None = None) -> ModelEntry:
    return ModelEntry(name=name, title=f"Fake {name}", repo=REPO, revision=REV,
                      file=file or f"{name}-q4_k_m.gguf", size=len(data),
                      sha256=sha256 or hashlib.sha256(data).hexdigest(), licence="Apache-2.0",
                      licence_url="https://example.invalid/LICENSE", note="test")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.ranges:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if srv.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if srv.cut_after is not None and srv.cuts_left > 0:
            srv.cuts_left -= 1
            self.wfile.write(body[:srv.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class FakeHub:
    """A local stand-in for the model host: ``/REPO/resolve/REV/FILE``."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = {}
        self.httpd.requests = []
        self.httpd.ranges = True
        self.httpd.cut_after = None
        self.httpd.cuts_left = 0
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, entry: ModelEntry, data: bytes) -> None:
        self.httpd.files[f"/{entry.repo}/resolve/{entry.revision}/{entry.file}"] = data

    def cut_once(self, after: int) -> None:
        self.httpd.cut_after = after
        self.httpd.cuts_left = 1

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    h = FakeHub()
    monkeypatch.setenv("VSDCODER_MODELS_BASE_URL", h.url)
    monkeypatch.setenv("VSDCODER_MODELS_DIR", str(tmp_path / "models"))
    yield h
    h.close()


@pytest.fixture
def fake(hub, monkeypatch):
    """A 3.5 MiB fake model served by the hub and the only catalogue entry."""
    data = fake_bytes(3 * MIB + MIB // 2)
    entry = entry_for("fake", data)
    hub.serve(entry, data)
    monkeypatch.setattr(catalogue, "CATALOGUE", (entry,))
    return entry, data


def quiet_pull(entry, **kw):
    notes = []
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0)
    path = download.pull(entry, say=notes.append, **kw)
    return path, notes


def verified(path: Path, data: bytes) -> bool:
    return path.read_bytes() == data


# -- the real catalogue -------------------------------------------------------------------


def test_catalogue_entries_are_pinned():
    seen = set()
    for e in catalogue.CATALOGUE:
        assert e.name == e.name.lower() and e.name not in seen and e.name != "smollm2"
        seen.add(e.name)
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert re.fullmatch(r"[0-9a-f]{40}", e.revision), e.name
        assert e.size > 100_000_000 and e.file.endswith(".gguf") and "q4_k_m" in e.file.lower()
        assert e.licence and e.licence_url.startswith("https://")
        assert e.url(None).startswith(f"https://huggingface.co/{e.repo}/resolve/{e.revision}/")
    assert {"qwen2.5-1.5b-instruct", "llama-3.2-1b-instruct"} <= seen


def test_base_url_override(monkeypatch):
    e = catalogue.CATALOGUE[0]
    monkeypatch.setenv("VSDCODER_MODELS_BASE_URL", "http://127.0.0.1:9/mirror/")
    assert e.url() == f"http://127.0.0.1:9/mirror/{e.repo}/resolve/{e.revision}/{e.file}"


def test_models_dir_default_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("VSDCODER_MODELS_DIR", raising=False)
    assert store.models_dir().name == "models" and "vsdcoder" in str(store.models_dir())
    monkeypatch.setenv("VSDCODER_MODELS_DIR", str(tmp_path / "m"))
    assert store.models_dir() == tmp_path / "m"


# -- pull -----------------------------------------------------------------------------------


def test_pull_success_with_progress(fake, hub):
    from rich.console import Console

    entry, data = fake
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=120)
    path = download.pull(entry, console=con, backoff=0)
    assert path == store.models_dir() / entry.file and verified(path, data)
    assert not store.part_path(entry).exists()
    out = buf.getvalue()
    assert "pull fake" in out and "3.7/3.7 MB" in out  # the bar reached the full size
    assert [r for r in hub.requests if r[1]] == []  # one plain request, no Range
    # a second pull is a no-op
    assert download.pull(entry, progress=False) == path and len(hub.requests) == 1


def test_pull_cli_and_list(fake, capsys):
    _entry, data = fake
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["fake"]["state"] == "no" and rows["fake"]["size"] == len(data)
    assert "smollm2" in rows and "codes poorly" in rows["smollm2"]["note"]
    assert main(["models", "pull", "fake", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "pulled fake" in out.out and "sha256 verified" in out.out
    assert main(["models", "pull", "fake"]) == 0
    assert "already pulled" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"fake .*pulled", table) and "codes poorly" in table


def test_resume_after_cut_connection(fake, hub):
    entry, data = fake
    cut = MIB + MIB // 2
    hub.cut_once(cut)
    with pytest.raises(UsageError, match="run `vsdcoder models pull fake` again to resume"):
        quiet_pull(entry, retries=0)
    part = store.part_path(entry)
    assert part.stat().st_size == cut and not store.final_path(entry).exists()
    assert store.status(entry).state == f"partial {100 * cut / len(data):.0f}%"
    path, notes = quiet_pull(entry, retries=0)
    assert verified(path, data) and not part.exists()
    assert hub.requests[-1][1] == f"bytes={cut}-"  # resumed with a Range request
    assert any("resuming fake" in n for n in notes)


def test_cut_connection_is_resumed_within_one_pull(fake, hub):
    entry, data = fake
    hub.cut_once(MIB)
    path, notes = quiet_pull(entry, retries=2)
    assert verified(path, data)
    assert [r[1] for r in hub.requests] == [None, f"bytes={MIB}-"]
    assert any("retrying (1/2)" in n for n in notes)


def test_cut_then_cli_exit_2_and_partial_kept(fake, hub, capsys):
    entry, _ = fake
    hub.cut_once(MIB)
    assert main(["models", "pull", "fake", "--retries", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is kept in" in err and "again to resume" in err
    assert store.part_path(entry).stat().st_size == MIB


def test_wrong_checksum_is_refused_and_removed(hub, monkeypatch, capsys):
    data = fake_bytes(2 * MIB, seed=2)
    entry = entry_for("badsum", data, sha256="0" * 64)
    hub.serve(entry, data)
    monkeypatch.setattr(catalogue, "CATALOGUE", (entry,))
    assert main(["models", "pull", "badsum", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and hashlib.sha256(data).hexdigest() in err
    assert "removed" in err
    assert not store.final_path(entry).exists() and not store.part_path(entry).exists()


def test_wrong_size_is_refused(hub, monkeypatch):
    data = fake_bytes(MIB, seed=3)
    entry = entry_for("short", data)
    hub.serve(entry, data + b"extra")  # the server has more bytes than pinned
    monkeypatch.setattr(catalogue, "CATALOGUE", (entry,))
    with pytest.raises(UsageError, match="more than the"):
        quiet_pull(entry)
    assert not store.final_path(entry).exists() and not store.part_path(entry).exists()


def test_server_without_range_support_restarts_from_zero(fake, hub):
    entry, data = fake
    hub.httpd.ranges = False
    hub.cut_once(2 * MIB)
    with pytest.raises(UsageError):
        quiet_pull(entry, retries=0)
    assert store.part_path(entry).stat().st_size == 2 * MIB
    path, notes = quiet_pull(entry, retries=0)
    assert verified(path, data)
    assert hub.requests[-1][1] == f"bytes={2 * MIB}-"  # asked to resume, got the whole file
    assert any("does not support resuming; starting over from zero" in n for n in notes)


def test_partial_larger_than_the_file_is_discarded(fake):
    entry, data = fake
    part = store.part_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (len(data) + 10))
    path, _ = quiet_pull(entry)
    assert verified(path, data)


def test_404_is_a_clear_error(hub, monkeypatch, capsys):
    entry = entry_for("missing", b"never served")
    monkeypatch.setattr(catalogue, "CATALOGUE", (entry,))
    assert main(["models", "pull", "missing", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not found (HTTP 404)" in err and entry.file in err
    assert not store.part_path(entry).exists()


def test_unreachable_server(fake, monkeypatch):
    entry, _ = fake
    monkeypatch.setenv("VSDCODER_MODELS_BASE_URL", "http://127.0.0.1:9")  # discard port: closed
    with pytest.raises(UsageError, match=r"cannot reach .*nothing was kept"):
        quiet_pull(entry, retries=1)


class _FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes (like a full disk)."""

    def __init__(self, path: Path, room: int, exc: BaseException | None = None):
        self.f = path.open("ab")
        self.room = room
        self.exc = exc

    def write(self, b: bytes) -> int:
        if len(b) > self.room:
            self.f.write(b[:self.room])
            self.room = 0
            raise self.exc or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_disk_full_simulated(fake, monkeypatch, capsys):
    entry, _data = fake
    monkeypatch.setattr(download, "_open_part", lambda p: _FullDisk(p, 2 * MIB + 5))
    assert main(["models", "pull", "fake", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "VSDCODER_MODELS_DIR" in err and "No model file" in err
    assert not store.final_path(entry).exists()
    assert store.part_path(entry).stat().st_size == 2 * MIB + 5


def test_disk_full_then_resume(fake, monkeypatch):
    entry, data = fake
    monkeypatch.setattr(download, "_open_part", lambda p: _FullDisk(p, MIB + 7))
    with pytest.raises(UsageError, match="disk full"):
        quiet_pull(entry)
    monkeypatch.setattr(download, "_open_part", lambda p: p.open("ab"))
    path, notes = quiet_pull(entry)
    assert verified(path, data) and any("resuming" in n for n in notes)


def test_not_enough_space_is_refused_before_download(fake, hub, monkeypatch):
    entry, _ = fake
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(
        10 * MIB, 10 * MIB - 1000, 1000))
    with pytest.raises(UsageError, match="not enough disk space"):
        quiet_pull(entry)
    assert hub.requests == []


def test_ctrl_c_keeps_the_partial_download(fake, monkeypatch, capsys):
    entry, data = fake
    monkeypatch.setattr(download, "_open_part",
                        lambda p: _FullDisk(p, MIB, exc=KeyboardInterrupt()))
    assert main(["models", "pull", "fake", "--no-progress"]) == 130
    assert "partial download is kept" in capsys.readouterr().err
    assert store.part_path(entry).stat().st_size == MIB
    assert not store.final_path(entry).exists()
    monkeypatch.setattr(download, "_open_part", lambda p: p.open("ab"))
    path, _ = quiet_pull(entry)
    assert verified(path, data)


def _tmpfs_missing() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (mounting a small tmpfs in a private mount namespace)"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "needs the unshare and mount commands (util-linux)"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"needs `unshare -m` (new mount namespaces): {probe.stderr.decode().strip()}"
    return None


def test_disk_full_on_a_small_tmpfs(fake, hub, tmp_path):
    """A real ENOSPC: the models folder is a 2 MiB tmpfs, the file 3.5 MiB."""
    why = _tmpfs_missing()
    if why:
        skip_unprivileged(f"real disk-full test skipped: {why}")
    entry, _data = fake
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    script = tmp_path / "pull_on_tmpfs.py"
    script.write_text(textwrap.dedent(f"""
        import json, shutil
        from vsdcoder.errors import UsageError
        from vsdcoder.models import catalogue, download, store
        from vsdcoder.models.catalogue import ModelEntry
        entry = ModelEntry(**json.loads({json.dumps(json.dumps(entry.__dict__))}))
        catalogue.CATALOGUE = (entry,)
        out = {{}}
        try:  # 1: the free-space check refuses before downloading
            download.pull(entry, progress=False, backoff=0, say=lambda m: None)
        except UsageError as exc:
            out["precheck"] = str(exc)
        real = shutil.disk_usage
        download.shutil.disk_usage = lambda p: real(p)._replace(free=1 << 40)
        try:  # 2: past the check, the kernel says ENOSPC mid-file
            download.pull(entry, progress=False, backoff=0, say=lambda m: None)
        except UsageError as exc:
            out["enospc"] = str(exc)
        out["files"] = sorted(p.name for p in store.models_dir().iterdir()
                              if p.suffix != ".lock")
        print(json.dumps(out))
    """))
    env = dict(os.environ, VSDCODER_MODELS_DIR=str(mnt), VSDCODER_MODELS_BASE_URL=hub.url)
    cmd = ["unshare", "-m", "sh", "-c",
           'mount --make-rprivate / && mount -t tmpfs -o size=2m tmpfs "$0" && exec "$1" "$2"',
           str(mnt), sys.executable, str(script)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "not enough disk space" in out["precheck"]
    assert "disk full" in out["enospc"] and "No model file was installed" in out["enospc"]
    assert out["files"] in ([], [entry.file + ".part"])  # never the final file
    assert list(mnt.iterdir()) == []  # the tmpfs was private to the child


def test_a_second_pull_of_the_same_model_is_refused_while_one_runs(fake):
    from filelock import FileLock

    entry, _ = fake
    store.models_dir().mkdir(parents=True)
    with FileLock(str(store.models_dir() / (entry.file + ".lock"))), \
            pytest.raises(UsageError, match="another `vsdcoder models pull fake` is running"):
        quiet_pull(entry)
    path, _ = quiet_pull(entry)
    assert path.is_file()


# -- path, remove, local/NAME ---------------------------------------------------------------


def test_path_and_remove(fake, capsys):
    entry, _ = fake
    assert main(["models", "path", "fake"]) == 2
    assert "vsdcoder models pull fake" in capsys.readouterr().err
    quiet_pull(entry)
    assert main(["models", "path", "fake"]) == 0
    assert capsys.readouterr().out.strip() == str(store.final_path(entry))
    assert main(["models", "remove", "fake"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not store.final_path(entry).exists()
    assert main(["models", "remove", "fake"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
    assert main(["models", "path", "fake"]) == 2


def test_remove_deletes_a_partial_download(fake, hub, capsys):
    entry, _ = fake
    hub.cut_once(MIB)
    with pytest.raises(UsageError):
        quiet_pull(entry, retries=0)
    assert main(["models", "remove", "fake"]) == 0
    assert not store.part_path(entry).exists()


def test_local_name_resolves_to_the_pulled_file(fake):
    from vsdcoder.coding.local import model_path
    from vsdcoder.coding.providers import choose_mode

    entry, _ = fake
    with pytest.raises(UsageError, match=r"run `vsdcoder models pull fake`") as exc:
        model_path("fake")
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match="not pulled"):
        choose_mode("local/fake")  # before any work starts
    quiet_pull(entry)
    assert model_path("fake") == store.final_path(entry)
    assert choose_mode("local/fake") == "json_schema"


def test_code_with_unpulled_model_exits_2(fake, tmp_path, capsys, isolated_engine):
    data = tmp_path / "d.csv"
    data.write_text("id,text\n1,hello\n", encoding="utf-8")
    rc = main(["code", str(data), "--codebook", "sad-stressors", "--model", "local/fake",
               "--out", str(tmp_path / "run")])
    assert rc == 2
    assert "run `vsdcoder models pull fake`" in capsys.readouterr().err
    assert not (tmp_path / "run" / "codes.jsonl").exists()


def test_unknown_name_lists_the_catalogue(fake, capsys):
    from vsdcoder.coding.local import model_path

    for argv in (["models", "pull", "nope"], ["models", "path", "nope"],
                 ["models", "remove", "nope"]):
        assert main(argv) == 2
        assert "fake" in capsys.readouterr().err
    with pytest.raises(UsageError, match=r"unknown embedded model 'nope'.*\(fake;"):
        model_path("nope")
    # the embedded model and explicit GGUF paths still work as before
    with pytest.raises(UsageError, match="no such GGUF file"):
        model_path("/nonexistent/x.gguf")


def test_smollm2_is_not_pulled(capsys):
    assert main(["models", "pull", "smollm2"]) == 0
    assert "built in" in capsys.readouterr().out
    assert main(["models", "remove", "smollm2"]) == 2
