"""aider's own set-up for the end-to-end suite.

aider reaches the fake through LiteLLM's OpenAI client: ``OPENAI_API_BASE``
(the fake's URL and ``/v1``), any ``OPENAI_API_KEY``, and a model named
``openai/<name>``. What would leave loopback is turned off or cached:

- LiteLLM's model price list: ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (the
  bundled profile sets it) makes LiteLLM use its own copy;
- aider's model price list, downloaded from GitHub unless
  ``~/.aider/caches/model_prices_and_context_window.json`` is younger than a
  day and not empty (aider has no setting to skip it): the private home gets
  one naming the fake model, which also spares the "unknown model" warning;
- update checks and analytics: ``AIDER_CHECK_UPDATE=false`` and
  ``AIDER_ANALYTICS=false`` (the profile sets them).

The OpenAI client inside LiteLLM retries a 429 or a 5xx twice on its own,
silently, unless the answer says ``x-should-retry: false``: the fake's error
answers say so, so that every failure reaches aider, whose own retries are
what the wrapper turns into notes.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.fakemodel import FakeModel

from .recording import recording

BIN_VAR = "AIDER_BIN"
MODEL = "openai/e2e-model"
#: With the fake's 429 and 500: no silent retries inside the OpenAI client.
NO_CLIENT_RETRY = {"x-should-retry": "false"}


def aider_env(
    env: dict[str, str],
    model: FakeModel,
    *,
    record: str = "",
    folder: Path | None = None,
) -> dict[str, str]:
    """``env`` for running the aider profile against ``model``.

    ``record`` names the scenario file(s) to write with E2E_CAPTURE=1 (see
    recording.py); ``folder`` then holds the launcher.
    """
    caches = Path(env["HOME"]) / ".aider" / "caches"
    caches.mkdir(parents=True, exist_ok=True)
    prices = {
        MODEL: {
            "max_input_tokens": 128000,
            "max_output_tokens": 4096,
            "max_tokens": 4096,
            "input_cost_per_token": 0,
            "output_cost_per_token": 0,
            "litellm_provider": "openai",
            "mode": "chat",
        }
    }
    (caches / "model_prices_and_context_window.json").write_text(json.dumps(prices))
    out = {
        **env,
        "OPENAI_API_BASE": f"{model.url}/v1",
        "OPENAI_API_KEY": "sk-e2e",
        "AIDER_MODEL": MODEL,
    }
    return recorded(out, record=record, folder=folder)


def recorded(env: dict[str, str], *, record: str, folder: Path | None) -> dict[str, str]:
    """``env``, with aider recorded as ``record`` when E2E_CAPTURE=1."""
    return recording(env, cli="aider", bin_var=BIN_VAR, record=record, folder=folder, style="text")
