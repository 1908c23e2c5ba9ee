"""The voice part's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import option
from .models import DEFAULT_VERIFY_MODE, DEFAULT_VERIFY_THRESHOLD, VERIFY_MODES, VoiceSettings

DEFAULT_VOICE_PORT = 10300


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceOptions:
    """Wake word, speech-to-text and text-to-speech over Wyoming."""

    voice: bool = option(
        True, help="serve wake word, speech-to-text and text-to-speech", addon=True
    )
    voice_port: int = option(
        DEFAULT_VOICE_PORT, help="TCP port of the Wyoming voice server (on host)", low=0, high=65535
    )
    voice_max_connections: int = option(
        32,
        help="Wyoming connections served at once; more are refused with an error event",
        low=1,
        high=1024,
    )
    voice_idle_timeout: float = option(
        30.0,
        help="seconds a Wyoming connection may take to send its next event before it is closed",
        low=1,
        high=3600,
    )
    voice_threads: int = option(
        0,
        help="threads for wake word and speech-to-text inference, apart from the API's;"
        " 0 is one per CPU core (text-to-speech has a thread of its own)",
        low=0,
        high=64,
    )
    voice_zeroconf: bool = option(
        True, help="announce the voice server as _wyoming._tcp so Home Assistant discovers it"
    )
    voice_offline: bool = option(
        False,
        help="never download models; a missing model makes its service unavailable (the status"
        " says which folder)",
        addon=True,
    )
    model_idle_unload: float = option(
        600.0,
        help="seconds a speech model may sit unused before it is unloaded; 0 keeps it",
        low=0,
        high=86400,
    )
    wake_threshold: float = option(
        0.5,
        help="wake word score that counts as a detection (also a number entity)",
        low=0.01,
        high=0.99,
        addon=True,
    )
    wake_trigger_level: int = option(
        1, help="consecutive frames above the threshold before the wake word fires", low=1, high=10
    )
    wake_verify: str = option(
        DEFAULT_VERIFY_MODE,
        help="second-stage check of each wake word firing before it is announced: whisper weighs"
        " the phrase against its sound-alikes with Whisper tiny.en (downloaded into the models"
        " folder; costs CPU only when the model fires), off announces every firing (also a"
        " select entity)",
        choices=VERIFY_MODES,
    )
    wake_verify_threshold: float = option(
        DEFAULT_VERIFY_THRESHOLD,
        help="share of the probability the wake phrase needs against its sound-alikes for a"
        " firing to be announced (also a number entity)",
        low=0.01,
        high=0.99,
    )
    wake_refractory: float = option(
        2.0,
        help="seconds a wake word stays quiet after it fired, so one utterance fires once",
        low=0,
        high=30,
    )
    wake_models_dir: Path | None = option(
        None,
        help="custom openWakeWord *.tflite models, offered beside the built-in ones",
        default_text="DATA_DIR/wake_words",
    )
    stt_model: str = option(
        "base.en",
        help="faster-whisper model: tiny, tiny.en, base, base.en, small, small.en, medium,"
        " medium.en, large-v3, distil-large-v3, turbo (also a select entity)",
        addon=True,
    )
    stt_language: str | None = option(
        None, help="language of speech, e.g. en", default_text="detect"
    )
    stt_device: str = option(
        "auto",
        help="where speech-to-text runs: auto is CUDA when CTranslate2 sees a GPU, else CPU",
        choices=("auto", "cpu", "cuda"),
    )
    stt_compute_type: str = option(
        "auto", help="CTranslate2 compute type; auto is float16 on CUDA, int8 on CPU"
    )
    stt_beam_size: int = option(
        2,
        help="beam size of the decoder (for a short command 2 costs what 1 does and heard more"
        " commands right: benchmarks/stt_wait)",
        low=1,
        high=10,
    )
    stt_vad: bool = option(False, help="let faster-whisper skip silence with its VAD")
    stt_end_of_speech: float = option(
        0.5,
        help="seconds of quiet after speech that end a spoken command, answered before Home"
        " Assistant's own end-of-speech detection would (it hears the end some 0.5 s late);"
        " a longer pause mid-command ends it too; 0 waits for Home Assistant",
        low=0,
        high=5,
    )
    stt_commands: bool = option(
        True,
        help="pass on an English transcript that is close to one of Hydra's sentences (a"
        ' misheard command, such as "Paul\'s autonomous work") as that sentence, so Home'
        " Assistant runs Hydra's intent; other speech is passed on as heard",
    )
    stt_command_prompt: bool = option(
        False,
        help="give Whisper Hydra's commands as a prompt, so it leans toward their words"
        " (English only); tiny.en hears more commands with it, but base sometimes wrote a"
        " command for other speech or a noisy room",
    )
    stt_prompt_words: str | None = option(
        None,
        help="names Whisper should know, comma-separated (rooms, devices, research topics);"
        " added to the prompt",
        default_text="none",
    )
    tts_voice: str | None = option(
        None,
        help="Kokoro voice (also a select entity)",
        default_text="af_heart, else the first voice",
        addon=True,
    )
    tts_speed: float = option(1.0, help="speaking rate", low=0.5, high=2.0)
    tts_language: str = option("en-us", help="language Kokoro speaks")
    tts_threads: int = option(
        0,
        help="CPU threads Kokoro's ONNX Runtime session uses; 0 is one per core",
        low=0,
        high=64,
    )

    def settings(self) -> VoiceSettings:
        """The settings Home Assistant may change later, as these options start them."""
        return VoiceSettings(
            wake_threshold=self.wake_threshold,
            wake_trigger_level=self.wake_trigger_level,
            wake_verify=self.wake_verify,
            wake_verify_threshold=self.wake_verify_threshold,
            stt_model=self.stt_model,
            tts_voice=self.tts_voice,
            tts_speed=self.tts_speed,
        )
