"""Placeholder: the openai wire is written by the e2e work for its CLIs."""
