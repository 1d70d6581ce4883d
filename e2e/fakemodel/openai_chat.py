"""Placeholder: the OpenAI Chat Completions wire (SSE), written by the e2e work for opencode, aider and llm."""
