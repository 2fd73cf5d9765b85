"""Test-only helpers: the scripted OpenAI-compatible server that stands in for the LLM."""
