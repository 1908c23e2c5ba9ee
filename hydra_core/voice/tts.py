"""Text-to-speech with Kokoro-82M (ONNX), loaded on first use, streamed sentence by sentence.

Files live in ``<models_dir>/kokoro/``: the model (``kokoro-v1.0.int8.onnx`` or any ``*.onnx``)
and a voices file (``voices-v1.0.bin`` or any ``*.npz``/``*.bin``). Missing files are downloaded
on first use unless offline mode is on. kokoro-onnx 0.4.7 (Python 3.14) and 0.6.1 both work;
kokoro-onnx and onnxruntime are imported when the model loads, never at import.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
import contextlib
import logging
from pathlib import Path
import re
import threading
from typing import TYPE_CHECKING

import numpy as np

from .download import (
    KOKORO_BASE_URL,
    KOKORO_MODEL_FILE,
    KOKORO_VOICES_FILE,
    DownloadError,
    download_kokoro,
)
from .loader import LazyModel, ModelState

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro
    from onnxruntime import InferenceSession

_LOGGER = logging.getLogger(__name__)

DEFAULT_VOICE = "af_heart"
#: Sentences longer than this are split at commas (or spaces) to keep the first audio early.
MAX_SENTENCE_CHARS = 300
#: Silence after each sentence but the last, as Kokoro's own joins have.
SENTENCE_PAUSE_S = 0.25
#: A reply's first piece is at most this long, so its audio comes early (docs/voice.md): Kokoro
#: takes some 0.3 s here for the two to four words this allows, against 2.5 s for a sentence.
FIRST_CHUNK_CHARS = 14
#: Silence after a first clause that ends at a comma, semicolon, colon or dash (none after a cut
#: between two words, which are spoken on without a break).
CLAUSE_PAUSE_S = 0.1
_CLAUSE_WORDS = frozenset(("and", "but", "or", "so"))
_CLAUSE_ENDS = (",", ";", ":", "-", "\u2013", "\u2014")
_MIN_HEAD_WORDS = 2  # a first piece without a comma ends after two words or more ...
_ALONE_CHARS = 8  # ... unless its first word is this long to say
_MIN_REST_WORDS = 2  # a single last word is not left to say on its own
#: Words a first piece does not end on ("the | GPU", "at | noon"), so none is left hanging.
_WEAK_ENDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "but",
        "so",
        "my",
        "your",
        "its",
        "our",
        "their",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "into",
        "about",
    ]
)
#: Nor on a number ("142 | degrees", "fifty | four"): a number is said with what follows it.
_NUMBER_WORDS = frozenset(
    [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "point",
        "minus",
    ]
)
_WARMUP_TEXT = "Hello."
#: Pieces whose audio is kept for the next time they are said (Kokoro is deterministic, so the
#: kept audio is what synthesis would give): Hydra's replies come from templates and start the
#: same way ("RTX 4090 is at ...", "The queue has ..."), so a reply's first piece is usually
#: ready at once. Up to this much PCM in all, each piece at most a quarter of it.
PIECE_CACHE_BYTES = 8 * 1024 * 1024
_ABBREVIATIONS = frozenset(
    (
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "etc",
        "approx",
        "dept",
        "fig",
        "inc",
        "ltd",
        "co",
        "corp",
        "gen",
        "gov",
        "lt",
        "col",
        "capt",
        "sgt",
        "rev",
        "hon",
        "vol",
        "ave",
        "blvd",
        "rd",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
    )
)
_END = re.compile("(?:[.!?]+|\u2026)[\"'\u201d\u2019)\\]]*(?=\\s|$)")


class TtsError(Exception):
    """Speech could not be synthesized (bad request, model unavailable, load failed)."""


def _ends_sentence(line: str, match: re.Match[str], start: int) -> bool:
    """Whether a "." ending at ``match`` closes a sentence (not "Dr." or "e.g.")."""
    if "." not in match.group() or match.end() >= len(line):
        return True
    words = line[start : match.start()].split()
    word = (words[-1] if words else "").lower().lstrip("\"'\u201c\u2018(")
    if word in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False
    rest = line[match.end() :].lstrip()
    return not rest[:1].islower()  # "approx. five": a lower-case word goes on


def _split_long(sentence: str, limit: int) -> list[str]:
    parts: list[str] = []
    while len(sentence) > limit:
        window = sentence[: limit + 1]
        cut = max(window.rfind(mark) for mark in (", ", "; ", ": ", " - ", " \u2013 "))
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        parts.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        parts.append(sentence)
    return parts


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences at ., !, ? and newlines.

    Abbreviations ("Dr.", "e.g.") and decimals ("3.5") do not end a sentence; a sentence
    longer than ``max_chars`` is split at commas (or spaces).
    """
    sentences: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        start = 0
        for match in _END.finditer(line):
            if _ends_sentence(line, match, start):
                sentences.append(line[start : match.end()].strip())
                start = match.end()
        sentences.append(line[start:].strip())
    return [part for sentence in sentences if sentence for part in _split_long(sentence, max_chars)]


