"""LangChain adapters (``pip install 'vsdcoder[langchain]'``).

vsdcoder stays the engine (instructor re-asks, quote checks, logging); LangChain gets a
``ChatPromptTemplate`` of the compiled prompt and a ``Runnable`` that codes one text.

    from vsdcoder.integrations.langchain import as_prompt_template, as_runnable
    prompt = as_prompt_template("sad-stressors")
    coder = as_runnable("sad-stressors", model="openai/gpt-4.1-mini")
    coder.invoke("My boss keeps yelling at me")        # -> {"status": "coded", "codes": ...}
    coder.batch(["text one", "text two"])
"""

from __future__ import annotations

from typing import Any

from vsdcoder.errors import UsageError


def _require() -> None:
    try:
        import langchain_core  # noqa: F401
    except ImportError:
        raise UsageError("the LangChain integration needs langchain-core: "
                         "pip install 'vsdcoder[langchain]'") from None


def _compiled(codebook: Any):
    from vsdcoder.codebook.compile import CompiledCodebook, compile_codebook
    from vsdcoder.codebook.load import load_codebook

    if isinstance(codebook, CompiledCodebook):
        return codebook
    loaded = load_codebook(codebook)
    search = [loaded.directory] if loaded.directory else None
    return compile_codebook(loaded.codebook, search=search)


def as_prompt_template(codebook: Any):
    """The compiled prompt as a ``ChatPromptTemplate`` with variables ``text`` and ``context``.

    Args:
        codebook: A codebook name, YAML path, or :class:`CompiledCodebook`.
    """
    _require()
    from langchain_core.prompts import ChatPromptTemplate

    compiled = _compiled(codebook)
    system = "{% raw %}" + compiled.system + "{% endraw %}"
    return ChatPromptTemplate.from_messages(
        [("system", system), ("human", compiled.user_template_source)],
        template_format="jinja2",
    ).partial(context="")


def as_runnable(codebook: Any, model: str | None = None, **settings: Any):
    """A ``Runnable`` that codes one text (a str, or a dict with text, context, id).

    Args:
        codebook: A codebook name, YAML path, or :class:`CompiledCodebook`.
        model: LiteLLM model string (default ``$VSDCODER_MODEL`` or the embedded model).
        **settings: Other :class:`~vsdcoder.coding.coder.ModelSettings` fields
            (``api_base``, ``temperature``, ``max_retries``, ...).

    Returns:
        A ``RunnableLambda`` whose output is ``{"id", "status", "error", "quote_verified", ...}``
        plus the coded result (``codes``/``evidence`` or ``records``).
    """
    _require()
    import asyncio
    import os

    from langchain_core.runnables import RunnableLambda

    from vsdcoder.coding.coder import LLMCoder, ModelSettings
    from vsdcoder.coding.providers import EMBEDDED_MODEL, choose_mode
    from vsdcoder.data.read import Unit

    compiled = _compiled(codebook)
    name = model or os.environ.get("VSDCODER_MODEL") or EMBEDDED_MODEL
    mode = choose_mode(name, settings.pop("mode", None))
    coder = LLMCoder(compiled, ModelSettings(model=name, mode=mode, **settings))
    counter = {"n": 0}

    def to_unit(value: Any) -> Unit:
        counter["n"] += 1
        if isinstance(value, str):
            return Unit(id=str(counter["n"]), text=value)
        return Unit(id=str(value.get("id", counter["n"])), text=value["text"],
                    context=value.get("context"))

    async def acode(value: Any) -> dict[str, Any]:
        res = await coder.code(to_unit(value))
        out = {"id": res.id, "status": res.status, "error": res.error,
               "quote_verified": res.quote_verified, "attempts": res.attempts}
        out.update(res.result or {})
        return out

    def code(value: Any) -> dict[str, Any]:
        return asyncio.run(acode(value))

    return RunnableLambda(code, afunc=acode, name=f"vsdcoder[{compiled.codebook.name}]")
