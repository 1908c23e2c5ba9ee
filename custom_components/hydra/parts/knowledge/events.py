"""What the knowledge part tells Home Assistant: ``hydra_research_finished`` when a research
task ends with a finding, and a phone notification when a mail the worker flagged is urgent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback

from hydra_core.knowledge.models import Finding, MailFlag
from hydra_core.wire import dump

from ...const import CONF_NOTIFY_TARGETS, DOMAIN, EVENT_RESEARCH_FINISHED
from ...notify import async_send
from .describe import mail_line

if TYPE_CHECKING:
    from ...data import HydraConfigEntry


def finding_event_data(entry: HydraConfigEntry, finding: Finding) -> dict[str, Any]:
    """What ``hydra_research_finished`` holds: the entry, and the finding with its id as
    ``finding_id``."""
    data = dump(finding)
    return {"entry_id": entry.entry_id, "finding_id": data.pop("id"), **data}


@callback
def async_research_finished(hass: HomeAssistant, entry: HydraConfigEntry, finding: Finding) -> None:
    """Fire the event an automation can react to (read the summary aloud, send it on)."""
    hass.bus.async_fire(EVENT_RESEARCH_FINISHED, finding_event_data(entry, finding))


@callback
def async_mail_flagged(hass: HomeAssistant, entry: HydraConfigEntry, flag: MailFlag) -> None:
    """An urgent mail: tell the notify targets chosen in the options (one notification per
    mail)."""
    if not (targets := entry.options.get(CONF_NOTIFY_TARGETS, [])):
        return
    entry.async_create_background_task(
        hass,
        async_send(
            hass,
            targets,
            f"Urgent mail ({entry.title})",
            mail_line(flag),
            about="an urgent mail",
            tag=f"{DOMAIN}-mail-{entry.entry_id}-{flag.id}",
        ),
        f"{DOMAIN} notify mail {flag.id}",
    )