def spoken_length(text: str) -> int:
    """About how many letters ``text`` takes to say (Kokoro says some 12 a second): a digit
    says some six ("4090" is "four thousand ninety"), a letter of an acronym four ("RTX")."""
    length = 0
    for word in text.split():
        digits = sum(char.isdigit() for char in word)
        capitals = sum(char.isupper() for char in word) if word.isupper() and len(word) > 1 else 0
        length += 1 + len(word) + 5 * digits + 3 * capitals
    return max(0, length - 1)


def first_clause(
    sentence: str, *, max_chars: int = FIRST_CHUNK_CHARS, first: bool = True
) -> tuple[str, str] | None:
    """Where to cut a short first piece off ``sentence`` so that speaking can start early.

    ``(head, rest)``, the head said in at most ``max_chars`` letters (:func:`spoken_length`)
    where it can be: cut at the last clause boundary within them (a comma, semicolon, colon or
    dash, or before "and", "but", "or", "so"), else after the last word within them that is not
    "the", "a", "of", a number and the like (two words at least), else after a first word long
    enough to say alone ("Autonomous", "RTX"), else after the shortest such two words or more
    (these two only for the ``first`` piece of a reply, the one that must come early).
    Never inside a word or a number; None when the sentence is that short already, or when
    the rest would be a single word.
    """
    sentence = " ".join(sentence.split())
    if spoken_length(sentence) <= max_chars:
        return None
    cuts = [
        index
        for index, char in enumerate(sentence)
        if char == " " and len(sentence[index:].split()) >= _MIN_REST_WORDS
    ]
    short = [cut for cut in cuts if spoken_length(sentence[:cut]) <= max_chars]
    clauses = [
        cut
        for cut in short
        if sentence[:cut].endswith(_CLAUSE_ENDS)
        or (
            len(sentence[:cut].split()) >= _MIN_HEAD_WORDS
            and sentence[cut + 1 :].split()[0].lower() in _CLAUSE_WORDS
        )
    ]
    phrases = [
        cut
        for cut in cuts
        if len(sentence[:cut].split()) >= _MIN_HEAD_WORDS and _ends_well(sentence[:cut])
    ]
    if clauses:
        cut = max(clauses)
    elif fitting := [cut for cut in phrases if cut in short]:
        cut = max(fitting)
    elif (
        cuts
        and spoken_length(sentence[: cuts[0]]) >= _ALONE_CHARS
        and _ends_well(sentence[: cuts[0]])
    ):
        cut = cuts[0]
    elif phrases:
        cut = min(phrases)
    else:
        return None
    return sentence[:cut].strip(), sentence[cut:].strip()


def _ends_well(head: str) -> bool:
    word = head.rsplit(maxsplit=1)[-1].lower().strip("\"'\u201c\u201d\u2018\u2019()")
    return not (word in _WEAK_ENDS or word in _NUMBER_WORDS or any(c.isdigit() for c in word))


