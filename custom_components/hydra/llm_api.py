"""The "Hydra" LLM API: what conversation agents (Ollama, OpenAI, ... in Home Assistant) may
use of Hydra once the user ticks it among the agent's APIs (alone, or beside Assist).

Its tools are Hydra's own intents (GPU temperatures, how busy the cluster is, what failed
overnight, the briefing, starting the overnight pipeline, pausing and resuming autonomous
work: the same handlers Assist runs, checked as they are there) and the tools of the parts the
loaded workers have (the knowledge base: search, research, remember, recall, forget, the feed
digest). Every tool acts as the person talking: an agent can do no more than they could.
"""

from __future__ import annotations

from typing import Final, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import intent, llm

from .const import DOMAIN
from .intent import (
    INTENT_BRIEFING,
    INTENT_CLUSTER_STATUS,
    INTENT_GPU_TEMPERATURE,
    INTENT_OVERNIGHT_FAILURES,
    INTENT_PAUSE_WORK,
    INTENT_RESUME_WORK,
    INTENT_START_OVERNIGHT,
)
from .registry import PARTS

API_ID: Final = DOMAIN
API_NAME: Final = "Hydra"
# Hydra's intents an agent may call, and whether each only reads. Queueing research is the
# knowledge part's richer tool (pages to read too); the knowledge intents are its tools.
INTENT_TOOLS: Final[dict[str, llm.ToolAnnotations]] = {
    INTENT_GPU_TEMPERATURE: llm.ToolAnnotations(
        read_only=True, destructive=False, open_world=False
    ),
    INTENT_CLUSTER_STATUS: llm.ToolAnnotations(read_only=True, destructive=False, open_world=False),
    INTENT_OVERNIGHT_FAILURES: llm.ToolAnnotations(
        read_only=True, destructive=False, open_world=False
    ),
    INTENT_BRIEFING: llm.ToolAnnotations(read_only=True, destructive=False, open_world=False),
    INTENT_START_OVERNIGHT: llm.ToolAnnotations(destructive=False, open_world=False),
    INTENT_PAUSE_WORK: llm.ToolAnnotations(destructive=False, idempotent=True, open_world=False),
    INTENT_RESUME_WORK: llm.ToolAnnotations(destructive=False, idempotent=True, open_world=False),
}
PROMPT: Final = (
    "Hydra is this home's AI system: GPU workers, a task queue that runs overnight work, and "
    "a knowledge base of research findings, web pages, RSS feeds and what the household asked "
    "it to remember. Search the knowledge base before answering questions about topics the "
    "household follows or researched, and say which source an answer comes from. Remember "
    "facts and preferences only when the user asks you to; recall them when the user refers "
    "to something they told you before; forget one only when the user asks. Research runs in "
    "the background: say it was queued, not what it will find."
)


class HydraLLMAPI(llm.API):
    """Hydra's intents and the tools of the parts the loaded workers have."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Describe the API; its tools are gathered for each conversation."""
        super().__init__(hass=hass, id=API_ID, name=API_NAME)

    @override
    async def async_get_api_instance(self, llm_context: llm.LLMContext) -> llm.APIInstance:
        """The tools for one conversation: the intents, and the parts' tools while a loaded
        worker has the part."""
        handlers = {handler.intent_type: handler for handler in intent.async_get(self.hass)}
        tools: list[llm.Tool] = [
            llm.IntentTool(name, handlers[name], integration=DOMAIN, annotations=annotations)
            for name, annotations in INTENT_TOOLS.items()
            if name in handlers
        ]
        present = {
            name
            for entry in self.hass.config_entries.async_loaded_entries(DOMAIN)
            for name in entry.runtime_data.parts
        }
        for part in PARTS:
            if part.name in present:
                tools.extend(part.llm_tools)
        return llm.APIInstance(
            api=self,
            api_prompt=PROMPT,
            llm_context=llm_context,
            tools=tools,
            custom_serializer=llm.selector_serializer,
        )


@callback
def async_register_llm_api(hass: HomeAssistant) -> None:
    """Offer the "Hydra" API to conversation agents for as long as Home Assistant runs."""
    llm.async_register_api(hass, HydraLLMAPI(hass))
