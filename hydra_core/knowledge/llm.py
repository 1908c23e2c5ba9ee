"""Summaries from any OpenAI-compatible chat endpoint (Ollama's /v1, llama.cpp's server, vLLM,
LocalAI): ``POST {base}/chat/completions`` with a model and messages, the answer in
``choices[0].message.content``.

The endpoint is the user's own server. Its address may carry credentials and its API key is a
secret: neither reaches a log or an error message (servers are named by host and port).
"""

from __future__ import annotations

from collections.abc import Sequence
import logging
from typing import Any

import aiohttp
from yarl import URL

from ..errors import Refusal

_LOGGER = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 1_000_000


class LlmError(Refusal, code="llm_failed", status=502):
    """The chat endpoint could not be reached or answered something unusable."""


class ChatClient:
    """One OpenAI-compatible chat endpoint and model."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 120.0,
    ) -> None:
        url = URL(base_url.rstrip("/"))
        self._url = url.with_path(url.path.rstrip("/") + "/chat/completions")
        self.name = f"{url.host}:{url.port}"
        self.model = model
        self._session = session
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def chat(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 600) -> str:
        """The model's answer to ``messages`` (``[{"role", "content"}]``)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": 0.2,
            "max_tokens": max_tokens,
            "stream": False,
        }
        try:
            async with self._session.post(
                self._url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise LlmError(
                f"The language model at {self.name} cannot be reached ({type(err).__name__})"
            ) from None
        if status != 200:
            raise LlmError(f"The language model at {self.name} answered {status}")
        if len(raw) > MAX_ANSWER_BYTES:
            raise LlmError(f"The language model at {self.name} answered too much")
        try:
            import json  # noqa: PLC0415

            answer = json.loads(raw)
            content = answer["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError(
                f"The language model at {self.name} answered something that is not a chat"
                " completion"
            ) from None
        if not isinstance(content, str) or not content.strip():
            raise LlmError(f"The language model at {self.name} answered nothing")
        return content.strip()