def piece_budget(said: int) -> int:
    """How long to say (:func:`spoken_length`) the next piece may be after ``said`` letters:
    FIRST_CHUNK_CHARS for the first, then twice what was said (at least twice the first), which
    Kokoro makes in less than it takes to play what was said while its real-time factor is
    under 0.5 (0.4 on this 2-core CPU)."""
    return FIRST_CHUNK_CHARS if not said else 2 * max(FIRST_CHUNK_CHARS, said)


def speech_pieces(text: str, *, said: int | None = 0) -> list[tuple[str, float]]:
    """The pieces ``text`` is spoken in, each with the silence after it.

    The sentences, the first cut at its first clause (:func:`first_clause`) and each piece then
    at most :func:`piece_budget` long (``said``: the letters already said before ``text``), so
    each is ready before those before it have been played; the pieces grow to whole sentences.
    ``said=None``: whole sentences, no cuts.
    """
    pieces: list[tuple[str, float]] = []
    for sentence in split_sentences(text):
        rest = sentence
        while said is not None and (
            cut := first_clause(rest, max_chars=piece_budget(said), first=not said)
        ):
            head, rest = cut
            pieces.append((head, CLAUSE_PAUSE_S if head.endswith(_CLAUSE_ENDS) else 0.0))
            said += spoken_length(head)
        pieces.append((rest, SENTENCE_PAUSE_S))
        if said is not None:
            said += spoken_length(rest)
    if pieces:
        pieces[-1] = (pieces[-1][0], 0.0)
    return pieces


