"""The coding engine: coder (instructor over LiteLLM), embedded model, cache, runner."""
