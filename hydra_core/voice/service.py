"""The worker's voice services: the engines, their settings, the Wyoming server, its announcement.

The engines load their models on first use (one lock per model) and unload them after an idle
time. Inference runs on the service's own threads: wake word and speech-to-text on a pool of
``voice_threads`` (one per core by default), text-to-speech on one thread, since espeak-ng (under
the phonemizer) is not thread-safe and ONNX Runtime already spreads one synthesis over every core;
a second synthesis at once would finish no sooner. The event loop's default executor, which the
worker's API uses, never waits behind a model. A service whose models are missing is not
advertised, and the status says why, so the server keeps serving the others. Settings changed
from Home Assistant (wake threshold, speech-to-text model, voice) are kept in
``DATA_DIR/voice.json`` and win over the worker's options on the next start. The wake word's
second stage (``wake_verify``) uses Whisper tiny.en from the models folder, downloaded in the
background when missing (until it is there, firings are announced unverified).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import replace
import logging
import math
import os
from pathlib import Path
import re
import time
from typing import ParamSpec, TypeVar

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)

from .. import __version__
from ..settings_file import load_typed_settings, save_settings
from ..timings import StageTimings
from ..wire import dump
from .announce import ZeroconfAnnouncer
from .commands import CommandMatcher
from .download import KOKORO_MODEL_FILE, DownloadError, download_whisper
from .frames import ClientError
from .models import VERIFY_MODES, VoiceChanges, VoiceServiceState, VoiceSettings, VoiceStatus
from .options import VoiceOptions
from .server import WyomingServer
from .stt import SttEngine, SttError
from .tts import TtsEngine, TtsError
from .wake import WakeEngine, WakeModelError, WakeModelInfo, WakeStream
from .wake_verify import VERIFY_WHISPER_MODEL, WhisperWakeVerifier

_LOGGER = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

SETTINGS_FILE = "voice.json"
# Progress events at most this often, so a download does not flood Home Assistant.
PROGRESS_INTERVAL_S = 1.0
# The text-to-speech model as Home Assistant names it: its file, less the suffix.
KOKORO_MODEL = KOKORO_MODEL_FILE.removesuffix(".onnx")
_OPEN_WAKE_WORD = Attribution(name="openWakeWord", url="https://github.com/dscripka/openWakeWord")
_WHISPER = Attribution(name="faster-whisper", url="https://github.com/SYSTRAN/faster-whisper")
_KOKORO = Attribution(name="Kokoro-82M", url="https://huggingface.co/hexgrad/Kokoro-82M")
# Languages Whisper's multilingual models speak (faster_whisper.tokenizer._LANGUAGE_CODES); listed
# here so that describing the server never imports faster-whisper.
# fmt: off
WHISPER_LANGUAGES = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
    "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
    "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "yue", "zh",
)
# fmt: on


class VoiceSettingsError(ValueError):
    """A setting Home Assistant asked for cannot be used; the message says why."""


class VoiceService:
    """Wake word, speech-to-text and text-to-speech, served over Wyoming."""

    def __init__(
        self,
        options: VoiceOptions,
        *,
        host: str,
        data_dir: Path,
        models_dir: Path,
        announce_name: str | None = None,
        on_change: Callable[[VoiceStatus], None] | None = None,
    ) -> None:
        """``announce_name``: the name to announce with zeroconf; None announces nothing."""
        self._options = options
        self._defaults = options.settings()
        self._settings_path = data_dir / SETTINGS_FILE
        self._announce_name = announce_name
        self._on_change = on_change
        self._settings = _load_settings(self._settings_path, self._defaults)
        self._progress: dict[str, float | None] = {"stt": None, "tts": None}
        self._last_progress_event = 0.0
        self._last_status: VoiceStatus | None = None
        self._executor = ThreadPoolExecutor(
            options.voice_threads or os.cpu_count() or 1, thread_name_prefix="hydra-voice"
        )
        self._tts_executor = ThreadPoolExecutor(1, thread_name_prefix="hydra-tts")
        self._verifier = WhisperWakeVerifier(
            models_dir / "whisper" / VERIFY_WHISPER_MODEL,
            threshold=self._settings.wake_verify_threshold,
        )
        self._verifier_download: asyncio.Task[None] | None = None
        self._running = False
        self.wake = WakeEngine(
            options.wake_models_dir or data_dir / "wake_words",
            threshold=self._settings.wake_threshold,
            trigger_level=self._settings.wake_trigger_level,
            refractory_s=options.wake_refractory,
            verifier=self._wake_verifier(self._settings),
        )
        commands = CommandMatcher.from_sentences()
        self.stt = SttEngine(
            models_dir,
            model=self._settings.stt_model,
            device=options.stt_device,
            compute_type=options.stt_compute_type,
            language=options.stt_language,
            beam_size=options.stt_beam_size,
            vad=options.stt_vad,
            offline=options.voice_offline,
            idle_unload_s=options.model_idle_unload,
            on_progress=self._progress_callback("stt"),
            executor=self._executor,
            commands=commands if options.stt_commands else None,
            prompt=commands.prompt(_words(options.stt_prompt_words))
            if options.stt_command_prompt
            else None,
            wake_phrases=self._wake_phrases(),
        )
        self.tts = TtsEngine(
            models_dir,
            voice=self._settings.tts_voice,
            speed=self._settings.tts_speed,
            language=options.tts_language,
            offline=options.voice_offline,
            idle_unload_s=options.model_idle_unload,
            on_progress=self._progress_callback("tts"),
            executor=self._tts_executor,
            threads=options.tts_threads,
        )
        self._server = WyomingServer(
            self,
            host,
            options.voice_port,
            max_connections=options.voice_max_connections,
            idle_timeout=options.voice_idle_timeout,
        )
        self._announcer: ZeroconfAnnouncer | None = None
        # stt: the end of speech to its transcript; tts_first_audio: a reply's text to its
        # first audio (see server.py and synthesize).
        self.timings = StageTimings()

    @property
    def port(self) -> int:
        """The Wyoming server's port."""
        return self._server.port

    @property
    def stt_end_of_speech(self) -> float:
        """Seconds of quiet after speech that end a command (0: the client's audio-stop)."""
        return self._options.stt_end_of_speech

    @property
    def tts_rate(self) -> int:
        """Sample rate of synthesized speech."""
        return TtsEngine.SAMPLE_RATE

    async def async_start(self) -> None:
        """Listen for Wyoming clients; models still load only when first used."""
        await self._server.start()
        _LOGGER.info("Wyoming voice server on port %s", self.port)
        self._running = True
        self._fetch_verifier_model()
        if self._announce_name is not None:
            self._announcer = ZeroconfAnnouncer(self._announce_name, self.port)
            await self._announcer.start()

    async def async_stop(self) -> None:
        """Stop serving and unload every model."""
        self._running = False
        if self._verifier_download is not None:
            self._verifier_download.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._verifier_download
            self._verifier_download = None
        if self._announcer is not None:
            await self._announcer.stop()
            self._announcer = None
        await self._server.stop()
        await self.stt.close()
        await self.tts.close()
        # The models are closed (their running work ended), so joining the threads is quick;
        # not joining them left a thread alive after the stop, now and then, on a busy machine.
        for executor in (self._executor, self._tts_executor):
            executor.shutdown(wait=True, cancel_futures=True)

    async def run_inference(
        self, func: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """Run blocking model work on the voice threads (wake word streams use this)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: func(*args, **kwargs)
        )

    def _wake_phrases(self) -> list[str]:
        """The wake phrases speech-to-text removes from the start of a transcript, "Hey Jarvis"
        first (a satellite's pre-roll sends a command said in one breath with it whole)."""
        phrases = self.wake.phrases()
        return sorted(phrases, key=lambda phrase: phrase != "Hey Jarvis")

    def _wake_verifier(self, settings: VoiceSettings) -> WhisperWakeVerifier | None:
        return self._verifier if settings.wake_verify == "whisper" else None

    def _fetch_verifier_model(self) -> None:
        """Download the verifier's Whisper model in the background if it is needed and missing."""
        if (
            self.wake.verifier is None
            or self._options.voice_offline
            or self._verifier.unavailable_reason() is None
            or (self._verifier_download is not None and not self._verifier_download.done())
        ):
            return
        self._verifier_download = asyncio.create_task(self._download_verifier_model())

    async def _download_verifier_model(self) -> None:
        folder = self._verifier.folder
        _LOGGER.info("Downloading Whisper %s for wake word verification", VERIFY_WHISPER_MODEL)
        try:
            if self.stt.model == VERIFY_WHISPER_MODEL:
                # The same folder: let speech-to-text fetch it (and load it) under its own lock.
                await self.stt.load()
            else:
                folder.parent.mkdir(parents=True, exist_ok=True)
                await download_whisper(
                    VERIFY_WHISPER_MODEL, folder, base_url=self.stt.download_base_url
                )
        except (SttError, DownloadError, OSError) as err:
            _LOGGER.warning(
                "Wake word verification cannot download Whisper %s (firings are announced"
                " unverified): %s",
                VERIFY_WHISPER_MODEL,
                err,
            )

    # What the server offers ------------------------------------------------------------------

    def _wake_models(self) -> tuple[list[WakeModelInfo], str | None]:
        """The wake word models (the custom folder is read anew), or why there are none."""
        try:
            models = self.wake.models()
        except (ImportError, OSError, ValueError) as err:
            return [], f"Wake word detection is unavailable: {err}"
        return models, None if models else "No wake word models were found"

    def wake_unavailable(self) -> str | None:
        """Why wake word detection cannot run, or None."""
        return self._wake_models()[1]

    def stt_unavailable(self) -> str | None:
        """Why speech-to-text cannot run, or None."""
        return self.stt.unavailable_reason()

    def tts_unavailable(self) -> str | None:
        """Why text-to-speech cannot run, or None."""
        return self.tts.unavailable_reason()

    def info(self) -> Info:
        """What a Wyoming ``describe`` answers: only the services that can run now."""
        info = Info()
        wake_models, wake_reason = self._wake_models()
        if wake_reason is None:
            info.wake.append(self._wake_program(wake_models))
        if self.stt_unavailable() is None:
            info.asr.append(self._asr_program())
        if self.tts_unavailable() is None:
            info.tts.append(self._tts_program())
        return info

    def _wake_program(self, models: list[WakeModelInfo]) -> WakeProgram:
        return WakeProgram(
            name="hydra-openwakeword",
            description="openWakeWord on Hydra",
            attribution=_OPEN_WAKE_WORD,
            installed=True,
            version=__version__,
            models=[
                WakeModel(
                    name=model.name,
                    description=model.phrase,
                    phrase=model.phrase,
                    attribution=_OPEN_WAKE_WORD,
                    installed=True,
                    version=None,
                    languages=["en"],
                )
                for model in models
            ],
        )

    def _asr_program(self) -> AsrProgram:
        model = self.stt.model
        if self._options.stt_language:
            languages = [self._options.stt_language]
        elif model.endswith(".en"):
            languages = ["en"]
        else:
            languages = list(WHISPER_LANGUAGES)
        return AsrProgram(
            name="hydra-faster-whisper",
            description="faster-whisper on Hydra",
            attribution=_WHISPER,
            installed=True,
            version=__version__,
            models=[
                AsrModel(
                    name=model,
                    description=f"Whisper {model}",
                    attribution=_WHISPER,
                    installed=True,
                    version=None,
                    languages=languages,
                )
            ],
        )

    def _tts_program(self) -> TtsProgram:
        # Every voice speaks the language the phonemizer is set to; the voice is the timbre.
        languages = [self._options.tts_language]
        return TtsProgram(
            name="hydra-kokoro",
            description="Kokoro on Hydra",
            attribution=_KOKORO,
            installed=True,
            version=__version__,
            supports_synthesize_streaming=True,
            voices=[
                TtsVoice(
                    name=voice,
                    description=voice,
                    attribution=_KOKORO,
                    installed=True,
                    version=None,
                    languages=languages,
                )
                for voice in self.tts.voices()
            ],
        )

    # The work ---------------------------------------------------------------------------------

    def open_wake_stream(self, names: Sequence[str] | None) -> WakeStream:
        """A detection stream for one client; unknown names are the client's error."""
        try:
            return self.wake.open_stream(names)
        except WakeModelError as err:
            raise ClientError("unknown_wake_word", str(err)) from err

    async def transcribe(self, audio: bytes, *, language: str | None) -> str:
        """Speech to text; a model that cannot load is the client's error event."""
        try:
            return await self.stt.transcribe(audio, language=language)
        except SttError as err:
            raise ClientError("stt_failed", str(err)) from err
        finally:
            self._notify()

    async def synthesize(
        self, text: str, *, voice: str | None, said: int | None = 0
    ) -> AsyncIterator[bytes]:
        """Text to speech, a sentence at a time, the first cut at its first clause
        (``said``: what was said before on the same stream, see ``TtsEngine.synthesize``)."""
        started = time.perf_counter() if said == 0 else None
        try:
            async for pcm in self.tts.synthesize(text, voice=voice, said=said):
                if started is not None:
                    self.timings.record("tts_first_audio", time.perf_counter() - started)
                    started = None
                yield pcm
        except TtsError as err:
            raise ClientError("tts_failed", str(err)) from err
        finally:
            self._notify()

    # Settings and status ----------------------------------------------------------------------

    @property
    def settings(self) -> VoiceSettings:
        """The settings in force."""
        return self._settings

    def status(self) -> VoiceStatus:
        """Each service, whether it is offered, and why not."""
        wake_models, wake_reason = self._wake_models()
        return VoiceStatus(
            port=self.port,
            settings=self._settings,
            wake=VoiceServiceState(
                available=wake_reason is None,
                reason=wake_reason,
                state="loaded" if wake_reason is None else "error",
                choices=tuple(model.name for model in wake_models),
            ),
            stt=self._engine_state(
                self.stt_unavailable(),
                self.stt.state,
                "stt",
                _stt_choices(self.stt),
                model=self.stt.model,
                installed=tuple(self.stt.installed_models()),
            ),
            tts=self._engine_state(
                self.tts_unavailable(),
                self.tts.state,
                "tts",
                tuple(self.tts.voices()),
                model=KOKORO_MODEL,
                installed=(KOKORO_MODEL,) if self.tts.model_path and self.tts.voices_path else (),
            ),
        )

    def _engine_state(
        self,
        reason: str | None,
        state: str,
        key: str,
        choices: tuple[str, ...],
        *,
        model: str,
        installed: tuple[str, ...],
    ) -> VoiceServiceState:
        progress = self._progress[key]
        return VoiceServiceState(
            available=reason is None,
            reason=reason,
            state="downloading" if progress is not None else state,
            progress=progress,
            choices=choices,
            model=model,
            installed=installed,
        )

    def update(self, changes: VoiceChanges) -> VoiceStatus:
        """Change settings; every value is checked before any is applied."""
        unknown = sorted(set(changes) - set(VoiceSettings.__dataclass_fields__))
        if unknown:
            raise VoiceSettingsError(f"Unknown setting(s): {', '.join(unknown)}")
        new = replace(self._settings, **changes)
        _check_settings(new, self)
        self.wake.threshold = new.wake_threshold
        self.wake.trigger_level = new.wake_trigger_level
        self._verifier.threshold = new.wake_verify_threshold
        self.wake.verifier = self._wake_verifier(new)
        self.stt.model = new.stt_model
        self.tts.voice = new.tts_voice
        self.tts.speed = new.tts_speed
        self._settings = new
        if self._running:
            self._fetch_verifier_model()
        _save_settings(self._settings_path, self._defaults, new)
        self._notify()
        return self.status()

    def _progress_callback(self, key: str) -> Callable[[str, float], None]:
        def progress(_name: str, fraction: float) -> None:
            self._progress[key] = None if fraction >= 1 else fraction
            now = time.monotonic()
            if fraction >= 1 or now - self._last_progress_event >= PROGRESS_INTERVAL_S:
                self._last_progress_event = now
                self._notify()

        return progress

    def _notify(self) -> None:
        """Tell the listener the status, when it changed (every request ends with a look)."""
        if self._on_change is None:
            return
        status = self.status()
        if status != self._last_status:
            self._last_status = status
            self._on_change(status)


# A model or voice name: it becomes a folder or file name under the models folder, so never a
# path of its own.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _words(text: str | None) -> list[str]:
    """The comma-separated names of an option."""
    return [word for part in (text or "").split(",") if (word := part.strip())]


def _stt_choices(stt: SttEngine) -> tuple[str, ...]:
    installed = stt.installed_models()
    if stt.unavailable_reason() is not None and not installed:
        return ()
    # Offline, only what is installed can be chosen; online, any known model downloads.
    names = installed if stt.offline else [*installed, *stt.KNOWN_MODELS]
    return tuple(dict.fromkeys(names))


def _check_settings(settings: VoiceSettings, service: VoiceService) -> None:
    threshold = settings.wake_threshold
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not math.isfinite(threshold)
        or not 0.01 <= threshold <= 0.99
    ):
        raise VoiceSettingsError("wake_threshold must be a number between 0.01 and 0.99")
    level = settings.wake_trigger_level
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
        raise VoiceSettingsError("wake_trigger_level must be a whole number between 1 and 10")
    if settings.wake_verify not in VERIFY_MODES:
        raise VoiceSettingsError(f"wake_verify must be one of {', '.join(VERIFY_MODES)}")
    verify_threshold = settings.wake_verify_threshold
    if (
        isinstance(verify_threshold, bool)
        or not isinstance(verify_threshold, (int, float))
        or not math.isfinite(verify_threshold)
        or not 0.01 <= verify_threshold <= 0.99
    ):
        raise VoiceSettingsError("wake_verify_threshold must be a number between 0.01 and 0.99")
    speed = settings.tts_speed
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.5 <= speed <= 2.0:
        raise VoiceSettingsError("tts_speed must be a number between 0.5 and 2.0")
    if not isinstance(settings.stt_model, str) or not MODEL_NAME.fullmatch(settings.stt_model):
        raise VoiceSettingsError(
            "stt_model must be a model name (letters, digits, '.', '_', '-'), not a path"
        )
    choices = _stt_choices(service.stt)
    if choices and settings.stt_model not in choices:
        raise VoiceSettingsError(
            f"Unknown speech-to-text model {settings.stt_model!r}; "
            f"choose one of {', '.join(choices)}"
        )
    voice = settings.tts_voice
    if voice is not None:
        voices = service.tts.voices()
        if (
            not isinstance(voice, str)
            or not MODEL_NAME.fullmatch(voice)
            or (voices and voice not in voices)
        ):
            raise VoiceSettingsError(
                f"Unknown voice {voice!r}; choose one of {', '.join(voices) or 'none installed'}"
            )


def _load_settings(path: Path, defaults: VoiceSettings) -> VoiceSettings:
    return load_typed_settings(path, defaults)


def _save_settings(path: Path, defaults: VoiceSettings, settings: VoiceSettings) -> None:
    """Only what differs from the worker's options, so a changed option still takes effect."""
    save_settings(
        path,
        {key: value for key, value in dump(settings).items() if value != getattr(defaults, key)},
    )
