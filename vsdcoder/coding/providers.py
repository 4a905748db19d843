"""Which instructor mode to use for a model, and where its endpoint is.

A small capability table, as cognee's ``INSTRUCTOR_MODE_TABLE``: LiteLLM's own capability
checks return False for local and unknown models, so they are a last resort, not the rule.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlparse

from vsdcoder.errors import UsageError

#: The embedded model's LiteLLM model string.
EMBEDDED_MODEL = "local/smollm2"

MODES = ("tools", "json_schema", "json", "md_json")

# provider prefix -> mode; first match wins
_TABLE: list[tuple[str, str]] = [
    ("local/", "json_schema"),  # embedded llama.cpp: grammar-constrained JSON
    ("ollama/", "json_schema"),  # LiteLLM maps json_schema to Ollama's format=<schema>
    ("ollama_chat/", "json_schema"),
    ("hosted_vllm/", "json_schema"),
    ("lm_studio/", "json_schema"),
    ("openai/", "tools"),
    ("azure/", "tools"),
    ("anthropic/", "tools"),
    ("gemini/", "tools"),
    ("vertex_ai/", "tools"),
    ("mistral/", "tools"),
    ("groq/", "tools"),
    ("together_ai/", "tools"),
    ("openrouter/", "tools"),
    ("deepseek/", "tools"),
    ("bedrock/", "tools"),
]


def choose_mode(model: str, override: str | None = None) -> str:
    """The instructor mode for ``model``: ``override`` if given, else the capability table.

    Tool calls where the provider supports them, schema-constrained JSON otherwise.

    Raises:
        UsageError: An unknown ``--mode``, or a ``local/NAME`` model that cannot run (not in
            the catalogue, not pulled, no such GGUF file): said before any work starts.
    """
    if model.startswith("local/"):
        from vsdcoder.coding.local import check_model

        check_model(model[len("local/"):])
    if override:
        if override not in MODES:
            raise UsageError(f"unknown --mode '{override}'; use one of: {', '.join(MODES)}")
        return override
    for prefix, mode in _TABLE:
        if model.startswith(prefix):
            return mode
    if "/" not in model:  # bare names such as gpt-4o-mini resolve to OpenAI
        return "tools"
    try:
        import litellm

        if litellm.supports_function_calling(model):
            return "tools"
        if litellm.supports_response_schema(model):
            return "json_schema"
    except Exception:  # unknown to LiteLLM: the portable choice
        pass
    return "json"


def instructor_mode(mode: str):
    """The ``instructor.Mode`` for one of :data:`MODES`."""
    import instructor

    return {"tools": instructor.Mode.TOOLS, "json_schema": instructor.Mode.JSON_SCHEMA,
            "json": instructor.Mode.JSON, "md_json": instructor.Mode.MD_JSON}[mode]


@dataclass(frozen=True)
class Endpoint:
    """Where requests for a model go, and whether that is this machine."""

    model: str
    api_base: str | None
    is_local: bool
    why: str


def endpoint(model: str, api_base: str | None) -> Endpoint:
    """Classify the endpoint of ``model``: embedded, loopback, or elsewhere."""
    if model.startswith("local/"):
        return Endpoint(model, None, True, "the embedded model runs in this process")
    base = api_base
    if base is None and (model.startswith("ollama/") or model.startswith("ollama_chat/")):
        import os

        base = os.environ.get("OLLAMA_API_BASE", "http://localhost:11434")
    if base:
        host = urlparse(base).hostname or ""
        if host == "localhost":
            return Endpoint(model, base, True, f"{base} is this machine")
        try:
            if ipaddress.ip_address(host).is_loopback:
                return Endpoint(model, base, True, f"{base} is a loopback address")
        except ValueError:
            pass
        return Endpoint(model, base, False, f"{base} is not a loopback address")
    return Endpoint(model, None, False, f"'{model}' is a cloud API")
