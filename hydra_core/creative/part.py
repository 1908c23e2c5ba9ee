"""The creative part: chapters through ComfyUI, CLIP scoring and Kokoro into Ren'Py packages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from ..gpu.options import GpuOptions
from ..quality.part import QualityPart
from ..scheduler.handlers import TaskHandler
from ..scheduler.part import TasksPart, outputs_dir
from ..voice.options import VoiceOptions
from ..voice.part import VoicePart
from ..voice.tts import TtsEngine
from ..worker.part import BuildContext, RunningPart
from .models import EVENT_CHAPTER
from .options import CreativeOptions
from .service import CreativeService
from .tasks import AssetHandler, ChapterHandler, PackageHandler, VoiceLineHandler


class CreativePart(RunningPart[CreativeService]):
    """Takes chapters and queues their assets in the worker's task queue.

    Built after the task queue, to which it adds its four task kinds, and after the voice part,
    whose Kokoro it shares (a worker without the voice part loads its own).
    """

    name = "creative"
    options = CreativeOptions
    event_types = (EVENT_CHAPTER,)
    disabled_code = "creative_disabled"
    disabled_message = "This worker takes no chapters"
    route_modules = ("routes",)  # ``/chapters``

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the creative option is false."""
        options = context.options(CreativeOptions)
        if not options.creative:
            return None
        built = {part.name: part for part in context.built}
        tasks = built.get(TasksPart.name)
        assert isinstance(tasks, TasksPart), "the creative part needs the task queue"
        quality = built.get(QualityPart.name)
        voice = built.get(VoicePart.name)
        if isinstance(voice, VoicePart):
            tts, owns_tts = voice.service.tts, False
        else:
            voice_options = context.options(VoiceOptions)
            tts = TtsEngine(
                context.models_dir,
                language=voice_options.tts_language,
                offline=voice_options.voice_offline,
                idle_unload_s=voice_options.model_idle_unload,
                warmup=False,
            )
            owns_tts = True
        service = CreativeService(
            options,
            data_dir=context.data_dir,
            outputs_dir=outputs_dir(context),
            scheduler=tasks.service,
            quality=quality.service if isinstance(quality, QualityPart) else None,
            tts=tts,
            bus=context.bus,
            owns_tts=owns_tts,
        )
        handlers: list[TaskHandler] = [
            ChapterHandler(service),
            AssetHandler(service, needs_gpu=context.options(GpuOptions).gpu_backend != "none"),
            VoiceLineHandler(service),
            PackageHandler(service),
        ]
        tasks.service.add_handlers(handlers)
        if service.quality is not None:
            service.quality.on_decided.append(service.async_decided)
        tasks.service.on_stopped.append(service.async_close)
        return cls(service)

    def task_handlers(self) -> Sequence[TaskHandler]:
        """None to hand over: the part adds its kinds to the queue itself when built."""
        return ()

    def capabilities(self) -> tuple[str, ...]:
        """Chapters, and whether a ComfyUI server is configured for their images."""
        return ("chapters", "comfyui") if self.service.options.comfyui_urls else ("chapters",)
