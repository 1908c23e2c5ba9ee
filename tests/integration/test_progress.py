"""Long work shows its progress in a real Home Assistant, pushed by the worker as it goes: a
speech model's download as an update in progress (from a loopback server with the real test
weights, paced like a slow link), and a maintenance run as a percent sensor with its stage.

A research task's and a chapter's progress are followed where those run for real
(test_knowledge.py, test_creative.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
import pytest

from custom_components.hydra.const import DOMAIN
from tests.fake_nvml import FakeNvml
from tests.voice.test_download import ModelServer, model_server
from tests.voice.weights import VoiceWeights, install_kokoro, words

from .conftest import (
    TaskWorker,
    VoiceWorker,
    entry_for,
    record_states,
    setup_entry,
    wait_until,
)

__all__ = ["model_server"]

STT_DOWNLOAD = "update.gpubox_speech_to_text_model_download"
TTS_DOWNLOAD = "update.gpubox_text_to_speech_model_download"
MAINTENANCE = "sensor.gpubox_maintenance_progress"
RESEARCH = "sensor.gpubox_research_progress"
# Whisper tiny.en is 78 MB: a pause per megabyte makes its download last about three seconds,
# long enough for the worker's progress events (at most one a second) to show it moving.
PACE_S = 0.04
DOWNLOAD_TIMEOUT_S = 60


@pytest.fixture
async def downloading_worker(
    nvml: FakeNvml, model_server: ModelServer, voice_weights: VoiceWeights, tmp_path: Path
) -> AsyncIterator[VoiceWorker]:
    """A voice worker online, with Kokoro installed and Whisper to download from the server."""
    models = tmp_path / "models"
    install_kokoro(models, voice_weights)
    model_server.pace_s = PACE_S
    async with VoiceWorker(
        nvml, models_dir=models, data_dir=tmp_path / "data", download_url=model_server.url
    ) as worker:
        yield worker


def _in_progress(states: list[State]) -> list[float]:
    """The percentages an update showed while in progress, in order."""
    return [
        state.attributes["update_percentage"]
        for state in states
        if state.attributes.get("in_progress")
    ]


async def test_a_model_download_is_an_update_in_progress(
    hass: HomeAssistant, downloading_worker: VoiceWorker, command_speech: bytes
) -> None:
    """Before its first use, the speech-to-text model is an update available (not on the disk
    yet); the first transcription downloads it and the update shows it in progress, its
    percentage rising, until the model is installed. Kokoro, on the disk already, is up to
    date."""
    await setup_entry(hass, entry_for(downloading_worker))
    state = hass.states.get(STT_DOWNLOAD)
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes["title"] == "Whisper"
    assert (state.attributes["installed_version"], state.attributes["latest_version"]) == (
        "none",
        "tiny.en",
    )
    assert state.attributes["in_progress"] is False
    assert hass.states.get(TTS_DOWNLOAD).state == STATE_OFF
    states = record_states(hass, STT_DOWNLOAD)

    assert downloading_worker.voice is not None
    heard = await downloading_worker.voice.stt.transcribe(command_speech)

    assert words(heard) == words("What's the GPU temperature?")
    await wait_until(
        lambda: hass.states.get(STT_DOWNLOAD).attributes["installed_version"] == "tiny.en",
        within=DOWNLOAD_TIMEOUT_S,
    )
    percentages = _in_progress(states)
    assert len(percentages) >= 3, [state.attributes for state in states]
    assert percentages == sorted(percentages)
    assert percentages[0] < 50 < percentages[-1]
    state = hass.states.get(STT_DOWNLOAD)
    assert state.state == STATE_OFF
    assert state.attributes["in_progress"] is False
    assert state.attributes["update_percentage"] is None


async def test_a_maintenance_run_rises_to_done(
    hass: HomeAssistant, task_worker: TaskWorker
) -> None:
    """The maintenance sensor knows nothing before the first run; a run moves it through what
    the task reports to 100 % and the "done" stage. A worker whose queue has no research
    has no research sensor."""
    await setup_entry(hass, entry_for(task_worker))
    assert hass.states.get(MAINTENANCE).state == STATE_UNKNOWN
    assert hass.states.get(RESEARCH) is None
    states = record_states(hass, MAINTENANCE)

    queued = await hass.services.async_call(
        DOMAIN,
        "queue_task",
        {"kind": "maintenance", "payload": {"dry_run": True}},
        blocking=True,
        return_response=True,
    )
    assert queued is not None

    await wait_until(lambda: hass.states.get(MAINTENANCE).attributes.get("stage") == "done")
    percents = [float(state.state) for state in states]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert any(0 < percent < 100 for percent in percents), percents
    stages = [state.attributes["stage"] for state in states]
    assert any(stage.startswith("measured ") for stage in stages), stages
    attributes = hass.states.get(MAINTENANCE).attributes
    assert (attributes["task_id"], attributes["state"]) == (queued["task_id"], "succeeded")
    assert attributes["unit_of_measurement"] == "%"
