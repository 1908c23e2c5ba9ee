"""The knowledge part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.knowledge.models import EVENT_FINDING, EVENT_KNOWLEDGE, EVENT_MAIL

from ...part import Part
from .actions import KNOWLEDGE_ACTIONS
from .coordinator import HydraKnowledgeCoordinator
from .entities import async_setup_sensors
from .inbox import async_setup_inbox
from .tools import KNOWLEDGE_TOOLS

KNOWLEDGE = Part(
    coordinator=HydraKnowledgeCoordinator,
    events=frozenset({EVENT_KNOWLEDGE, EVENT_FINDING, EVENT_MAIL}),
    platforms={Platform.SENSOR: async_setup_sensors},
    actions=KNOWLEDGE_ACTIONS,
    setup=async_setup_inbox,
    llm_tools=KNOWLEDGE_TOOLS,
)
