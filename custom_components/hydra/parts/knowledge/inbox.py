"""Home Assistant's own mail and feeds, sent on to the knowledge base.

* The ``imap`` integration fires ``imap_content`` for each new mail (sender, subject, date and,
  by default, the text's first 2,048 characters): each goes to ``POST /mail``, and a mail the
  worker flags is kept for the briefing; an urgent one goes to the notify targets. The mail
  account stays Home Assistant's: Hydra never holds mail credentials. A mail seen again (the
  event's ``initial`` is false) is not sent twice.
* The ``feedreader`` integration fires ``feedreader`` with each new entry of its feeds (the
  feedparser entry and its ``feed_url``): each goes to ``POST /feeds/entries``, ingested like
  an entry the worker polled itself.

Both go to the knowledge base of the first loaded worker that has one; without one they are
let be.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from datetime import datetime
import email.utils
import time
from typing import Any, Final

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraError

from ...const import DOMAIN, LOGGER
from .coordinator import HydraKnowledgeCoordinator
from .requests import knowledge_worker

# The events of Home Assistant's imap and feedreader integrations (named here rather than
# imported: importing those integrations would need their requirements).
EVENT_IMAP_CONTENT: Final = "imap_content"
EVENT_FEEDREADER: Final = "feedreader"
# What the worker takes of a mail (MailRequest) and of a feed entry.
MAX_SENDER: Final = 500
MAX_SUBJECT: Final = 2000
MAX_MAIL_TEXT: Final = 100_000
MAX_ENTRY_TITLE: Final = 1000
MAX_ENTRY_SUMMARY: Final = 20_000
MAX_FEED: Final = 500
MAX_URL: Final = 2000


@callback
def async_setup_inbox(hass: HomeAssistant) -> None:
    """Follow Home Assistant's mail and feed events for as long as it runs."""
    hass.bus.async_listen(EVENT_IMAP_CONTENT, _forward(hass, "mail", _async_send_mail))
    hass.bus.async_listen(EVENT_FEEDREADER, _forward(hass, "feed entry", _async_send_entry))


def _forward(
    hass: HomeAssistant,
    what: str,
    send: Callable[[HydraKnowledgeCoordinator, Mapping[str, Any]], Any],
) -> Callable[[Event[dict[str, Any]]], None]:
    @callback
    def received(event: Event[dict[str, Any]]) -> None:
        if (knowledge := knowledge_worker(hass)) is None:
            LOGGER.debug("No Hydra knowledge base to send a %s to", what)
            return
        knowledge.config_entry.async_create_background_task(
            hass, send(knowledge, event.data), f"{DOMAIN} {what}"
        )

    return received


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value).strip()[:limit]


def _timestamp(value: Any) -> float | None:
    """A time as the imap integration (a datetime), feedparser (a UTC struct_time) or an
    automation (text) gives it."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, time.struct_time):
        return float(calendar.timegm(value))
    if isinstance(value, str) and value.strip():
        if (parsed := dt_util.parse_datetime(value.strip())) is not None:
            return dt_util.as_utc(parsed).timestamp()
        try:
            return email.utils.parsedate_to_datetime(value).timestamp()
        except TypeError, ValueError:
            return None
    return None


async def _async_send_mail(knowledge: HydraKnowledgeCoordinator, data: Mapping[str, Any]) -> None:
    """One new mail to the worker; what it flags is kept (and an urgent one notified)."""
    if data.get("initial") is False:
        return
    sender = _text(data.get("sender"), MAX_SENDER)
    try:
        flag = await knowledge.api.async_mail(
            sender=sender,
            subject=_text(data.get("subject"), MAX_SUBJECT),
            text=_text(data.get("text"), MAX_MAIL_TEXT),
            date=_timestamp(data.get("date")),
        )
    except HydraError as err:
        LOGGER.warning("Hydra could not look at the mail from %s: %s", sender, err)
        return
    if flag is not None:
        knowledge.async_apply_flag(flag)


async def _async_send_entry(knowledge: HydraKnowledgeCoordinator, data: Mapping[str, Any]) -> None:
    """One new feed entry to the worker's knowledge base."""
    link = _text(data.get("link"), MAX_URL) or None
    if not (title := _text(data.get("title"), MAX_ENTRY_TITLE) or link):
        LOGGER.debug("A feedreader entry without title or link is not sent to Hydra")
        return
    summary = data.get("summary") or data.get("description")
    published = next(
        (
            stamp
            for key in ("published_parsed", "updated_parsed", "published", "updated")
            if (stamp := _timestamp(data.get(key))) is not None
        ),
        None,
    )
    try:
        await knowledge.api.async_add_feed_entry(
            feed=_text(data.get("feed_url"), MAX_FEED) or None,
            title=title,
            link=link,
            summary=_text(summary, MAX_ENTRY_SUMMARY) or None,
            published=published,
        )
    except HydraError as err:
        LOGGER.warning("Hydra could not take the feed entry %s: %s", title, err)
