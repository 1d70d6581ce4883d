"""Placeholder: the OpenAI Chat Completions wire (SSE), for opencode, aider and llm."""
