"""The embedded SmolLM2 model, in-process and behind llama-cpp-python's own OpenAI server.

These use the real 135M model on the CPU (a few seconds per answer), so they code only a few
units. The model is tiny and codes poorly; what is tested is that the whole path runs offline,
that answers are grammar-constrained JSON, and that every unit ends coded or failed with a reason.
"""

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

import vsdcoder
from vsdcoder.coding.local import llama_response_format, model_path, smollm2_path
from vsdcoder.errors import UsageError

pytestmark = pytest.mark.embedded

TEXTS = [
    ("a", "My boss keeps piling more projects on me and I cannot sleep."),
    ("b", "I failed my chemistry exam again and my parents will be furious."),
    ("c", "Rent went up and I do not know how to pay it this month."),
]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in TEXTS) + "\n")
    return p


def _check_run(run_dir, n_units):
    lines = [json.loads(x) for x in (run_dir / "codes.jsonl").read_text().splitlines()]
    assert [u["id"] for u in lines] == [i for i, _ in TEXTS][:n_units]
    for u in lines:
        assert u["status"] in ("coded", "failed")
        if u["status"] == "coded":
            assert u["codes"]["stressor"] in {
                "work", "school", "financial_problem", "emotional_turmoil", "social_relationships",
                "family_issues", "health_fatigue_physical_pain", "everyday_decision_making",
                "other"}
            assert isinstance(u["quote_verified"], bool)
        else:
            assert u["error"]
    db = sqlite3.connect(run_dir / "run.db")
    calls = db.execute("SELECT response, status FROM calls").fetchall()
    assert len(calls) >= n_units
    return lines, calls


def test_response_format_is_translated_to_llama_dialect():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    rf = {"type": "json_schema", "json_schema": {"name": "X", "schema": schema}}
    assert llama_response_format(rf) == {"type": "json_object", "schema": schema}
    assert llama_response_format({"type": "json_object"}) == {"type": "json_object"}
    assert llama_response_format(None) is None


def test_model_paths(tmp_path):
    assert smollm2_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_path("smollm2") == smollm2_path()
    with pytest.raises(UsageError, match="unknown embedded model"):
        model_path("gpt-5")
    with pytest.raises(UsageError, match="no such GGUF"):
        model_path(str(tmp_path / "missing.gguf"))


def test_embedded_in_process_codes_offline(data, tmp_path):
    summary = vsdcoder.code(data, "sad-stressors", out=tmp_path / "run", max_retries=1,
                            max_tokens=120, limit=2)
    assert summary.status == "finished"
    assert sum(summary.counts.values()) == 2
    _lines, calls = _check_run(tmp_path / "run", 2)
    # grammar-constrained: every answer the model gave is a JSON object with the schema's keys
    for response, _status in calls:
        content = json.loads(response)["choices"][0]["message"]["content"]
        obj = json.loads(content)
        assert set(obj) == {"quote", "stressor"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model"]["model"] == "local/smollm2"
    assert manifest["model"]["mode"] == "json_schema"


def test_users_own_gguf_file_works_the_same_way(data, tmp_path):
    gguf = smollm2_path()
    summary = vsdcoder.code(data, "sad-stressors", model=f"local/{gguf}", out=tmp_path / "r2",
                            limit=1, max_retries=0, max_tokens=120)
    assert summary.status == "finished"
    assert sum(summary.counts.values()) == 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    logf = open(log, "wb")  # not a pipe: the server logs a lot and would block on a full pipe
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
        stdout=logf, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("llama_cpp.server exited: " + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("llama_cpp.server did not start in 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    logf.close()


def test_llama_cpp_server_over_http(llama_server, data, tmp_path):
    summary = vsdcoder.code(data, "sad-stressors", model="openai/smollm2", api_base=llama_server,
                            api_key="sk-noop", out=tmp_path / "run", max_retries=1,
                            max_tokens=120, concurrency=1, limit=2)
    assert summary.status == "finished"
    _lines, _calls = _check_run(tmp_path / "run", 2)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model"]["mode"] == "tools"
    assert manifest["model"]["api_base"] == llama_server
