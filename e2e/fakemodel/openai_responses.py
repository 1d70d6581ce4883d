"""Placeholder: the OpenAI Responses wire (SSE), written by the e2e work for Codex."""
