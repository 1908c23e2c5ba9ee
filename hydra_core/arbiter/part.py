"""The models part: the VRAM arbiter over Hydra's own models, ComfyUI, Ollama, llama.cpp,
llama-swap and vLLM."""

from __future__ import annotations

from typing import Any, Self

from yarl import URL

from ..creative.options import CreativeOptions
from ..knowledge.part import KnowledgePart
from ..quality.part import QualityPart
from ..scheduler.part import TasksPart
from ..voice.part import VoicePart
from ..worker.config import CoreOptions
from ..worker.part import BuildContext, RunningPart
from .backend import HttpBackend, ModelBackend, SharedSession
from .comfyui import ComfyUIBackend
from .inprocess import InProcessBackend, InProcessModel
from .llamacpp import LlamaCppBackend
from .llamaswap import LlamaSwapBackend
from .models import EVENT_MODEL, PRIORITY_BACKGROUND, PRIORITY_INTERACTIVE
from .ollama import OllamaBackend
from .options import ModelsOptions
from .service import ModelArbiter
from .vllm import VllmBackend

_GIB = 1024**3
# What Hydra's own models are guessed to take on a GPU before a load measured them (GB):
# Whisper by model (CTranslate2, float16), Kokoro and CLIP ViT-B-32; the embedding model runs
# on the CPU.
_WHISPER_GB = {"tiny": 0.25, "base": 0.35, "small": 1.0, "medium": 2.5, "large": 4.5}
_KOKORO_GB = 0.5
_CLIP_GB = 0.6


class ModelsPart(RunningPart[ModelArbiter]):
    """Built last: it adopts the lazy models of the parts before it and gates the task queue."""

    name = "models"
    options = ModelsOptions
    event_types = (EVENT_MODEL,)
    disabled_code = "models_disabled"
    disabled_message = "This worker arbitrates no models"
    route_modules = ("routes",)  # ``/models``

    def __init__(self, service: ModelArbiter, session: SharedSession | None = None) -> None:
        super().__init__(service)
        self._session = session

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the models option is false."""
        options = context.options(ModelsOptions)
        if not options.models:
            return None
        session = SharedSession()
        built = {part.name: part for part in context.built}
        backends: list[ModelBackend] = [InProcessBackend(_own_models(built))]
        timeout = options.models_load_timeout
        servers: tuple[tuple[type[HttpBackend], tuple[str, ...]], ...] = (
            (OllamaBackend, options.ollama_urls),
            (LlamaCppBackend, options.llamacpp_urls),
            (LlamaSwapBackend, options.llamaswap_urls),
            (VllmBackend, options.vllm_urls),
        )
        for kind, urls in servers:
            backends.extend(
                kind(_name(kind.kind, url, urls), url, session, load_timeout_s=timeout)
                for url in urls
            )
        comfyui = context.options(CreativeOptions).comfyui_urls if options.models_comfyui else ()
        backends.extend(
            ComfyUIBackend(_name("comfyui", url, comfyui), url, session) for url in comfyui
        )
        service = ModelArbiter(
            options,
            backends=backends,
            probe=context.probe,
            bus=context.bus,
            audit=context.audit,
            node=context.options(CoreOptions).name,
        )
        tasks = built.get(TasksPart.name)
        if isinstance(tasks, TasksPart):
            tasks.service.models_gate = service
        return cls(service, session)

    async def async_start(self) -> None:
        """Hook Hydra's own loaders, then look at every server."""
        for backend in self.service.backends.values():
            if isinstance(backend, InProcessBackend):
                backend.hook(self.service.async_make_room)
        await super().async_start()

    async def async_stop(self) -> None:
        """Stop, and close the connections to the servers."""
        await super().async_stop()
        if self._session is not None:
            await self._session.async_close()

    def capabilities(self) -> tuple[str, ...]:
        """The kinds of backends arbitrated."""
        return tuple(sorted({backend.kind for backend in self.service.backends.values()}))


def _name(kind: str, url: str, urls: tuple[str, ...]) -> str:
    """``ollama`` for the only Ollama; ``ollama@host:port`` where there are several."""
    if len(urls) == 1:
        return kind
    parsed = URL(url)
    return f"{kind}@{parsed.host}:{parsed.port}"


def _own_models(built: dict[str, Any]) -> list[InProcessModel]:
    """The lazily loaded models of the voice, quality and knowledge parts this worker runs."""
    models = []
    voice = built.get(VoicePart.name)
    if isinstance(voice, VoicePart):
        stt, tts = voice.service.stt, voice.service.tts
        size = next(
            (gb for prefix, gb in _WHISPER_GB.items() if stt.model.startswith(prefix)),
            _WHISPER_GB["large"],
        )
        models.append(
            InProcessModel(
                name="whisper",
                lazy=lambda: stt.lazy,
                estimated_vram_bytes=0 if stt.device == "cpu" else int(size * _GIB),
                priority=PRIORITY_INTERACTIVE,
            )
        )
        models.append(
            InProcessModel(
                name="kokoro",
                lazy=lambda: tts.lazy,
                estimated_vram_bytes=int(_KOKORO_GB * _GIB),
                priority=PRIORITY_INTERACTIVE,
            )
        )
    quality = built.get(QualityPart.name)
    if isinstance(quality, QualityPart):
        engine = quality.service.engine
        models.append(
            InProcessModel(
                name="clip",
                lazy=lambda: engine.lazy,
                estimated_vram_bytes=0 if engine.device_option == "cpu" else int(_CLIP_GB * _GIB),
                priority=PRIORITY_BACKGROUND,
            )
        )
    knowledge = built.get(KnowledgePart.name)
    if isinstance(knowledge, KnowledgePart):
        embedder = knowledge.service.embedder
        models.append(
            InProcessModel(
                name="embeddings",
                lazy=lambda: embedder.lazy,
                estimated_vram_bytes=0,
                priority=PRIORITY_BACKGROUND,
            )
        )
    return models
