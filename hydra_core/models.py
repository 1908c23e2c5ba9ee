"""Data that crosses the worker API, shared by the worker and its client.

The worker builds these objects and serialises them with ``as_dict``; the client parses the JSON
back with ``from_dict``. Both sides use the same classes so the wire format is defined once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

API_VERSION = "v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInfo:
    """One GPU as NVML reports it. A value the card cannot report is None."""

    index: int
    uuid: str
    name: str
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    power_limit_min_w: float | None = None
    power_limit_max_w: float | None = None
    power_limit_default_w: float | None = None
    fan_percent: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        return cls(**{key: data[key] for key in _GPU_FIELDS if key in data})


_GPU_FIELDS = tuple(GpuInfo.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReport:
    """All GPUs of a host, or why there are none."""

    backend: str
    available: bool
    reason: str | None = None
    driver_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "backend": self.backend,
            "available": self.available,
            "reason": self.reason,
            "driver_version": self.driver_version,
            "gpus": [gpu.as_dict() for gpu in self.gpus],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            backend=data["backend"],
            available=data["available"],
            reason=data.get("reason"),
            driver_version=data.get("driver_version"),
            gpus=tuple(GpuInfo.from_dict(gpu) for gpu in data.get("gpus", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo:
    """Facts about the machine the worker runs on."""

    hostname: str
    os: str
    kernel: str
    python: str
    cpu_count: int
    memory_total_bytes: int | None = None
    memory_available_bytes: int | None = None
    load_average: tuple[float, float, float] | None = None
    boot_time: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        load = data.get("load_average")
        return cls(
            **{key: data[key] for key in _HOST_FIELDS if key in data},
            load_average=tuple(load) if load is not None else None,
        )


_HOST_FIELDS = tuple(key for key in HostInfo.__dataclass_fields__ if key != "load_average")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """Who the worker is: what ``/api/v1/health`` answers without a token."""

    worker_id: str
    name: str
    version: str
    api_version: str = API_VERSION

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            worker_id=data["worker_id"],
            name=data["name"],
            version=data["version"],
            api_version=data.get("api_version", API_VERSION),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartInfo:
    """One part a worker runs (containers, tasks, voice, ...): its version and what it offers."""

    version: str
    capabilities: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"version": self.version, "capabilities": list(self.capabilities)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(version=data["version"], capabilities=tuple(data.get("capabilities", ())))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerStatus:
    """Everything ``/api/v1/status`` reports: the worker, its host, its GPUs and its parts."""

    worker: WorkerInfo
    started_at: float
    host: HostInfo
    gpu: GpuReport = field(default_factory=lambda: GpuReport(backend="none", available=False))
    # The parts this worker runs, by name; a part that is off is absent.
    parts: dict[str, PartInfo] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "worker": self.worker.as_dict(),
            "started_at": self.started_at,
            "host": self.host.as_dict(),
            "gpu": self.gpu.as_dict(),
            "parts": {name: part.as_dict() for name, part in self.parts.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            worker=WorkerInfo.from_dict(data["worker"]),
            started_at=data["started_at"],
            host=HostInfo.from_dict(data["host"]),
            gpu=GpuReport.from_dict(data["gpu"]),
            parts={name: PartInfo.from_dict(part) for name, part in data.get("parts", {}).items()},
        )

    def gpu_by_uuid(self) -> dict[str, GpuInfo]:
        """Return the GPUs keyed by their NVML UUID, which survives reboots and re-indexing."""
        return {gpu.uuid: gpu for gpu in self.gpu.gpus}


CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
CONTAINER_HEALTH = ("none", "starting", "healthy", "unhealthy")
CONTAINER_ACTIONS = ("start", "stop", "restart")
# Exit codes of a container that exited cleanly or was stopped (SIGKILL 137, SIGTERM 143).
STOP_EXIT_CODES = frozenset({None, 0, 137, 143})


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerInfo:
    """One container as the engine reports it, known by name: a recreated container keeps it."""

    name: str
    id: str
    image: str
    state: str
    health: str = "none"
    exit_code: int | None = None
    restart_count: int = 0
    restart_policy: str | None = None
    started_at: str | None = None
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_limit_bytes: int | None = None
    protected: bool = False

    @property
    def problem(self) -> bool:
        """Unhealthy, or stopped by a failure rather than by a stop or kill (SIGTERM, SIGKILL)."""
        if self.health == "unhealthy" or self.state == "dead":
            return True
        return self.state == "exited" and self.exit_code not in STOP_EXIT_CODES

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        return cls(**{key: data[key] for key in _CONTAINER_FIELDS if key in data})


_CONTAINER_FIELDS = tuple(ContainerInfo.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HealingSettings:
    """How the worker heals containers; ``enabled`` can be switched at run time."""

    enabled: bool = True
    unhealthy_checks: int = 3
    max_restarts_per_hour: int = 3

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(**{key: data[key] for key in _HEALING_FIELDS if key in data})


_HEALING_FIELDS = tuple(HealingSettings.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerReport:
    """Every container of the engine, or why the engine cannot be read."""

    engine_available: bool
    engine_error: str | None = None
    engine_version: str | None = None
    containers: tuple[ContainerInfo, ...] = ()
    healing: HealingSettings = field(default_factory=HealingSettings)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "engine_available": self.engine_available,
            "engine_error": self.engine_error,
            "engine_version": self.engine_version,
            "containers": [container.as_dict() for container in self.containers],
            "healing": self.healing.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            engine_available=data["engine_available"],
            engine_error=data.get("engine_error"),
            engine_version=data.get("engine_version"),
            containers=tuple(ContainerInfo.from_dict(item) for item in data.get("containers", ())),
            healing=HealingSettings.from_dict(data.get("healing", {})),
        )

    def by_name(self) -> dict[str, ContainerInfo]:
        """The containers keyed by name."""
        return {container.name: container for container in self.containers}


ACTOR_TYPES = ("user", "automation", "self_heal", "api")
AUDIT_RESULTS = ("ok", "refused", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who asked for an action: a Home Assistant user, an automation, self-healing, or the API."""

    type: str
    id: str | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"type": self.type, "id": self.id, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(type=data["type"], id=data.get("id"), name=data.get("name"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One action Hydra attempted, whatever came of it."""

    id: int
    time: float
    actor: Actor
    container: str
    action: str
    result: str
    reason: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "id": self.id,
            "time": self.time,
            "actor": self.actor.as_dict(),
            "container": self.container,
            "action": self.action,
            "result": self.result,
            "reason": self.reason,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            id=data["id"],
            time=data["time"],
            actor=Actor.from_dict(data["actor"]),
            container=data["container"],
            action=data["action"],
            result=data["result"],
            reason=data.get("reason"),
            detail=data.get("detail"),
        )


# The types of messages on /api/v1/events and what their data holds.
EVENT_HELLO = "hello"  # WorkerInfo, first message of every connection
EVENT_KEEPALIVE = "keepalive"  # {}: sent when nothing else was for KEEPALIVE_S
KEEPALIVE_S = 30.0
EVENT_CONTAINER = "container"  # ContainerInfo: created, changed state or health
EVENT_CONTAINER_REMOVED = "container_removed"  # {"name", "id"}
EVENT_ENGINE = "engine"  # {"available", "error"}: the container engine came or went
EVENT_AUDIT = "audit"  # AuditEntry: an action was attempted
EVENT_HEALING = "healing"  # HealingSettings: self-healing switched or changed
EVENT_HEAL_EXHAUSTED = "heal_exhausted"  # {"container", "restarts", "window_s"}: gave up


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEvent:
    """A message on ``/api/v1/events``: a type and its data."""

    type: str
    time: float
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"type": self.type, "time": self.time, "data": self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(type=data["type"], time=data["time"], data=data.get("data") or {})


TASK_STATES = ("queued", "waiting", "running", "succeeded", "failed", "cancelled")
FINISHED_TASK_STATES = frozenset({"succeeded", "failed", "cancelled"})
EVENT_TASK = "task"  # Task: queued, started, progressed, finished, cancelled or requeued


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One unit of autonomous work in the worker's queue."""

    id: int
    kind: str
    payload: dict[str, Any]
    priority: int
    state: str
    actor: Actor
    attempts: int = 0
    max_attempts: int = 3
    next_attempt_at: float | None = None
    progress: float = 0.0
    progress_message: str | None = None
    waiting_reason: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """Succeeded, failed or cancelled: it will not run again unless retried."""
        return self.state in FINISHED_TASK_STATES

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (payload and result are shared, not copied)."""
        data = {key: getattr(self, key) for key in _TASK_FIELDS}
        data["actor"] = self.actor.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        values = {key: data[key] for key in _TASK_FIELDS if key in data}
        values["actor"] = Actor.from_dict(data["actor"])
        return cls(**values)


_TASK_FIELDS = tuple(Task.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSettings:
    """When autonomous work may run: the resource gate, concurrency, and the pause switch."""

    max_gpu_utilization: float = 50.0
    min_free_vram_gb: float = 4.0
    poll_interval_s: float = 30.0
    max_concurrent: int = 3
    paused: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(**{key: data[key] for key in _SCHEDULER_FIELDS if key in data})


_SCHEDULER_FIELDS = tuple(SchedulerSettings.__dataclass_fields__)


EVENT_SCHEDULER = "scheduler"  # SchedulerSettings: thresholds or the pause switch changed


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerState:
    """What ``/api/v1/scheduler`` answers: the settings, today's counts, the accepted kinds."""

    settings: SchedulerSettings
    counts: dict[str, int]
    kinds: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "settings": self.settings.as_dict(),
            "counts": dict(self.counts),
            "kinds": list(self.kinds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            settings=SchedulerSettings.from_dict(data["settings"]),
            counts=dict(data["counts"]),
            kinds=tuple(data["kinds"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceSettings:
    """What Home Assistant may change on the worker's voice services at run time."""

    wake_threshold: float = 0.5
    wake_trigger_level: int = 1
    stt_model: str = "base.en"
    tts_voice: str | None = None
    tts_speed: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(**{key: data[key] for key in _VOICE_FIELDS if key in data})


_VOICE_FIELDS = tuple(VoiceSettings.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceServiceState:
    """One voice service (wake, stt or tts): whether it is offered, and if not, why."""

    available: bool
    reason: str | None = None
    # not_loaded, loading, loaded or error; "downloading" while a model comes in.
    state: str = "not_loaded"
    # 0..1 while downloading, else None.
    progress: float | None = None
    # What can be chosen: wake models, installed/known STT models, TTS voices.
    choices: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {**asdict(self), "choices": list(self.choices)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            available=bool(data["available"]),
            reason=data.get("reason"),
            state=data.get("state", "not_loaded"),
            progress=data.get("progress"),
            choices=tuple(data.get("choices", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStatus:
    """What ``/api/v1/voice`` answers: the Wyoming port, each service and the settings."""

    port: int
    settings: VoiceSettings
    wake: VoiceServiceState
    stt: VoiceServiceState
    tts: VoiceServiceState

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "port": self.port,
            "settings": self.settings.as_dict(),
            "wake": self.wake.as_dict(),
            "stt": self.stt.as_dict(),
            "tts": self.tts.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            port=int(data["port"]),
            settings=VoiceSettings.from_dict(data["settings"]),
            wake=VoiceServiceState.from_dict(data["wake"]),
            stt=VoiceServiceState.from_dict(data["stt"]),
            tts=VoiceServiceState.from_dict(data["tts"]),
        )


EVENT_VOICE = "voice"  # VoiceStatus: a setting, a model's state or a download's progress changed


POWER_PROFILES = ("eco", "balanced", "full")
# A limit set in watts rather than through a profile.
POWER_CUSTOM = "custom"


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerSettings:
    """What the eco and balanced profiles mean, in percent of each card's default limit."""

    eco_percent: float = 60.0
    balanced_percent: float = 80.0

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(**{key: data[key] for key in _POWER_SETTINGS_FIELDS if key in data})


_POWER_SETTINGS_FIELDS = tuple(PowerSettings.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuPower:
    """One GPU's power profile: what was asked for, what the card enforces, and its range.

    ``profile`` is None until one was chosen (the card runs whatever it runs). ``target_w`` is
    the limit the profile means for this card (clamped into ``min_w``..``max_w``); ``error``
    says why the card does not enforce it (no permission, the card refused), else None.
    """

    index: int
    uuid: str
    name: str
    profile: str | None = None
    target_w: float | None = None
    enforced_w: float | None = None
    default_w: float | None = None
    min_w: float | None = None
    max_w: float | None = None
    error: str | None = None
    # Machine-readable form of ``error``: "not_permitted", "not_supported", "failed".
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        return cls(**{key: data[key] for key in _GPU_POWER_FIELDS if key in data})


_GPU_POWER_FIELDS = tuple(GpuPower.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerStatus:
    """What ``/api/v1/power`` answers: the profile settings and every GPU's power state."""

    available: bool
    # Why power cannot be managed at all (no NVML, no GPU), else None.
    reason: str | None = None
    settings: PowerSettings = field(default_factory=PowerSettings)
    gpus: tuple[GpuPower, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "available": self.available,
            "reason": self.reason,
            "settings": self.settings.as_dict(),
            "gpus": [gpu.as_dict() for gpu in self.gpus],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            available=bool(data["available"]),
            reason=data.get("reason"),
            settings=PowerSettings.from_dict(data.get("settings", {})),
            gpus=tuple(GpuPower.from_dict(gpu) for gpu in data.get("gpus", ())),
        )


EVENT_POWER = "power"  # PowerStatus: a profile was set, re-applied, or failed to apply


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuNight:
    """One GPU over a span of time, from the worker's own samples."""

    index: int
    uuid: str
    name: str
    peak_temperature_c: float | None = None
    energy_wh: float | None = None
    mean_utilization_percent: float | None = None
    samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        return cls(**{key: data[key] for key in _GPU_NIGHT_FIELDS if key in data})


_GPU_NIGHT_FIELDS = tuple(GpuNight.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NightReport:
    """What ``/api/v1/report?since=`` answers: what happened on the worker since a time.

    ``tasks`` are the tasks that finished (succeeded, failed or were cancelled) in the span,
    oldest first; ``waiting`` counts tasks queued now. ``healing`` is the audit log's entries in
    the span (self-healing and user actions on containers); ``unhealthy`` names the containers
    unhealthy or exited with an error now.
    """

    since: float
    until: float
    tasks: tuple[Task, ...] = ()
    waiting: int = 0
    gpus: tuple[GpuNight, ...] = ()
    healing: tuple[AuditEntry, ...] = ()
    unhealthy: tuple[str, ...] = ()
    # False when the worker has no container engine: the last two fields then say nothing.
    containers_available: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "since": self.since,
            "until": self.until,
            "tasks": [task.as_dict() for task in self.tasks],
            "waiting": self.waiting,
            "gpus": [gpu.as_dict() for gpu in self.gpus],
            "healing": [entry.as_dict() for entry in self.healing],
            "unhealthy": list(self.unhealthy),
            "containers_available": self.containers_available,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            since=float(data["since"]),
            until=float(data["until"]),
            tasks=tuple(Task.from_dict(task) for task in data.get("tasks", ())),
            waiting=int(data.get("waiting", 0)),
            gpus=tuple(GpuNight.from_dict(gpu) for gpu in data.get("gpus", ())),
            healing=tuple(AuditEntry.from_dict(entry) for entry in data.get("healing", ())),
            unhealthy=tuple(data.get("unhealthy", ())),
            containers_available=bool(data.get("containers_available", False)),
        )


REVIEW_DECISIONS = ("accept", "reject")
# Where an asset stands: waiting for a person, or decided (by a person or by its score).
ASSET_STATES = ("pending", "accepted", "rejected", "auto_accepted")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageScore:
    """How well one image does, from CLIP embeddings.

    ``prompt_clip_score`` is CLIPScore (2.5 * max(cos(image, prompt), 0), so 0 to 2.5);
    ``character_best`` / ``character_mean`` are the cosine similarities to the character's
    closest / average reference image; each component is also given on 0-100 (``prompt``,
    ``character``, ``style``) and ``overall`` is their weighted mean with ``weights`` (the
    weights of the components that could be scored, summing to 1). ``rank`` is 1 for the best
    image of a batch.
    """

    index: int
    name: str | None = None
    overall: float
    rank: int = 1
    prompt_clip_score: float | None = None
    prompt: float | None = None
    character_best: float | None = None
    character_mean: float | None = None
    character: float | None = None
    style: float | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {**asdict(self), "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        values = {key: data[key] for key in _IMAGE_SCORE_FIELDS if key in data}
        values["weights"] = dict(data.get("weights", {}))
        return cls(**values)


_IMAGE_SCORE_FIELDS = tuple(ImageScore.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Character:
    """One character of the story: reference images (file names the worker keeps), style
    notes, and the voice profile text-to-speech will use (e.g. ``{"voice": "af_heart",
    "speed": 1.0}``)."""

    id: str
    name: str
    references: tuple[str, ...] = ()
    style_notes: str = ""
    voice: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "id": self.id,
            "name": self.name,
            "references": list(self.references),
            "style_notes": self.style_notes,
            "voice": dict(self.voice),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            references=tuple(data.get("references", ())),
            style_notes=str(data.get("style_notes", "")),
            voice=dict(data.get("voice", {})),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """A generated image the worker keeps with its score and, once decided, the decision."""

    id: int
    state: str
    character: str | None = None
    prompt: str | None = None
    name: str | None = None
    content_type: str = "image/png"
    width: int = 0
    height: int = 0
    score: ImageScore | None = None
    # The auto-accept threshold the asset was judged against (0-100).
    threshold: float | None = None
    reason: str | None = None
    created_at: float = 0.0
    decided_at: float | None = None
    decided_by: Actor | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        data = asdict(self)
        data["score"] = None if self.score is None else self.score.as_dict()
        data["decided_by"] = None if self.decided_by is None else self.decided_by.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        values = {key: data[key] for key in _ASSET_FIELDS if key in data}
        if values.get("score") is not None:
            values["score"] = ImageScore.from_dict(values["score"])
        if values.get("decided_by") is not None:
            values["decided_by"] = Actor.from_dict(values["decided_by"])
        return cls(**values)


_ASSET_FIELDS = tuple(Asset.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CharacterLearning:
    """What the decisions taught about one character (``character`` None: assets of none).

    ``threshold`` is the auto-accept threshold now in use (0-100): ``calibrated`` when enough
    decisions of both kinds placed it where it best separates accepted from rejected assets,
    else the default. ``reasons`` counts rejection reasons; ``negative_terms`` and
    ``emphasis_terms`` are the prompt adjustments the generation pipeline applies.
    """

    character: str | None
    decisions: int = 0
    accepted: int = 0
    rejected: int = 0
    acceptance_rate: float | None = None
    threshold: float = 0.0
    calibrated: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    negative_terms: tuple[str, ...] = ()
    emphasis_terms: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            **asdict(self),
            "reasons": dict(self.reasons),
            "negative_terms": list(self.negative_terms),
            "emphasis_terms": list(self.emphasis_terms),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        values = {key: data[key] for key in _LEARNING_FIELDS if key in data}
        values["reasons"] = dict(data.get("reasons", {}))
        values["negative_terms"] = tuple(data.get("negative_terms", ()))
        values["emphasis_terms"] = tuple(data.get("emphasis_terms", ()))
        return cls(**values)


_LEARNING_FIELDS = tuple(CharacterLearning.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityStatus:
    """What ``/api/v1/quality`` answers: whether scoring can run (and why not), the model, how
    many assets wait for review, and what was learnt per character."""

    available: bool
    reason: str | None = None
    model: str = ""
    pretrained: str | None = None
    device: str | None = None
    # not_loaded, loading, loaded, downloading or error (the model's state).
    state: str = "not_loaded"
    default_threshold: float = 60.0
    pending: int = 0
    learning: tuple[CharacterLearning, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {**asdict(self), "learning": [item.as_dict() for item in self.learning]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        values = {key: data[key] for key in _QUALITY_FIELDS if key in data}
        values["learning"] = tuple(
            CharacterLearning.from_dict(item) for item in data.get("learning", ())
        )
        return cls(**values)


_QUALITY_FIELDS = tuple(QualityStatus.__dataclass_fields__)

EVENT_ASSET = "asset"  # Asset: submitted (pending or auto-accepted) or decided
EVENT_QUALITY = "quality"  # QualityStatus: the model's state, the pending count or learning changed
