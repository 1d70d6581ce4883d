"""A fake model server on loopback that speaks the vendor APIs the real agent CLIs call.

The core (:mod:`.server`) owns the socket, the request log and the script of
behaviours; one module per vendor API renders a behaviour in that API's wire
format: :mod:`.anthropic` (Messages, SSE), :mod:`.openai_responses` (Responses,
SSE), :mod:`.openai_chat` (Chat Completions, SSE), :mod:`.gemini`
(generateContent / streamGenerateContent).
"""

from .server import Behaviour, Cut, FakeModel, Recorded, Reply, Status, ToolUse

__all__ = ["Behaviour", "Cut", "FakeModel", "Recorded", "Reply", "Status", "ToolUse"]
