"""Test utilities (a scripted OpenAI-compatible server). Never used by vsdcoder itself."""
