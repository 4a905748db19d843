"""Eval suites: ``vsdcoder evals list|fetch|build`` and ``vsdcoder.suites``.

Fetching runs against an HTTP server the tests start on 127.0.0.1, serving a folder laid out
like raw.githubusercontent.com (``<owner>/<repo>/<commit>/<path>``). Tests that need the real
data sets (the team's shared copy) say so with ``need_shared``; the others use made-up files.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest
from conftest import need_shared

from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.suites import SUITES, build_suite, candidates, fetch_suite, find_source, locate
from vsdcoder.suites import lookup as lookup_mod
from vsdcoder.suites.download import extract_member
from vsdcoder.suites.sad import make_subset as sad_subset

#: SHA-256 of the files each suite builds: the files the recorded results were measured on
#: (they were in the repository as evals/NAME/{data,gold}.csv until the data sets were removed).
BUILT = {
    "sad": {"data.csv": "3fc19f52fa97e24817acc17b59645a3118c19164aeb0806f628bb8f7ec02381a",
            "gold.csv": "9e6140b6bf3055d16eb0d6d1f0140f42bf7111e05235b9811927d0ab4f9a0e4c"},
    "convabuse": {
        "data.csv": "17ba687853740747ecc260bec208d1fa51d7633dbf3e8e6c7961fab166d37030",
        "gold.csv": "24974b389c90c20466e8271a6daad14515b315ab2ea0acd97baf0b7c4029f02f"},
}
SAD_XLSX = "020e2b60ab32eb75a6f28fac8094b2acfffa76b4db5a659a765f6b0f7fd39f40"
ENV = ("VSDCODER_DATASETS", "VSDCODER_DATASETS_URL", "VSDCODER_DATA_DIR")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VSDCODER_DATA_DIR", str(tmp_path / "data-home"))
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# -- a local server laid out like raw.githubusercontent.com ---------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        if self.path in self.server.truncate and os.path.isfile(path):
            body = Path(path).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


class Mirror:
    """A folder served on 127.0.0.1 as ``<owner>/<repo>/<commit>/<path>``."""

    def __init__(self, root: Path):
        self.root = root
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.server.truncate = set()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def path(self, suite: str, download: str) -> Path:
        s = SUITES[suite]
        p = self.root / s.github / s.commit / download
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def put(self, suite: str, download: str, data: bytes) -> Path:
        p = self.path(suite, download)
        p.write_bytes(data)
        return p

    def truncate(self, suite: str, download: str) -> None:
        s = SUITES[suite]
        self.server.truncate.add(f"/{s.github}/{s.commit}/{download}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path):
    m = Mirror(tmp_path / "mirror")
    yield m
    m.close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def convabuse_mirror(mirror: Mirror) -> None:
    """The three real ConvAbuse splits (from the shared copy) on the mirror."""
    src = need_shared("datasets", "convabuse", "2_splits")
    for f in SUITES["convabuse"].files:
        mirror.put("convabuse", f.download, (src / Path(f.path).name).read_bytes())


def sad_mirror(mirror: Mirror, extra: dict[str, bytes] | None = None) -> None:
    """SAD_v1.zip holding the real SAD_v1.xlsx (shared copy) and a schema file."""
    xlsx = need_shared("datasets", "sad", "SAD_v1_unzipped", "SAD_v1.xlsx").read_bytes()
    members = {"SAD_v1/SAD_v1.xlsx": xlsx, "SAD_v1/Schema.txt": b"columns\n", **(extra or {})}
    mirror.put("sad", "SAD_v1.zip", zip_bytes(members))


# -- fetch ----------------------------------------------------------------------------------


def test_fetch_convabuse_builds_the_same_suite_as_the_shared_copy(mirror, tmp_path, capsys):
    convabuse_mirror(mirror)
    rc, out, err = run(capsys, "evals", "fetch", "convabuse", "--base-url", mirror.url,
                       "--out", str(tmp_path / "built"))
    assert rc == 0, err
    assert out == f"{tmp_path / 'built'}\n"
    dest = tmp_path / "data-home" / "datasets" / "convabuse"  # $VSDCODER_DATA_DIR/datasets/NAME
    assert files_under(dest) == {"FETCHED.json", *(f.path for f in SUITES["convabuse"].files)}
    for f in SUITES["convabuse"].files:
        assert sha(dest / f.path) == f.sha256
    assert "checksum verified" in err
    from_shared = build_suite("convabuse", source=need_shared("datasets", "convabuse"),
                              out=tmp_path / "from-shared")
    for name in ("data.csv", "gold.csv", "layout.yaml"):
        assert (tmp_path / "built" / name).read_bytes() == (from_shared.dir / name).read_bytes()
    assert sha(tmp_path / "built" / "gold.csv") == BUILT["convabuse"]["gold.csv"]

    # again: nothing downloaded, the files are already there and verified
    mirror.close()
    rc, out, err = run(capsys, "evals", "fetch", "convabuse", "--base-url", mirror.url,
                       "--out", str(tmp_path / "built"))
    assert rc == 0, err
    assert "downloading" not in err and err.count("already there") == 3


def test_fetch_sad_extracts_only_the_xlsx_and_verifies_it(mirror, tmp_path, monkeypatch, capsys):
    sad_mirror(mirror, extra={"../../outside.txt": b"escaped", "/abs.txt": b"escaped"})
    monkeypatch.setenv("VSDCODER_DATASETS_URL", mirror.url)  # the env var instead of --base-url
    rc, out, err = run(capsys, "evals", "fetch", "sad")
    assert rc == 0, err
    built = Path(out.strip())
    assert built == tmp_path / "cache" / "evals" / "sad"  # default: $VSDCODER_CACHE_DIR/evals
    dest = tmp_path / "data-home" / "datasets" / "sad"
    assert files_under(dest) == {"FETCHED.json", "SAD_v1_unzipped/SAD_v1.xlsx"}  # no zip, no part
    assert sha(dest / "SAD_v1_unzipped" / "SAD_v1.xlsx") == SAD_XLSX
    assert not [p for p in tmp_path.rglob("*") if p.name in ("outside.txt", "abs.txt")]
    assert not Path("/abs.txt").exists()
    import json

    record = json.loads((dest / "FETCHED.json").read_text(encoding="utf-8"))
    zip_sha = sha(mirror.path("sad", "SAD_v1.zip"))
    assert record["files"][0]["download_sha256"] == zip_sha
    assert record["files"][0]["url"].startswith(mirror.url + "/PervasiveWellbeingTech/")
    for name, digest in BUILT["sad"].items():
        assert sha(built / name) == digest
    assert (built / "layout.yaml").read_bytes() == (
        Path(__file__).resolve().parent.parent / "evals" / "sad" / "layout.yaml").read_bytes()
    # found where fetch put it (nothing else in the lookup order holds it here)
    monkeypatch.setattr(lookup_mod, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert locate("sad") == ("fetched", dest)


def test_wrong_checksum_is_refused_and_nothing_is_kept(mirror, tmp_path, capsys):
    for f in SUITES["convabuse"].files:
        mirror.put("convabuse", f.download, b"example_id,user\n1,not the data set\n")
    rc, out, err = run(capsys, "evals", "fetch", "convabuse", "--base-url", mirror.url)
    assert rc == 2
    assert "checksum mismatch" in err and "expected 23abab3e" in err and "removed" in err
    assert "Traceback" not in err and out == ""
    dest = tmp_path / "data-home" / "datasets" / "convabuse"
    assert files_under(dest) == set()
    with pytest.raises(UsageError, match="checksum mismatch"):
        fetch_suite("convabuse", base_url=mirror.url, log=lambda _: None)


def test_wrong_checksum_inside_the_zip(mirror, tmp_path, capsys):
    mirror.put("sad", "SAD_v1.zip", zip_bytes({"SAD_v1.xlsx": b"not a workbook"}))
    rc, _, err = run(capsys, "evals", "fetch", "sad", "--base-url", mirror.url)
    assert rc == 2
    assert f"SAD_v1.xlsx in {mirror.url}" in err and f"expected {SAD_XLSX}" in err
    assert files_under(tmp_path / "data-home" / "datasets" / "sad") == set()


def test_http_404_is_a_clear_error(mirror, tmp_path, capsys):
    rc, out, err = run(capsys, "evals", "fetch", "convabuse", "--base-url", mirror.url)
    assert rc == 2
    assert "HTTP 404" in err and f"{mirror.url}/amandacurry/convabuse/" in err
    assert "Traceback" not in err and out == ""
    assert files_under(tmp_path / "data-home" / "datasets" / "convabuse") == set()


def test_connection_closed_mid_download_leaves_no_file(mirror, tmp_path, capsys):
    for f in SUITES["convabuse"].files:
        mirror.put("convabuse", f.download, b"x" * 300_000)
    first = SUITES["convabuse"].files[0]
    mirror.truncate("convabuse", first.download)
    rc, _, err = run(capsys, "evals", "fetch", "convabuse", "--base-url", mirror.url)
    assert rc == 2
    assert "connection closed before the whole file arrived" in err, err
    assert "Traceback" not in err
    dest = tmp_path / "data-home" / "datasets" / "convabuse"
    assert files_under(dest) == set()  # neither the final file nor a .part


def test_no_network_is_a_clear_error(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, _, err = run(capsys, "evals", "fetch", "sad", "--base-url", f"http://127.0.0.1:{port}",
                     "--timeout", "5")
    assert rc == 2
    assert "cannot reach" in err and "Traceback" not in err


def test_zip_member_with_a_traversal_path_is_never_extracted(mirror, tmp_path, capsys):
    # the only SAD_v1.xlsx is at ../SAD_v1.xlsx: refused, nothing written anywhere
    mirror.put("sad", "SAD_v1.zip", zip_bytes({"../SAD_v1.xlsx": b"x",
                                               "../../escaped.txt": b"x"}))
    rc, _, err = run(capsys, "evals", "fetch", "sad", "--base-url", mirror.url)
    assert rc == 2
    assert "expected one file SAD_v1.xlsx in the archive, found 0" in err
    assert files_under(tmp_path / "data-home") == set()
    assert not [p for p in tmp_path.rglob("*") if p.name == "escaped.txt"]

    # directly: only the harmless member is read, and written where asked
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"../../evil/SAD_v1.xlsx": b"evil", "__MACOSX/SAD_v1.xlsx": b"m",
                                   "dir/SAD_v1.xlsx": b"good", "C:/SAD_v1.xlsx": b"evil"}))
    out = tmp_path / "x" / "target.bin"
    out.parent.mkdir()
    assert extract_member(archive, "SAD_v1.xlsx", out) == hashlib.sha256(b"good").hexdigest()
    assert out.read_bytes() == b"good"
    assert files_under(tmp_path / "x") == {"target.bin"}
    assert not (tmp_path.parent / "evil").exists()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a readable zip"):
        extract_member(tmp_path / "bad.zip", "SAD_v1.xlsx", tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_unknown_suite_is_exit_2(capsys):
    for cmd in (("evals", "fetch", "nope"), ("evals", "build", "nope")):
        rc, out, err = run(capsys, *cmd)
        assert rc == 2
        assert "no eval suite 'nope'; the suites are: sad, convabuse" in err
        assert "Traceback" not in err and out == ""
    with pytest.raises(UsageError, match="no eval suite"):
        build_suite("nope")


def test_unknown_suite_in_a_subprocess(tmp_path):
    env = {**os.environ, "VSDCODER_LOAD_PLUGINS": ""}
    proc = subprocess.run([sys.executable, "-m", "vsdcoder.cli.main", "evals", "build", "nope"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no eval suite 'nope'" in proc.stderr and "Traceback" not in proc.stderr


# -- where the data set is found --------------------------------------------------------------


def fake_source(folder: Path, suite: str = "convabuse") -> Path:
    p = folder / SUITES[suite].input
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("made up\n", encoding="utf-8")
    return folder


def test_lookup_order(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "proj").mkdir(parents=True)
    monkeypatch.chdir(work / "proj")
    checkout = tmp_path / "co" / "main"
    checkout.mkdir(parents=True)
    monkeypatch.setattr(lookup_mod, "checkout_root", lambda: checkout)
    env_dir = tmp_path / "env"
    fetched = tmp_path / "data-home" / "datasets" / "convabuse"
    rel = fake_source(work / "shared" / "datasets" / "convabuse")
    beside = fake_source(tmp_path / "co" / "shared" / "datasets" / "convabuse")
    env_copy = fake_source(env_dir / "convabuse")
    fake_source(fetched)

    assert [w for w, _ in candidates("convabuse")] == [
        "checkout", "current directory", "fetched"]
    monkeypatch.setenv("VSDCODER_DATASETS", str(env_dir))
    assert [(w, p) for w, p in candidates("convabuse")] == [
        ("$VSDCODER_DATASETS", env_copy), ("checkout", beside),
        ("current directory", Path.cwd().parent / "shared" / "datasets" / "convabuse"),
        ("fetched", fetched)]
    assert find_source("convabuse") == env_copy  # the env var wins over ../shared
    monkeypatch.delenv("VSDCODER_DATASETS")
    assert find_source("convabuse") == beside  # beside the checkout
    shutil.rmtree(beside)
    assert find_source("convabuse").resolve() == rel.resolve()  # ../shared from the cwd
    shutil.rmtree(rel)
    assert locate("convabuse") == ("fetched", fetched)
    # an explicit source is the only place tried
    with pytest.raises(UsageError, match=r"--source") as e:
        find_source("convabuse", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "2_splits" / "ConvAbuseEMNLPtest.csv") in str(e.value)
    assert find_source("convabuse", env_copy) == env_copy


def test_not_found_lists_every_place_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lookup_mod, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VSDCODER_DATASETS", str(tmp_path / "env"))
    rc, out, err = run(capsys, "evals", "build", "sad")
    assert rc == 2 and out == ""
    assert "the sad data set was not found" in err
    assert str(tmp_path / "env" / "sad" / "SAD_v1_unzipped" / "SAD_v1.xlsx") in err
    assert str(tmp_path / "data-home" / "datasets" / "sad" / "SAD_v1_unzipped") in err
    assert "vsdcoder evals fetch sad" in err and "Traceback" not in err


def test_build_refuses_a_source_with_the_wrong_checksum(tmp_path, capsys):
    src = fake_source(tmp_path / "src")
    rc, out, err = run(capsys, "evals", "build", "convabuse", "--source", str(src))
    assert rc == 2 and out == ""
    assert "SHA-256" in err and "8387d70332cd2245" in err and "vsdcoder evals fetch" in err
    assert not (tmp_path / "cache" / "evals" / "convabuse" / "data.csv").exists()


def test_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lookup_mod, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "evals", "list")
    assert rc == 0, err
    assert "not found: run `vsdcoder evals fetch sad`" in out
    assert "not found: run `vsdcoder evals fetch convabuse`" in out
    assert "MIT" in out and "CC BY 4.0" in out
    assert "https://doi.org/10.1145/3411763.3451799" in out
    assert "https://doi.org/10.18653/v1/2021.emnlp-main.587" in out
    monkeypatch.setenv("VSDCODER_DATASETS", str(tmp_path / "env"))
    fake_source(tmp_path / "env" / "convabuse")
    rc, out, _ = run(capsys, "evals", "list", "--json")
    import json

    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["convabuse"]["source"] == str(tmp_path / "env" / "convabuse")
    assert rows["convabuse"]["found_via"] == "$VSDCODER_DATASETS"
    assert rows["sad"]["source"] is None and rows["sad"]["units"] == 306


def test_help_lists_evals(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "  evals " in out
    rc, out, _ = run(capsys, "evals", "--help")
    assert rc == 0
    for command in ("list", "fetch", "build"):
        assert f"  {command} " in out


# -- build ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sad", "convabuse"])
def test_build_is_deterministic_and_the_recorded_suite(name, tmp_path, capsys):
    source = need_shared("datasets", name)
    rc, out, err = run(capsys, "evals", "build", name, "--source", str(source),
                       "--out", str(tmp_path / "one"))
    assert rc == 0, err
    assert out == f"{tmp_path / 'one'}\n"  # only the folder: DIR=$(vsdcoder evals build NAME)
    two = build_suite(name, source=source, out=tmp_path / "two")
    assert two.units == SUITES[name].units and two.codebook == SUITES[name].codebook
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [
        "data.csv", "gold.csv", "layout.yaml"]
    for f in ("data.csv", "gold.csv", "layout.yaml"):
        assert (tmp_path / "one" / f).read_bytes() == (two.dir / f).read_bytes()
    for f, digest in BUILT[name].items():
        assert sha(two.dir / f) == digest, f
    if name == "convabuse":  # (SAD takes seconds per build)
        # building again over an earlier build replaces it with the same bytes
        (two.dir / "data.csv").write_text("stale\n", encoding="utf-8")
        again = build_suite(name, source=source, out=tmp_path / "two")
        assert sha(again.data) == BUILT[name]["data.csv"]
        assert sorted(p.name for p in again.dir.iterdir()) == [
            "data.csv", "gold.csv", "layout.yaml"]


# -- the SAD subset without pandas draws what the pandas code drew ---------------------------

LABELS = ["Work", "School", "Financial Problem", "Emotional Turmoil", "Social Relationships",
          "Family Issues", "Health, Fatigue, or Physical Pain", "Everyday Decision Making",
          "Other"]


def pandas_subset(xlsx: Path, out: Path) -> None:
    """The original evals/sad/make_subset.py (without the demo sample), with pandas."""
    import pandas as pd

    from vsdcoder.suites.sad import LABELS as MAP
    from vsdcoder.suites.sad import SEED

    df = pd.read_excel(xlsx)
    df = df[(df.is_stressor == 1) & df.sentence.astype(str).str.strip().str.len().gt(10)]
    df = df.drop_duplicates("sentence")
    df["stressor"] = df.top_label.map(MAP)
    df["second"] = df.second_label.astype(str).str.strip().map(MAP)
    df = df[df.stressor.notna()]
    per = df.groupby("stressor").sample(n=34, random_state=SEED)
    per = per.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    per["id"] = "sad-" + per.sID.astype(str)
    shares = {code: per[col].round(3) for col, code in MAP.items()}
    data = per[["id", "sentence", "Source"]].rename(
        columns={"sentence": "text", "Source": "source"})
    data.to_csv(out / "data.csv", index=False)
    gold = pd.DataFrame({"id": per.id, "stressor": per.stressor, "second_stressor": per.second,
                         "votes": per.Votes, **{f"share_{k}": v for k, v in shares.items()}})
    gold.to_csv(out / "gold.csv", index=False)


def synthetic_sad(path: Path, seed: int) -> None:
    """A workbook shaped like SAD_v1.xlsx, with the awkward cells of real sheets."""
    import random

    from openpyxl import Workbook

    rng = random.Random(seed)
    wb = Workbook()
    ws = wb.active
    ws.append(["sID", "sentence", "is_stressor", "top_label", "second_label", "Votes",
               *LABELS, "Source", "is_seed"])
    sid = 0
    for i in range(3000):
        sid += rng.choice([1, 1, 2])
        label = rng.choice([*LABELS, "Unknown"])
        sentence = rng.choice([
            f"I am worried about thing number {i}, really, \"quoted\"",
            f"  padded sentence {i} with spaces  ", "short", "NA", None, "None",
            "a duplicated sentence of some length", f"line\nbreak {i}, here"])
        shares = [rng.choice([0, 0, 0.1, 1 / 3, 0.2, 0.16666666666666666]) for _ in LABELS]
        ws.append([sid, sentence, rng.choice([1, 1, 1, 0, None]), label,
                   rng.choice([" ", None, *LABELS]), rng.choice([5, 6, 7, 10, 10, 10, 10, None]),
                   *shares, rng.choice(["Inquire", "mTurk_synthetic", None]), 0])
        if i == 1500:
            ws.append([None] * 5)  # a blank row in the middle
    wb.save(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_sad_subset_matches_the_pandas_original(tmp_path, seed):
    pytest.importorskip("pandas")
    xlsx = tmp_path / "sad.xlsx"
    synthetic_sad(xlsx, seed)
    (tmp_path / "pd").mkdir()
    (tmp_path / "np").mkdir()
    pandas_subset(xlsx, tmp_path / "pd")
    assert sad_subset(xlsx, tmp_path / "np") == 306
    for name in ("data.csv", "gold.csv"):
        assert (tmp_path / "np" / name).read_bytes() == (tmp_path / "pd" / name).read_bytes()
    with open(tmp_path / "np" / "gold.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 306 and len({r["id"] for r in rows}) == 306


def test_sad_subset_rejects_a_workbook_that_is_not_sad(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["id", "text"])
    wb.save(tmp_path / "x.xlsx")
    with pytest.raises(UsageError, match="no column"):
        sad_subset(tmp_path / "x.xlsx", tmp_path)
    (tmp_path / "y.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(UsageError, match="not a readable Excel workbook"):
        sad_subset(tmp_path / "y.xlsx", tmp_path)