def float_to_pcm(audio: np.ndarray) -> bytes:
    """Float audio to 16-bit little-endian PCM, clipped to [-1, 1] first."""
    clipped = np.clip(np.asarray(audio, dtype=np.float32).ravel(), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def _find(folder: Path, preferred: str, patterns: tuple[str, ...]) -> Path | None:
    if (folder / preferred).is_file():
        return folder / preferred
    for pattern in patterns:
        found = sorted(path for path in folder.glob(pattern) if path.is_file())
        if found:
            return found[0]
    return None


class TtsEngine:
    """Kokoro text-to-speech: 16-bit mono PCM at 24 kHz, one chunk per sentence."""

    SAMPLE_RATE = 24000
    SAMPLE_WIDTH = 2
    CHANNELS = 1

    def __init__(
        self,
        models_dir: Path,
        *,
        voice: str | None = None,
        speed: float = 1.0,
        language: str = "en-us",
        offline: bool = False,
        idle_unload_s: float = 300.0,
        warmup: bool = True,
        download_base_url: str = KOKORO_BASE_URL,
        on_progress: Callable[[str, float], None] | None = None,
        executor: Executor | None = None,
        threads: int = 0,
        cache_bytes: int = PIECE_CACHE_BYTES,
    ) -> None:
        self.executor = executor
        self.threads = threads
        self.models_dir = Path(models_dir)
        self.voice = voice
        self.speed = speed
        self.language = language
        self.offline = offline
        self.warmup = warmup
        self.download_base_url = download_base_url
        self.on_progress = on_progress
        self._voices: tuple[Path, list[str]] | None = None
        self._synth_lock = threading.Lock()  # espeak (phonemizer) is not thread-safe
        # Apart from it: a piece said before is not kept waiting by another stream's synthesis.
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, float, str], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._closed = False
        #: Called with each sentence just before it is synthesized (for instrumentation).
        self.on_sentence: Callable[[str], None] | None = None
        self.lazy: LazyModel[Kokoro] = LazyModel(
            "Kokoro",
            self._load_sync,
            prepare=self._prepare,
            idle_unload_s=idle_unload_s,
            executor=executor,
        )

    @property
    def kokoro_dir(self) -> Path:
        """The folder holding the Kokoro model and voices."""
        return self.models_dir / "kokoro"

    @property
    def model_path(self) -> Path | None:
        """The installed ONNX model, if any."""
        return _find(self.kokoro_dir, KOKORO_MODEL_FILE, ("*.onnx",))

    @property
    def voices_path(self) -> Path | None:
        """The installed voices file, if any."""
        return _find(self.kokoro_dir, KOKORO_VOICES_FILE, ("*.npz", "*.bin"))

    @property
    def state(self) -> ModelState:
        """not_loaded, loading, loaded or error."""
        return self.lazy.state

    @property
    def error(self) -> str | None:
        """Why the last load failed."""
        return self.lazy.error

    def voices(self) -> list[str]:
        """The voice names in the voices file ([] if it is not installed)."""
        path = self.voices_path
        if path is None:
            return []
        if self._voices is None or self._voices[0] != path:
            try:
                with np.load(path) as data:
                    names = sorted(data.files)
            except (OSError, ValueError) as err:
                _LOGGER.warning("Cannot read Kokoro voices %s: %s", path, err)
                return []
            self._voices = (path, names)
        return list(self._voices[1])

    def default_voice(self) -> str | None:
        """The configured voice, else "af_heart" if present, else the first voice."""
        voices = self.voices()
        if self.voice:
            return self.voice
        if DEFAULT_VOICE in voices:
            return DEFAULT_VOICE
        return voices[0] if voices else None

    def unavailable_reason(self) -> str | None:
        """None if TTS can be used now (installed or downloadable), else why not."""
        if self.model_path is not None and self.voices_path is not None:
            return None
        if self.offline:
            return (
                f"The Kokoro model is not in {self.kokoro_dir} (it needs {KOKORO_MODEL_FILE} "
                f"and {KOKORO_VOICES_FILE}) and offline mode is on"
            )
        return None

    async def _prepare(self) -> None:
        if self.model_path is not None and self.voices_path is not None:
            return
        if reason := self.unavailable_reason():
            raise TtsError(reason)
        _LOGGER.info("Downloading the Kokoro model into %s", self.kokoro_dir)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        await download_kokoro(
            self.kokoro_dir, base_url=self.download_base_url, on_progress=self.on_progress
        )

    def _load_sync(self) -> Kokoro:
        from kokoro_onnx import Kokoro  # noqa: PLC0415

        model_path, voices_path = self.model_path, self.voices_path
        if model_path is None or voices_path is None:
            raise TtsError(f"The Kokoro model is not in {self.kokoro_dir}")
        kokoro = Kokoro.from_session(self._session(model_path), str(voices_path))
        self._clear_cache()  # a new model may speak differently
        if self.warmup:
            voice = self.default_voice()
            if voice is not None and voice in kokoro.get_voices():
                self._create(kokoro, _WARMUP_TEXT, voice, 1.0)
        return kokoro

    def _session(self, model_path: Path) -> InferenceSession:
        """An ONNX Runtime session on CUDA where this installation has it, else the CPU, with
        ``threads`` intra-op threads (0: ONNX Runtime's default, one per core)."""
        import onnxruntime as ort  # noqa: PLC0415

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        return ort.InferenceSession(str(model_path), options, providers=providers)

    def _cached(self, key: tuple[str, str, float, str]) -> bytes | None:
        with self._cache_lock:
            pcm = self._cache.get(key)
            if pcm is not None:
                self._cache.move_to_end(key)
            return pcm

    def _keep(self, key: tuple[str, str, float, str], pcm: bytes) -> None:
        if len(pcm) * 4 > self._cache_limit:
            return
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = pcm
            self._cache_bytes += len(pcm)
            while self._cache_bytes > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)

    def _clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cache_bytes = 0

    def _create(self, kokoro: Kokoro, text: str, voice: str, speed: float) -> np.ndarray:
        with self._synth_lock:
            audio, _rate = kokoro.create(text, voice=voice, speed=speed, lang=self.language)
        return np.asarray(audio, dtype=np.float32)

    async def load(self) -> None:
        """Load the model (downloading first if needed) and warm it up."""
        await self._run(lambda _: None)

    async def _run(self, func: Callable[[Kokoro], bytes | None]) -> bytes | None:
        if self._closed:
            raise TtsError("The text-to-speech engine is closed")
        try:
            return await self.lazy.run(func)
        except TtsError:
            raise
        except DownloadError as err:
            raise TtsError(f"Could not download the Kokoro model: {err}") from err
        except Exception as err:
            if self.lazy.state is ModelState.ERROR:
                raise TtsError(f"Could not load the Kokoro model: {err}") from err
            raise TtsError(f"Speech synthesis failed: {err}") from err

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        speed: float | None = None,
        said: int | None = 0,
    ) -> AsyncIterator[bytes]:
        """Yield 16-bit mono PCM at 24 kHz, one chunk per piece, each once it is ready.

        The pieces are the sentences, the first cut at its first clause and the next ones
        growing from it (:func:`speech_pieces`; ``said``: letters said before on the same
        stream, None for whole sentences), so the first audio comes early; the next piece is
        synthesized while the caller handles the current chunk.
        """
        pieces = speech_pieces(text, said=said)
        if not pieces:
            raise TtsError("There is no text to speak")
        speed = self.speed if speed is None else speed
        if not 0.5 <= speed <= 2.0:
            raise TtsError(f"Speed must be between 0.5 and 2.0, not {speed}")
        if reason := self.unavailable_reason():
            raise TtsError(reason)
        chosen = voice or self.default_voice() or DEFAULT_VOICE
        known = self.voices()
        if known and chosen not in known:
            raise TtsError(f"Unknown voice {chosen!r}; the voices are: {', '.join(known)}")

        def job(sentence: str, pause_s: float) -> Callable[[Kokoro], bytes]:
            def run(kokoro: Kokoro) -> bytes:
                if chosen not in kokoro.get_voices():
                    voices = ", ".join(kokoro.get_voices())
                    raise TtsError(f"Unknown voice {chosen!r}; the voices are: {voices}")
                if self.on_sentence is not None:
                    self.on_sentence(sentence)
                key = (sentence, chosen, speed, self.language)
                if (pcm := self._cached(key)) is None:
                    pcm = float_to_pcm(self._create(kokoro, sentence, chosen, speed))
                    self._keep(key, pcm)
                if pause_s:
                    pcm += bytes(2 * int(pause_s * self.SAMPLE_RATE))
                return pcm

            return run

        count = len(pieces)
        tasks = [asyncio.ensure_future(self._run(job(*pieces[0])))]
        try:
            for index in range(count):
                chunk = await tasks[index]
                if index + 1 < count:
                    tasks.append(asyncio.ensure_future(self._run(job(*pieces[index + 1]))))
                if chunk:
                    yield chunk
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TtsError):
                        await task

    async def speak(self, text: str, blend: Sequence[tuple[str, float]], speed: float) -> bytes:
        """All of ``text`` as 16-bit mono PCM at 24 kHz, in one voice or a weighted blend of
        voices (``[("af_heart", 0.6), ("af_bella", 0.4)]``, weights summing to 1)."""
        if not text.strip():
            raise TtsError("There is no text to speak")
        if not 0.5 <= speed <= 2.0:
            raise TtsError(f"Speed must be between 0.5 and 2.0, not {speed}")
        if not blend:
            raise TtsError("A voice is needed")
        if reason := self.unavailable_reason():
            raise TtsError(reason)
        known = self.voices()
        if missing := [name for name, _ in blend if known and name not in known]:
            raise TtsError(
                f"Unknown voice {', '.join(missing)}; the voices are: {', '.join(known)}"
            )

        def run(kokoro: Kokoro) -> bytes:
            voice: str | np.ndarray
            if len(blend) == 1:
                voice = blend[0][0]
            else:
                voice = sum(
                    (kokoro.get_voice_style(name) * weight for name, weight in blend),
                    start=np.zeros_like(kokoro.get_voice_style(blend[0][0])),
                )
            with self._synth_lock:
                audio, _rate = kokoro.create(text, voice=voice, speed=speed, lang=self.language)
            return float_to_pcm(np.asarray(audio, dtype=np.float32))

        chunk = await self._run(run)
        assert chunk is not None
        return chunk

    async def close(self) -> None:
        """Unload the model (after running syntheses) and refuse further work."""
        self._closed = True
        await self.lazy.close()
