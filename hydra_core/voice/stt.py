"""Speech-to-text with faster-whisper (CTranslate2), loaded on first use.

Models live in ``<models_dir>/whisper/<name>/`` (model.bin, config.json, tokenizer.json,
vocabulary.txt or .json). A missing known model is downloaded on first use unless offline mode
is on. faster-whisper and CTranslate2 are imported when the model loads, never at import.

Hydra's commands land despite mishearing, for English only: a transcript close to one of
Hydra's sentences is handed on as that sentence (``commands.CommandMatcher``), so Home
Assistant's default agent, which matches exactly, runs Hydra's intent. Whisper may also get a
prompt of the commands (``initial_prompt``: it reads it as speech that came before and leans
toward its words). Measured on the commands set (``benchmarks/commands.py``), the prompt lifted
tiny.en from 69 % to 81 % of commands heard word for word, but made base write a command for a
request to play jazz and for a noisy room: a wrong action, so the service leaves it off unless
``stt_command_prompt`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
import logging
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .commands import CommandMatcher
from .download import HUGGINGFACE_URL, WHISPER_REPOS, DownloadError, download_whisper
from .loader import LazyModel, ModelClosedError, ModelState
from .wake_phrase import strip_wake_phrase

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_LOGGER = logging.getLogger(__name__)

#: Below this peak (about -60 dBFS) audio is treated as silence and not transcribed.
SILENCE_PEAK = 32


def _english(language: str) -> bool:
    """ "en", "en-US", "en_GB" and the like."""
    return re.split(r"[-_]", language, maxsplit=1)[0].lower() == "en"


class SttError(Exception):
    """Speech could not be transcribed (model unavailable, download or load failed)."""


def _complete(folder: Path) -> bool:
    return (
        (folder / "model.bin").is_file()
        and (folder / "config.json").is_file()
        and (folder / "tokenizer.json").is_file()
        and ((folder / "vocabulary.txt").is_file() or (folder / "vocabulary.json").is_file())
    )


def pcm_to_float(audio: bytes) -> np.ndarray:
    """16-bit little-endian PCM to float32 in [-1, 1) (a trailing odd byte is dropped)."""
    usable = len(audio) - len(audio) % 2
    return np.frombuffer(audio[:usable], dtype="<i2").astype(np.float32) / 32768.0


class SttEngine:
    """Whisper speech-to-text over 16 kHz 16-bit mono PCM."""

    SAMPLE_RATE = 16000
    SAMPLE_WIDTH = 2
    CHANNELS = 1
    KNOWN_MODELS: tuple[str, ...] = tuple(WHISPER_REPOS)

    def __init__(
        self,
        models_dir: Path,
        *,
        model: str = "tiny.en",
        device: str = "auto",
        compute_type: str = "auto",
        language: str | None = None,
        beam_size: int = 1,
        vad: bool = False,
        offline: bool = False,
        idle_unload_s: float = 300.0,
        download_base_url: str = HUGGINGFACE_URL,
        on_progress: Callable[[str, float], None] | None = None,
        executor: Executor | None = None,
        commands: CommandMatcher | None = None,
        prompt: str | None = None,
        wake_phrases: Sequence[str] = (),
    ) -> None:
        """``commands``: English transcripts near one of these sentences become that sentence;
        ``prompt``: text Whisper reads as if said before the speech (it biases the words it
        picks toward these), used for English only; ``wake_phrases``: a transcript that starts
        with one ("Hey Jarvis, what's ...", a command said in one breath with the wake word,
        which a satellite's pre-roll sends whole) comes back without it."""
        self.executor = executor
        self.commands = commands
        self.prompt = prompt
        self.wake_phrases = tuple(wake_phrases)
        self.models_dir = Path(models_dir)
        self.device = device
        self.compute_type = compute_type
        self.language = language
        self.beam_size = beam_size
        self.vad = vad
        self.offline = offline
        self.idle_unload_s = idle_unload_s
        self.download_base_url = download_base_url
        self.on_progress = on_progress
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._model_name = model
        self._lazy = self._new_lazy(model)
        #: The device and compute type the loaded model runs with (after "auto").
        self.loaded_device: str | None = None
        self.loaded_compute_type: str | None = None

    @property
    def whisper_dir(self) -> Path:
        """The folder holding one sub-folder per Whisper model."""
        return self.models_dir / "whisper"

    @property
    def model(self) -> str:
        """The Whisper model name; setting another one unloads the current model."""
        return self._model_name

    @model.setter
    def model(self, name: str) -> None:
        if name == self._model_name:
            return
        old = self._lazy
        self._model_name = name
        self._lazy = self._new_lazy(name)
        self._close_soon(old)

    @property
    def lazy(self) -> LazyModel[WhisperModel]:
        """The current model's loader (state, load count, last use)."""
        return self._lazy

    @property
    def state(self) -> ModelState:
        """not_loaded, loading, loaded or error."""
        return self._lazy.state

    @property
    def error(self) -> str | None:
        """Why the last load failed."""
        return self._lazy.error

    def installed_models(self) -> list[str]:
        """The complete models in ``<models_dir>/whisper/``."""
        if not self.whisper_dir.is_dir():
            return []
        return sorted(
            item.name
            for item in self.whisper_dir.iterdir()
            if item.is_dir() and not item.name.startswith(".") and _complete(item)
        )

    def unavailable_reason(self) -> str | None:
        """None if the model can be used now (installed or downloadable), else why not."""
        name = self._model_name
        if _complete(self.whisper_dir / name):
            return None
        if self.offline:
            return f"Whisper model {name!r} is not in {self.whisper_dir} and offline mode is on"
        if name not in WHISPER_REPOS:
            return (
                f"Whisper model {name!r} is not in {self.whisper_dir} and is not one that can "
                f"be downloaded (known: {', '.join(self.KNOWN_MODELS)})"
            )
        return None

    async def load(self) -> None:
        """Load (downloading first if needed) the current model now."""
        await self._use(lambda _: None)

    async def transcribe(self, audio: bytes, *, language: str | None = None) -> str:
        """Transcribe 16 kHz s16le mono speech; silence gives "". English close to one of
        ``commands``' sentences comes back as that sentence."""
        samples = pcm_to_float(audio)
        if samples.size == 0 or np.abs(samples).max() * 32768.0 < SILENCE_PEAK:
            return ""
        lang = language or self.language
        heard: tuple[str, str] = await self._use(
            lambda model: self._transcribe_sync(model, samples, lang)
        )
        text, heard_language = heard
        for phrase in self.wake_phrases:
            if (stripped := strip_wake_phrase(text, phrase)) != text:
                text = stripped
                break
        if self.commands is not None and _english(heard_language):
            return self.commands.rewrite(text)
        return text

    def _transcribe_sync(
        self, model: WhisperModel, samples: np.ndarray, lang: str | None
    ) -> tuple[str, str]:
        """(text, language): the language asked for, else the one Whisper heard."""
        english = _english(lang) if lang else not model.model.is_multilingual
        segments, info = model.transcribe(
            samples,
            language=lang,
            beam_size=self.beam_size,
            vad_filter=self.vad,
            condition_on_previous_text=False,
            without_timestamps=True,
            # A multilingual model must not be nudged toward English before it has heard it.
            initial_prompt=self.prompt if english else None,
        )
        text = " ".join(text for segment in segments if (text := segment.text.strip()))
        return text, lang or info.language

    async def _use(self, func: Callable[[WhisperModel], Any]) -> Any:
        if self._closed:
            raise SttError("The speech-to-text engine is closed")
        lazy, name = self._lazy, self._model_name
        try:
            return await lazy.run(func)
        except SttError:
            raise
        except ModelClosedError:
            # The model was switched while this request waited: use the new one.
            return await self._use(func)
        except DownloadError as err:
            raise SttError(f"Could not download Whisper model {name!r}: {err}") from err
        except Exception as err:
            if lazy.state is ModelState.ERROR:
                raise SttError(f"Could not load Whisper model {name!r}: {err}") from err
            raise SttError(f"Transcription failed: {err}") from err

    def _new_lazy(self, name: str) -> LazyModel[WhisperModel]:
        folder = self.whisper_dir / name

        async def prepare() -> None:
            if _complete(folder):
                return
            if reason := self.unavailable_reason():
                raise SttError(reason)
            _LOGGER.info("Downloading Whisper model %s into %s", name, folder)
            folder.parent.mkdir(parents=True, exist_ok=True)
            await download_whisper(
                name, folder, base_url=self.download_base_url, on_progress=self.on_progress
            )

        def load() -> WhisperModel:
            import ctranslate2  # noqa: PLC0415
            from faster_whisper import WhisperModel  # noqa: PLC0415
            import tqdm  # noqa: PLC0415

            # faster-whisper makes a (disabled) progress bar per call, and tqdm starts a
            # monitor thread for the first one: no use in a service, so none is started.
            tqdm.tqdm.monitor_interval = 0

            device = self.device
            if device == "auto":
                device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
            compute_type = self.compute_type
            if compute_type == "auto":
                compute_type = "float16" if device == "cuda" else "int8"
            whisper = WhisperModel(str(folder), device=device, compute_type=compute_type)
            self.loaded_device, self.loaded_compute_type = device, compute_type
            return whisper

        return LazyModel(
            f"Whisper {name}",
            load,
            prepare=prepare,
            idle_unload_s=self.idle_unload_s,
            executor=self.executor,
        )

    def _close_soon(self, lazy: LazyModel[WhisperModel]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: nothing can be loaded or in use
        task = loop.create_task(lazy.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Unload the model (after running transcriptions) and refuse further work."""
        self._closed = True
        await self._lazy.close()
        while self._closing:
            await next(iter(self._closing))
