"""The optional LangChain adapters, over the scripted server."""

import pytest

from vsdcoder.codebook.compile import compile_codebook
from vsdcoder.codebook.load import load_codebook
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))


def test_prompt_template_renders_the_compiled_messages():
    from vsdcoder.integrations.langchain import as_prompt_template

    compiled = compile_codebook(load_codebook("sad-stressors").codebook)
    tpl = as_prompt_template(compiled)
    assert set(tpl.input_variables) == {"text"}
    msgs = tpl.format_messages(text="My rent went up again.")
    expected = compiled.messages("My rent went up again.")
    assert [m.content for m in msgs] == [m["content"] for m in expected]
    assert [m.type for m in msgs] == ["system", "human"]
    with_ctx = tpl.format_messages(text="x y", context="previous turn")
    assert with_ctx[1].content == compiled.messages("x y", "previous turn")[1]["content"]


def test_runnable_codes_over_http():
    from vsdcoder.integrations.langchain import as_runnable

    def responder(req, srv):
        t = unit_text(req)
        return Reply(completion(req, {"quote": t.split()[0], "stressor": "financial_problem"}))

    with FakeOpenAI(responder) as srv:
        r = as_runnable("sad-stressors", model="openai/fake", api_base=srv.url, api_key="sk-x")
        one = r.invoke("Rent is due and I am broke")
        many = r.batch(["Bills everywhere", {"id": "u9", "text": "Loans keep piling up"}])
    assert one["status"] == "coded"
    assert one["codes"] == {"stressor": "financial_problem"}
    assert one["evidence"]["quote"] == "Rent" and one["evidence"]["start"] == 0
    assert [m["status"] for m in many] == ["coded", "coded"]
    assert many[1]["id"] == "u9"
    assert len(srv.requests) == 3
