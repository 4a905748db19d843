"""Nothing copied from third parties: no item of the real data sets and no sentence of the Li et
al. prompt in any file of the repository (or, through it, of the wheel), and no machine path.

The data sets and the prompt are the team's shared material (``shared/``), which is never part of
the repository; these tests read it where it lives and skip, naming it, where it is absent.
"""

from __future__ import annotations

import csv
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import need_shared

ROOT = Path(__file__).resolve().parent.parent
#: Runs of this many words are compared. A data item or a sentence shorter than this is not
#: checked: short phrases ("I am so tired") are everyday language, not a copy.
WORDS = 6
#: Files that cannot hold copied prose: binaries and this test itself (it names no data).
SKIP_SUFFIXES = {".png", ".jpg", ".gguf", ".whl", ".xlsx", ".zip", ".db"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _tracked_files() -> list[Path]:
    """Files of the repository: tracked or new (not ignored), as they are on disk."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, timeout=60)
    if proc.returncode != 0:  # an unpacked sdist: every file but caches
        return [p for p in ROOT.rglob("*") if p.is_file()
                and not {".git", ".venv", "__pycache__"} & set(p.relative_to(ROOT).parts)]
    return sorted({ROOT / n for n in proc.stdout.decode().split("\0")
                   if n and (ROOT / n).is_file()})


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], dict[tuple[str, ...], set[str]]]:
    """Every tracked text file as one normalised string, and an index of its word runs."""
    texts: dict[str, str] = {}
    index: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for path in _tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if path.suffix.lower() in SKIP_SUFFIXES or rel == "tests/test_provenance.py":
            continue
        try:
            words = _words(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        texts[rel] = " " + " ".join(words) + " "
        for i in range(len(words) - WORDS + 1):
            index[tuple(words[i:i + WORDS])].add(rel)
    assert "README.md" in texts and "plugins/codebooks/sad-stressors.yaml" in texts
    return texts, index


def _copies(items: list[str], corpus) -> dict[str, list[str]]:
    """Each item (>= WORDS words) that occurs whole in a repository file, with the files."""
    texts, index = corpus
    found: dict[str, list[str]] = {}
    for item in items:
        words = _words(item)
        if len(words) < WORDS:
            continue
        candidates = index.get(tuple(words[:WORDS]), set())
        needle = " " + " ".join(words) + " "
        hits = sorted(f for f in candidates if needle in texts[f])
        if hits:
            found[item] = hits
    return found


def _report(found: dict[str, list[str]], what: str) -> str:
    lines = [f"{len(found)} {what} found in the repository (write our own instead):"]
    lines += [f"  {files}: {item[:100]!r}" for item, files in list(found.items())[:20]]
    return "\n".join(lines)


def test_no_sad_message_in_the_repository(corpus):
    openpyxl = pytest.importorskip("openpyxl")
    path = need_shared("datasets", "sad", "SAD_v1_unzipped", "SAD_v1.xlsx")
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    col = list(next(rows)).index("sentence")
    items = [str(r[col]) for r in rows if r[col]]
    assert len(items) > 6000
    found = _copies(items, corpus)
    assert not found, _report(found, "SAD messages")


def test_no_convabuse_message_in_the_repository(corpus):
    folder = need_shared("datasets", "convabuse", "2_splits")
    items: list[str] = []
    for split in sorted(folder.glob("ConvAbuseEMNLP*.csv")):
        with open(split, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                items += [row[c] for c in ("user", "prev_user", "agent", "prev_agent") if row[c]]
    assert len(items) > 4000
    found = _copies(items, corpus)
    # the chatbots' own canned turns are short formulas ("Please go on", "Tell me more about
    # that") that anybody would write; user turns and longer agent turns must not be here
    assert not found, _report(found, "ConvAbuse turns")


def test_no_sentence_of_the_li_prompt_in_the_repository(corpus):
    md = need_shared("reference", "li2025_prompt.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```text\n(.*?)\n```", md, re.S))
    assert len(blocks) > 5000
    # sentences and list items of the prompt; each list of condition terms is one item, but the
    # terms are names of conditions (facts), so a run of them is not prose: only items with a verb-
    # like shape (at least WORDS words and not a comma-separated list of names) count
    parts = [p.strip() for p in re.split(r"(?<=[.!?:])\s+|\n+", blocks)]
    sentences = [p for p in parts if len(_words(p)) >= 8 and p.count(",") < len(_words(p)) / 3]
    assert len(sentences) > 80
    found = _copies(sentences, corpus)
    assert not found, _report(found, "sentences of the Li et al. prompt")


def test_no_machine_path_in_tracked_files(corpus):
    texts, _ = corpus
    pattern = re.compile(r"(?<![\w.])/(?:work|root|home)/\w")
    hits = []
    for path in _tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel not in texts or rel == "tests/test_provenance.py":
            continue
        raw = path.read_text(encoding="utf-8")
        hits += [f"{rel}:{raw.count(chr(10), 0, m.start()) + 1}" for m in pattern.finditer(raw)]
    assert not hits, f"absolute paths of a machine in tracked files: {hits[:10]}"


def test_no_third_party_data_files():
    data = [p.relative_to(ROOT).as_posix() for p in _tracked_files()
            if p.suffix.lower() in {".csv", ".xlsx", ".tsv", ".parquet"}]
    # our own written demo sample is the only data file the project ships
    assert data == ["plugins/samples/stress-demo.csv"], data
