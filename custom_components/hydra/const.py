"""Constants of the Hydra integration."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "hydra"
LOGGER = logging.getLogger(__package__)

# The SHA-256 of the worker's certificate the user confirmed (AB:CD:...): pinned, for a worker
# whose certificate no trusted CA signed.
CONF_FINGERPRINT: Final = "fingerprint"
CONF_SCAN_INTERVAL: Final = "scan_interval"
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=30)
MIN_SCAN_INTERVAL_S: Final = 5
MAX_SCAN_INTERVAL_S: Final = 3600

MANUFACTURER: Final = "Hydra"

CONF_CONTAINERS: Final = "containers"
CONF_REMOVE_AFTER: Final = "remove_after"
DEFAULT_REMOVE_AFTER_H: Final = 24
MAX_REMOVE_AFTER_H: Final = 24 * 365

# Containers are pushed over the event stream; the poll only fills gaps (and CPU/memory).
CONTAINER_SCAN_INTERVAL: Final = timedelta(seconds=60)
# Seconds to wait before each new attempt to reach the event stream; the last one repeats.
RECONNECT_DELAYS_S: Final = (1, 2, 5, 10, 30)
# How long the container engine may be unreachable before Repairs says so.
ENGINE_ISSUE_AFTER: Final = timedelta(minutes=5)

EVENT_CONTAINER_ACTION: Final = "hydra_container_action"
EVENT_CONTAINER_HEAL_FAILED: Final = "hydra_container_heal_failed"

# The task queue: pushed over the event stream; the poll only fills gaps.
TASKS_SCAN_INTERVAL: Final = timedelta(seconds=60)
# Voice settings and model states are pushed; the poll only fills gaps.
VOICE_SCAN_INTERVAL: Final = timedelta(seconds=60)
# The newest tasks kept in Home Assistant (the to-do list shows these).
TASK_LIST_LIMIT: Final = 50
# Today's counts are read again after a task changes state, at most this often (seconds).
COUNTS_COOLDOWN_S: Final = 0.5
CONF_DEFAULT_KIND: Final = "default_kind"
DEFAULT_KIND: Final = "maintenance"
CONF_NOTIFY_TARGETS: Final = "notify_targets"
CONF_NOTIFY_FAILURE: Final = "notify_failure"
CONF_NOTIFY_SUCCESS: Final = "notify_success"

EVENT_TASK_STARTED: Final = "hydra_task_started"
EVENT_TASK_SUCCEEDED: Final = "hydra_task_succeeded"
EVENT_TASK_FAILED: Final = "hydra_task_failed"

# The daily routine (options, in sections).
CONF_PRESENCE: Final = "presence"
CONF_PERSONS: Final = "persons"
CONF_AWAY_ENABLED: Final = "away_enabled"
CONF_RESEARCH_TOPICS: Final = "research_topics"
CONF_ARRIVE_ENABLED: Final = "arrive_enabled"
CONF_BEDTIME: Final = "bedtime"
CONF_BEDTIME_ENABLED: Final = "bedtime_enabled"
CONF_BEDTIME_TIME: Final = "bedtime_time"
CONF_BEDTIME_ENTITIES: Final = "bedtime_entities"
CONF_BRIEFING: Final = "briefing"
CONF_BRIEFING_ENABLED: Final = "briefing_enabled"
CONF_BRIEFING_TIME: Final = "briefing_time"
CONF_BRIEFING_HOURS: Final = "briefing_hours"
CONF_BRIEFING_TARGETS: Final = "briefing_targets"
CONF_CALENDARS: Final = "calendars"
CONF_WEATHER: Final = "weather"
CONF_DISCORD_WEBHOOK: Final = "discord_webhook"

DEFAULT_BRIEFING_TIME: Final = "07:00:00"
DEFAULT_BRIEFING_HOURS: Final = 12
MAX_BRIEFING_HOURS: Final = 168

EVENT_ROUTINE: Final = "hydra_routine"
EVENT_BRIEFING: Final = "hydra_briefing"
# Actions of the phone notifications (mobile_app): "<action>:<config entry id>".
ACTION_RETRY_FAILED: Final = "HYDRA_RETRY_FAILED"
ACTION_PAUSE: Final = "HYDRA_PAUSE"

# GPU power profiles are pushed; the poll only fills gaps.
POWER_SCAN_INTERVAL: Final = timedelta(seconds=60)

# Image review (issue: quality scoring): pushed; the poll only fills gaps.
QUALITY_SCAN_INTERVAL: Final = timedelta(seconds=60)
# Assets awaiting review that Home Assistant keeps, oldest first.
PENDING_LIMIT: Final = 50
CONF_REVIEW: Final = "review"
CONF_REVIEW_TARGETS: Final = "review_targets"
EVENT_ASSET_PENDING: Final = "hydra_asset_pending"
EVENT_ASSET_REVIEWED: Final = "hydra_asset_reviewed"
ACTION_ACCEPT: Final = "HYDRA_ACCEPT"
ACTION_REJECT: Final = "HYDRA_REJECT"

# The creative pipeline's chapters: pushed; the poll only fills gaps while the event stream is
# down (it is read again whenever the stream reconnects), so it can be slow.
CREATIVE_SCAN_INTERVAL: Final = timedelta(minutes=5)
# The newest chapters Home Assistant keeps (running ones are kept however old).
CHAPTER_LIST_LIMIT: Final = 20
# A finished chapter keeps its progress sensor this long (the newest chapter keeps it until
# another is sent), so the morning after an overnight run still shows how it ended.
CHAPTER_KEEP: Final = timedelta(hours=24)
# A chapter read from Home Assistant's media folder may be at most this many bytes.
MAX_CHAPTER_FILE_BYTES: Final = 1_000_000
EVENT_CHAPTER_STARTED: Final = "hydra_chapter_started"
EVENT_CHAPTER_PROGRESS: Final = "hydra_chapter_progress"
EVENT_CHAPTER_FINISHED: Final = "hydra_chapter_finished"
EVENT_CHAPTER_FAILED: Final = "hydra_chapter_failed"

# The knowledge base: its status and findings are pushed; the poll only fills gaps while the
# event stream is down (it is read again whenever the stream reconnects), so it can be slow.
KNOWLEDGE_SCAN_INTERVAL: Final = timedelta(minutes=5)
# The models are pushed as they load and go; the poll catches what others loaded meanwhile.
MODELS_SCAN_INTERVAL: Final = timedelta(seconds=60)
# Disk use and forecasts change slowly; a change of the predicted problems is pushed.
FORECASTS_SCAN_INTERVAL: Final = timedelta(minutes=5)
# A node lost or joined is pushed; the poll refreshes what the nodes have free.
CLUSTER_SCAN_INTERVAL: Final = timedelta(seconds=30)
# The newest findings Home Assistant keeps (the briefing reads the worker's own).
FINDINGS_LIMIT: Final = 20
# Flagged mail Home Assistant keeps: the last day's.
FLAGGED_MAIL_KEEP: Final = timedelta(hours=24)
EVENT_RESEARCH_FINISHED: Final = "hydra_research_finished"
