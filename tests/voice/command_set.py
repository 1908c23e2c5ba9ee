"""The commands set: Hydra's sentences and ordinary speech, spoken by several voices.

Kept as definitions (texts, voices, speeds); the audio is rendered deterministically when a test
or benchmark first needs it, and cached in ``$HYDRA_SPEECH_CACHE`` (default
``~/.cache/hydra-speech``) under a hash of what made it, so no audio is committed:

- ``COMMANDS``: every template of ``hydra_core/voice/sentences/en.yaml`` said once the way a
  person would (realistic topics and facts in the slots), with the intent it must run and the
  slot words it must keep;
- ``PARAPHRASES``: the same intents in other phrasings the templates allow;
- ``NEGATIVES``: Home Assistant's own commands and ordinary speech, which must run no Hydra
  intent (the words of Hydra's commands occur in some: "stop the music", "how hot is the oven");
- ``NOISES``: rooms with nobody speaking (seeded noise), which must run nothing either;
- ``VOICES``: Kokoro-82M voices (``kokoro:<name>``, the packaged test weights) and espeak-ng
  voices (``espeak:<name>``), each clip at its voice's usual speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from tests.voice.speech import espeak_clip
from tests.voice.weights import VoiceWeights, pcm16, resample


@dataclass(frozen=True)
class Said:
    """A text to say; ``intent`` None for speech that must run no Hydra intent."""

    text: str
    intent: str | None = None
    slots: tuple[tuple[str, str], ...] = ()


def _c(text: str, intent: str, **slots: str) -> Said:
    return Said(text, intent, tuple(slots.items()))


# One per template of en.yaml, in its order (tests check that each template is covered).
COMMANDS = (
    _c("What's the GPU temperature?", "HydraGpuTemperature"),
    _c("What is the temperature of the graphics card?", "HydraGpuTemperature"),
    _c("How hot are the GPUs?", "HydraGpuTemperature"),
    _c("How warm is my graphics card?", "HydraGpuTemperature"),
    _c("How busy is the cluster?", "HydraClusterStatus"),
    _c("What's the home lab status?", "HydraClusterStatus"),
    _c("Queue research on solar batteries.", "HydraQueueResearch", topic="solar batteries"),
    _c("Q-research on heat pumps.", "HydraQueueResearch", topic="heat pumps"),
    _c("What do we know about heat pumps?", "HydraKnowledgeSearch", topic="heat pumps"),
    _c("What have you learned about wind turbines?", "HydraKnowledgeSearch", topic="wind turbines"),
    _c("Tell me what you know about electric cars.", "HydraKnowledgeSearch", topic="electric cars"),
    _c("Search sourdough in my knowledge base.", "HydraKnowledgeSearch", topic="sourdough"),
    _c("Check the knowledge base for garden tools.", "HydraKnowledgeSearch", topic="garden tools"),
    _c("Remember that the spare key is under the mat.", "HydraRemember",
       fact="the spare key is under the mat"),
    _c("Please remember that I like oat milk.", "HydraRemember", fact="I like oat milk"),
    _c("Don't forget that the boiler service is in May.", "HydraRemember",
       fact="the boiler service is in May"),
    _c("Make a note that the printer needs toner.", "HydraRemember",
       fact="the printer needs toner"),
    _c("What do you remember about coffee?", "HydraRecall", topic="coffee"),
    _c("What did I tell you about the boiler?", "HydraRecall", topic="the boiler"),
    _c("Do you remember anything about the car?", "HydraRecall", topic="the car"),
    _c("What do you remember?", "HydraRecall"),
    _c("What's new in my feeds?", "HydraFeedDigest"),
    _c("Read me my news digest.", "HydraFeedDigest"),
    _c("What's in my news feed?", "HydraFeedDigest"),
    _c("Start the overnight pipeline.", "HydraStartOvernightPipeline"),
    _c("Pause autonomous work.", "HydraPauseAutonomousWork"),
    _c("Resume autonomous work.", "HydraResumeAutonomousWork"),
    _c("What failed overnight?", "HydraOvernightFailures"),
    _c("Did anything fail last night?", "HydraOvernightFailures"),
    _c("Which tasks failed overnight?", "HydraOvernightFailures"),
    _c("Give me my morning briefing.", "HydraBriefing"),
    _c("What's in my briefing?", "HydraBriefing"),
    _c("Brief me.", "HydraBriefing"),
)  # fmt: skip

PARAPHRASES = (
    _c("How hot is the GPU?", "HydraGpuTemperature"),
    _c("What are the graphics cards temperatures?", "HydraGpuTemperature"),
    _c("How busy are the workers?", "HydraClusterStatus"),
    _c("What's the cluster load?", "HydraClusterStatus"),
    _c("Schedule a research task about quantum computing.", "HydraQueueResearch",
       topic="quantum computing"),
    _c("Start research into home batteries.", "HydraQueueResearch", topic="home batteries"),
    _c("What does Hydra know about solar panels?", "HydraKnowledgeSearch", topic="solar panels"),
    _c("Look up tomato plants in the knowledge base.", "HydraKnowledgeSearch",
       topic="tomato plants"),
    _c("Hydra, remember that the wifi password is on the fridge.", "HydraRemember",
       fact="the wifi password is on the fridge"),
    _c("Give me my feed digest.", "HydraFeedDigest"),
    _c("Anything new in my RSS feeds?", "HydraFeedDigest"),
    _c("Kick off the overnight run.", "HydraStartOvernightPipeline"),
    _c("Stop the autonomous tasks.", "HydraPauseAutonomousWork"),
    _c("Suspend autonomous work.", "HydraPauseAutonomousWork"),
    _c("Continue the autonomous work.", "HydraResumeAutonomousWork"),
    _c("Unpause autonomous tasks.", "HydraResumeAutonomousWork"),
    _c("What tasks failed last night?", "HydraOvernightFailures"),
    _c("Read me my briefing.", "HydraBriefing"),
)  # fmt: skip

NEGATIVES = (
    Said("Turn on the kitchen lights."),
    Said("What's the weather like today?"),
    Said("Set a timer for five minutes."),
    Said("Cue the music."),
    Said("Stop the music."),
    Said("Pause the movie."),
    Said("Resume playback in the living room."),
    Said("How hot is the oven?"),
    Said("What's the temperature outside?"),
    Said("What's on my calendar tomorrow?"),
    Said("Add eggs to the shopping list."),
    Said("Lock the front door."),
    Said("Start the vacuum cleaner."),
    Said("Turn off the bedroom fan."),
    Said("What time is it?"),
    Said("Tell me a joke."),
    Said("Play some jazz in the study."),
    Said("Open the garage door."),
    Said("How warm is it in the living room?"),
    Said("Good night."),
    Said("Is the back door locked?"),
    Said("What's the news today?"),
)

# Rooms with nobody speaking, as the end-of-speech detector may still send them: (seconds, RMS
# dBFS, seed). Whisper given a prompt can write the prompt's words for such audio.
NOISES = ((2.0, -50.0, 1), (2.0, -40.0, 2), (3.0, -30.0, 3), (1.5, -45.0, 4))

VOICES = ("kokoro:jf_alpha", "kokoro:jm_kumo", "espeak:en-us")
ESPEAK_SPEED = 150


def cache_dir() -> Path:
    """Where rendered clips are kept between runs."""
    folder = Path(os.environ.get("HYDRA_SPEECH_CACHE", Path.home() / ".cache" / "hydra-speech"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render(weights: VoiceWeights, text: str, voice: str) -> bytes:
    """``text`` said by ``voice`` (16 kHz s16le mono), from the cache if it was said before.
    A Kokoro clip depends on the model's bytes too (their sha256 is in the key)."""
    engine, name = voice.split(":", 1)
    key = hashlib.sha256(f"{engine}|{name}|{text}|{weights.kokoro_sha256}".encode()).hexdigest()
    path = cache_dir() / f"command-{key[:24]}.pcm"
    if path.is_file():
        return path.read_bytes()
    if engine == "kokoro":
        samples, rate = _kokoro(weights).create(text, voice=name, lang="en-us")
        said = pcm16(resample(np.asarray(samples, dtype=np.float32), rate, 16000))
        silence = bytes(16000)  # half a second either side, as the end of speech cuts it
        audio = silence + said + silence
    else:
        audio = espeak_clip(text, name, ESPEAK_SPEED, pad_s=0.5)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(audio)
    tmp.replace(path)
    return audio


@cache
def _kokoro(weights: VoiceWeights) -> Any:
    from kokoro_onnx import Kokoro  # noqa: PLC0415

    return Kokoro(str(weights.kokoro_model), str(weights.kokoro_voices))
