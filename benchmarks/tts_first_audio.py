"""Text-to-speech time to first audio over the real Wyoming server on loopback.

Run: .venv-worker/bin/python -m benchmarks.tts_first_audio [--repeat 10]

The worker's VoiceService (Wyoming server on 127.0.0.1, Kokoro-82M int8 ONNX from the test
weight packages, voice jf_alpha, warmed up) is asked for the two-sentence reply of issue 16; the
figure is request sent -> first ``audio-chunk`` received, median of ``--repeat``, for a
``synthesize`` request and for the same text streamed word by word (``synthesize-start`` /
``-chunk`` / ``-stop``, as Home Assistant's LLM agent sends it; timed from the first chunk sent).

Kokoro keeps the audio of pieces it said (they come back the same): "new reply" empties that
cache before each request (no piece said before, the worst case); "templated reply" is the same
reply again, as Hydra's intents answer ("RTX 4090 is at ..."), with only the first sentence's
numbers changed, so its opening pieces are reused and the rest is synthesized.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import statistics
import tempfile
import time

from wyoming.audio import AudioChunk
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.service import VoiceService
from tests.voice.weights import assemble_weights, install_kokoro

REPLY = (
    "RTX 4090 is at 142 degrees and the queue has three tasks waiting. "
    "Autonomous work resumes at eleven tonight."
)
GOAL_S = 0.4
LOOPBACK = "127.0.0.1"


async def _first_audio(port: int, *, stream: bool, reply: str = REPLY) -> tuple[float, float]:
    """(seconds to the first audio-chunk, seconds to the end of the audio) for one request."""
    async with AsyncTcpClient(LOOPBACK, port) as client:
        started = time.perf_counter()
        if stream:
            await client.write_event(SynthesizeStart().event())
            for word in reply.split(" "):
                await client.write_event(SynthesizeChunk(text=word + " ").event())
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text=reply).event())
        first = 0.0
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type) and not first:
                first = time.perf_counter() - started
            if event.type == "audio-stop":
                return first, time.perf_counter() - started
    raise RuntimeError("the server closed the connection before audio-stop")


async def run(repeat: int, folder: Path) -> None:
    weights = assemble_weights(folder)
    models_dir = folder / "models"
    install_kokoro(models_dir, weights)
    service = VoiceService(
        VoiceOptions(voice_port=0, voice_offline=True, model_idle_unload=0, tts_voice="jf_alpha"),
        host=LOOPBACK,
        data_dir=folder,
        models_dir=models_dir,
    )
    await service.async_start()
    try:
        await service.tts.load()  # warm, as the worker keeps it between replies
        print(f"CPU cores: {len(os.sched_getaffinity(0))}; reply: {REPLY!r}")
        for stream, fresh in ((False, True), (True, True), (False, False)):
            firsts, totals = [], []
            for index in range(repeat):
                if fresh:
                    service.tts._clear_cache()
                reply = REPLY if fresh else REPLY.replace("142", str(100 + index))
                first, total = await _first_audio(service.port, stream=stream, reply=reply)
                firsts.append(first)
                totals.append(total)
            name = "streamed synthesize-chunk" if stream else "synthesize"
            name += ", new reply" if fresh else ", templated reply said before"
            median = statistics.median(firsts)
            print(
                f"TTS first audio, {name}: {1000 * median:.0f} ms median of {repeat} "
                f"({1000 * min(firsts):.0f}-{1000 * max(firsts):.0f}), goal <= "
                f"{1000 * GOAL_S:.0f} ms {'MET' if median <= GOAL_S else 'NOT MET'}; "
                f"whole reply {1000 * statistics.median(totals):.0f} ms"
            )
    finally:
        await asyncio.sleep(0.2)  # let the handlers see their clients leave
        await service.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hydra-tts-first-") as folder:
        asyncio.run(run(args.repeat, Path(folder)))


if __name__ == "__main__":
    main()
