"""Hydra's own models in the arbiter, with the real models: Whisper tiny.en, Kokoro (int8) and
the tiny CLIP. Each is listed, loaded and unloaded through the arbiter's API, and one held by an
inference counts as in flight: it is never unloaded under it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hydra_core.arbiter.inprocess import InProcessBackend, InProcessModel
from hydra_core.arbiter.models import PRIORITY_BACKGROUND, PRIORITY_INTERACTIVE
from hydra_core.client import HydraApiError
from hydra_core.models import Actor
from hydra_core.voice.loader import LazyModel
from hydra_core.voice.stt import SttEngine
from hydra_core.voice.tts import TtsEngine
from tests.quality.conftest import tiny_engine
from tests.voice.weights import kokoro_models_dir, voice_weights, whisper_models_dir

from .conftest import MakeRig

__all__ = ["kokoro_models_dir", "voice_weights", "whisper_models_dir"]

USER = Actor(type="user", id="u1", name="Ada")


def _own(name: str, lazy: Callable[[], LazyModel[Any]], priority: int) -> InProcessBackend:
    return InProcessBackend(
        [InProcessModel(name=name, lazy=lazy, estimated_vram_bytes=0, priority=priority)]
    )


async def _load_hold_unload(
    make_rig: MakeRig, name: str, lazy: LazyModel[Any], priority: int
) -> None:
    rig = await make_rig(extra_backends=[_own(name, lambda: lazy, priority)])
    model_id = f"hydra/{name}"

    listed = {model.id: model for model in (await rig.models.async_available()).models}
    assert not listed[model_id].loaded
    assert listed[model_id].priority == priority

    assert (await rig.models.async_load(model_id, actor=USER)).model.loaded
    assert lazy.loaded

    async with lazy.use():  # an inference holds the real model
        held = (await rig.models.async_loaded()).models[0]
        kept = await rig.models.async_unload(model_id, actor=USER, force=True)
    assert held.in_flight == 1
    assert [(blocker.id, blocker.reason) for blocker in kept.kept] == [(model_id, "in_flight")]
    assert lazy.loaded

    assert (await rig.models.async_unload(model_id, actor=USER)).unloaded == (model_id,)
    assert not lazy.loaded


async def test_whisper(make_rig: MakeRig, whisper_models_dir: Path) -> None:
    stt = SttEngine(whisper_models_dir, model="tiny.en", device="cpu", offline=True)
    try:
        await _load_hold_unload(make_rig, "whisper", stt.lazy, PRIORITY_INTERACTIVE)
    finally:
        await stt.close()


async def test_kokoro(make_rig: MakeRig, kokoro_models_dir: Path) -> None:
    tts = TtsEngine(kokoro_models_dir, offline=True, warmup=False, voice="jf_alpha")
    try:
        await _load_hold_unload(make_rig, "kokoro", tts.lazy, PRIORITY_INTERACTIVE)
    finally:
        await tts.close()


async def test_clip(make_rig: MakeRig, tmp_path: Path) -> None:
    clip = tiny_engine(tmp_path / "models", device="cpu")
    try:
        await _load_hold_unload(make_rig, "clip", clip.lazy, PRIORITY_BACKGROUND)
    finally:
        await clip.async_close()


async def test_a_model_that_cannot_load_is_a_502(make_rig: MakeRig, tmp_path: Path) -> None:
    stt = SttEngine(tmp_path / "no-models", model="tiny.en", device="cpu", offline=True)
    rig = await make_rig(extra_backends=[_own("whisper", lambda: stt.lazy, PRIORITY_INTERACTIVE)])
    try:
        with pytest.raises(HydraApiError) as failed:
            await rig.models.async_load("hydra/whisper", actor=USER)
    finally:
        await stt.close()

    assert (failed.value.status, failed.value.code) == (502, "backend_failed")
    assert "whisper" in failed.value.message
    assert (await rig.models.async_loaded()).models == ()
