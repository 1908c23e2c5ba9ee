"""The worker's knowledge base: its status, the newest research findings and the mail flagged
in the last day; pushed by the event stream, polled slowly to fill gaps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraClient
from hydra_core.knowledge.client import KnowledgeClient
from hydra_core.knowledge.models import (
    EVENT_FINDING,
    EVENT_KNOWLEDGE,
    EVENT_MAIL,
    Finding,
    KnowledgeStatus,
    MailFlag,
)
from hydra_core.models import WorkerEvent
from hydra_core.wire import dump, load

from ...const import (
    DOMAIN,
    FINDINGS_LIMIT,
    FLAGGED_MAIL_KEEP,
    KNOWLEDGE_SCAN_INTERVAL,
)
from ...coordinator import HydraPartCoordinator, show_issue
from .events import async_mail_flagged, async_research_finished

if TYPE_CHECKING:
    from ...data import HydraConfigEntry


@dataclass(frozen=True, slots=True)
class HydraKnowledgeData:
    """The knowledge base's status, its newest findings and the last day's flagged mail, each
    newest first."""

    status: KnowledgeStatus
    findings: tuple[Finding, ...]
    mail: tuple[MailFlag, ...]


class HydraKnowledgeCoordinator(HydraPartCoordinator[HydraKnowledgeData, KnowledgeClient]):
    """The worker's knowledge base: pushed by the event stream, polled every five minutes.

    A finding the stream could not tell (it was down when the research ended) is announced
    when the stream is back, late rather than never.
    """

    part = "knowledge"
    api_type = KnowledgeClient
    disabled = "knowledge_disabled"
    interval = KNOWLEDGE_SCAN_INTERVAL

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker's knowledge base."""
        super().__init__(hass, entry, client, worker_id)
        # The newest finding Home Assistant has announced (or found there when it started).
        self._announced = 0
        # Flags already sent to the phones: the answer to the mail and its event both tell.
        self._notified: set[int] = set()

    @override
    async def async_fetch(self) -> HydraKnowledgeData:
        """Read the status, the newest findings and the last day's flagged mail."""
        since = (dt_util.utcnow() - FLAGGED_MAIL_KEEP).timestamp()
        status, findings, mail = await asyncio.gather(
            self.api.async_status(),
            self.api.async_findings(limit=FINDINGS_LIMIT),
            self.api.async_flagged_mail(since),
        )
        return HydraKnowledgeData(status=status, findings=tuple(findings), mail=tuple(mail))

    @override
    async def async_start(self) -> None:
        """What the worker had found before Home Assistant started is not news."""
        self._announced = max((finding.id for finding in self.data.findings), default=0)
        self._update_issue(self.data.status)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """Apply a pushed status, finding or flagged mail; announce findings and urgent mail."""
        if event.type == EVENT_KNOWLEDGE:
            self.async_apply_status(load(KnowledgeStatus, event.data))
        elif event.type == EVENT_FINDING:
            self.async_apply_finding(load(Finding, event.data))
        elif event.type == EVENT_MAIL:
            self.async_apply_flag(load(MailFlag, event.data))

    @override
    async def async_stream_live(self, hello: WorkerEvent, *, reconnected: bool) -> None:
        """Announce the findings made while the stream was down, oldest first."""
        for finding in sorted(self.data.findings, key=lambda finding: finding.id):
            self._announce(finding)

    @override
    def _async_refresh_finished(self) -> None:
        super()._async_refresh_finished()
        if self.last_update_success:
            self._update_issue(self.data.status)

    @override
    def diagnostics(self) -> dict[str, Any]:
        # Topics, summaries and mail are the user's; the store's state is enough to debug.
        return {
            **super().diagnostics(),
            "event_stream_connected": self.pushed,
            "status": dump(self.data.status),
            "findings": [
                {"id": finding.id, "method": finding.method, "problems": len(finding.problems)}
                for finding in self.data.findings
            ],
            "flagged_mail": len(self.data.mail),
        }

    @callback
    def async_apply_status(self, status: KnowledgeStatus) -> None:
        """The knowledge base's status as the worker just told it."""
        self._update_issue(status)
        self.async_set_updated_data(replace(self.data, status=status))

    @callback
    def async_apply_finding(self, finding: Finding) -> None:
        """A research task just ended with this finding: keep it, and announce it."""
        findings = {item.id: item for item in self.data.findings}
        findings[finding.id] = finding
        newest = sorted(findings.values(), key=lambda item: item.id, reverse=True)
        self.async_set_updated_data(replace(self.data, findings=tuple(newest[:FINDINGS_LIMIT])))
        self._announce(finding)

    @callback
    def async_apply_flag(self, flag: MailFlag) -> None:
        """A mail the worker flagged: keep it for the briefing; an urgent one goes to the
        phones, once."""
        since = (dt_util.utcnow() - FLAGGED_MAIL_KEEP).timestamp()
        mail = {item.id: item for item in self.data.mail if item.flagged_at >= since}
        mail[flag.id] = flag
        newest = sorted(mail.values(), key=lambda item: item.id, reverse=True)
        self.async_set_updated_data(replace(self.data, mail=tuple(newest)))
        if flag.urgent and flag.id not in self._notified:
            self._notified.add(flag.id)
            async_mail_flagged(self.hass, self.config_entry, flag)

    def _announce(self, finding: Finding) -> None:
        if finding.id > self._announced:
            self._announced = finding.id
            async_research_finished(self.hass, self.config_entry, finding)

    def _update_issue(self, status: KnowledgeStatus) -> None:
        """Tell the user, through a repairs issue, when the knowledge base cannot run or has
        grown past what local mode is good for."""
        issue_id = f"knowledge_{self.config_entry.entry_id}"
        if status.available and not status.warning:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        if not status.available:
            key, problem = "knowledge_unavailable", status.reason or "no reason given"
        else:
            key, problem = "knowledge_warning", status.warning or ""
        show_issue(
            self.hass,
            issue_id,
            key,
            {"worker": self.config_entry.title, "problem": problem},
            severity=ir.IssueSeverity.WARNING,
        )
