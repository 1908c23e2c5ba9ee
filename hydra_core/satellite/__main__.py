"""Command line: ``python -m hydra_core.satellite --name Kitchen --mic-command ...``.

Bad options end the program at once with a message and exit code 2; a port that cannot be served
ends it with exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import logging
import math
import os
from pathlib import Path
import shlex
import shutil
import signal
import socket
import sys
from urllib.parse import urlparse

from .. import __version__
from .audio import CommandMic, CommandSpeaker, FileMic, PcmFormat, Speaker, WavFileSpeaker
from .satellite import SatelliteError, SatelliteSettings, VoiceSatellite

_LOGGER = logging.getLogger("hydra_core.satellite")
PROG = "python -m hydra_core.satellite"


class OptionError(Exception):
    """An option is wrong: the message says which and why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Hydra voice satellite: a Wyoming satellite with local wake word detection "
        "that Home Assistant's Wyoming integration connects to.",
    )
    parser.add_argument(
        "--uri",
        default="tcp://0.0.0.0:10700",
        help="where to serve: tcp://HOST:PORT or unix://PATH",
    )
    parser.add_argument("--name", default=None, help="satellite name in Home Assistant (host name)")
    parser.add_argument("--area", default=None, help="area suggested to Home Assistant")
    mic = parser.add_mutually_exclusive_group(required=True)
    mic.add_argument(
        "--mic-command",
        help="command writing 16 kHz 16-bit mono raw (or WAV) audio to stdout, "
        'e.g. "arecord -r 16000 -c 1 -f S16_LE -t raw"',
    )
    mic.add_argument(
        "--mic-file",
        help="read the microphone audio from a file (raw 16 kHz s16le mono, or WAV) or - for stdin",
    )
    parser.add_argument(
        "--mic-file-speed",
        type=float,
        default=1.0,
        help="pace --mic-file at this multiple of real time; 0 reads as fast as it is processed",
    )
    snd = parser.add_mutually_exclusive_group()
    snd.add_argument(
        "--snd-command",
        help='command playing raw audio from stdin, e.g. "aplay -r 22050 -c 1 -f S16_LE -t raw"',
    )
    snd.add_argument("--snd-file", help="write each spoken reply to this WAV file instead")
    parser.add_argument("--snd-rate", type=int, default=22050, help="--snd-command sample rate")
    parser.add_argument("--snd-width", type=int, default=2, help="--snd-command bytes per sample")
    parser.add_argument("--snd-channels", type=int, default=1, help="--snd-command channels")
    parser.add_argument(
        "--wake-word",
        action="append",
        help="wake word model name (repeat for several); default hey_jarvis",
    )
    parser.add_argument("--wake-threshold", type=float, default=0.5, help="score to fire (0-1)")
    parser.add_argument(
        "--wake-trigger-level", type=int, default=1, help="consecutive scores above threshold"
    )
    parser.add_argument(
        "--wake-refractory", type=float, default=2.0, help="seconds before the word fires again"
    )
    parser.add_argument("--wake-dir", help="directory with custom openWakeWord .tflite models")
    parser.add_argument(
        "--wake-verify-model",
        help="Whisper tiny.en folder (CTranslate2; needs faster-whisper): each firing is checked"
        " against the wake word's sound-alikes before it counts (docs/voice.md)",
    )
    parser.add_argument(
        "--wake-verify-threshold", type=float, default=0.5, help="share the phrase needs (0-1)"
    )
    parser.add_argument("--awake-wav", help="WAV played when the wake word is detected")
    parser.add_argument("--done-wav", help="WAV played when the command has been heard")
    parser.add_argument(
        "--max-command-seconds",
        type=float,
        default=15.0,
        help="stop sending a command after this long if Home Assistant has not ended it",
    )
    parser.add_argument(
        "--pre-roll-seconds",
        type=float,
        default=2.0,
        help="seconds of microphone audio kept before the wake word fires, so that a command "
        "said straight after it keeps its first word; when there is no pause after the wake "
        "phrase it is sent too (Hydra's speech-to-text removes it); 0 sends only what follows "
        "the detection",
    )
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _check_command(option: str, command: str) -> None:
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise OptionError(f"{option}: cannot parse {command!r}: {err}") from err
    if not argv:
        raise OptionError(f"{option} is empty")
    if shutil.which(argv[0]) is None:
        raise OptionError(f"{option}: program {argv[0]!r} not found")


def _check_file(option: str, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise OptionError(f"{option}: {value} is not a readable file")
    return path


def _check_uri(value: str) -> None:
    uri = urlparse(value)
    if uri.scheme == "tcp":
        try:
            port = uri.port
        except ValueError as err:
            raise OptionError(f"--uri {value!r}: {err}") from err
        if not uri.hostname or port is None:
            raise OptionError(f"--uri {value!r} needs a host and a port (tcp://HOST:PORT)")
    elif uri.scheme == "unix":
        if not uri.path:
            raise OptionError(f"--uri {value!r} needs a socket path (unix:///run/sat.sock)")
    else:
        raise OptionError(f"--uri {value!r}: use tcp://HOST:PORT or unix://PATH")


def _check_numbers(args: argparse.Namespace) -> None:
    if not (0.0 < args.wake_threshold <= 1.0):
        raise OptionError("--wake-threshold must be above 0 and at most 1")
    if not (0.0 <= args.wake_verify_threshold <= 1.0):
        raise OptionError("--wake-verify-threshold must be between 0 and 1")
    if args.wake_trigger_level < 1:
        raise OptionError("--wake-trigger-level must be at least 1")
    if args.wake_refractory < 0 or not math.isfinite(args.wake_refractory):
        raise OptionError("--wake-refractory must be 0 or more seconds")
    if not (args.mic_file_speed >= 0 and math.isfinite(args.mic_file_speed)):
        raise OptionError("--mic-file-speed must be 0 or more")
    if not (args.max_command_seconds > 0 and math.isfinite(args.max_command_seconds)):
        raise OptionError("--max-command-seconds must be above 0")
    if not (0 <= args.pre_roll_seconds <= 10 and math.isfinite(args.pre_roll_seconds)):
        raise OptionError("--pre-roll-seconds must be between 0 and 10")
    if not 8000 <= args.snd_rate <= 192000:
        raise OptionError("--snd-rate must be between 8000 and 192000")
    if args.snd_width not in (1, 2, 3, 4):
        raise OptionError("--snd-width must be 1, 2, 3 or 4 bytes")
    if not 1 <= args.snd_channels <= 8:
        raise OptionError("--snd-channels must be between 1 and 8")


def _check_paths(args: argparse.Namespace) -> None:
    if args.mic_command is not None:
        _check_command("--mic-command", args.mic_command)
    elif args.mic_file != "-":
        _check_file("--mic-file", args.mic_file)
    if args.snd_command is not None:
        _check_command("--snd-command", args.snd_command)
    if args.snd_file is not None:
        parent = Path(args.snd_file).expanduser().resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise OptionError(f"--snd-file: cannot write in {parent}")
    if args.wake_dir is not None and not Path(args.wake_dir).expanduser().is_dir():
        raise OptionError(f"--wake-dir: {args.wake_dir} is not a directory")
    verify = args.wake_verify_model
    if verify is not None and not (Path(verify).expanduser() / "model.bin").is_file():
        raise OptionError(f"--wake-verify-model: {verify} holds no Whisper model.bin")


def settings_from_args(args: argparse.Namespace) -> SatelliteSettings:
    """Check every option; raises OptionError with a message naming the option."""
    _check_uri(args.uri)
    _check_numbers(args)
    _check_paths(args)
    wake_words = tuple(dict.fromkeys(name.strip() for name in args.wake_word or ["hey_jarvis"]))
    if not all(wake_words):
        raise OptionError("--wake-word must not be empty")
    name = (args.name or socket.gethostname() or "Hydra satellite").strip()
    if not name:
        raise OptionError("--name must not be empty")
    return SatelliteSettings(
        uri=args.uri,
        name=name,
        area=args.area or None,
        wake_words=wake_words,
        max_command_s=args.max_command_seconds,
        snd_format=PcmFormat(args.snd_rate, args.snd_width, args.snd_channels),
        awake_wav=_check_file("--awake-wav", args.awake_wav),
        done_wav=_check_file("--done-wav", args.done_wav),
        pre_roll_s=args.pre_roll_seconds,
    )


def create_satellite(args: argparse.Namespace, settings: SatelliteSettings) -> VoiceSatellite:
    """The satellite with its wake word engine, microphone and speaker."""
    try:
        from ..voice.wake import WakeEngine  # noqa: PLC0415 - heavy, and optional
    except ImportError as err:
        raise SatelliteError(
            f"the wake word engine is not installed ({err}); "
            "install the satellite extra: pip install 'hydra-homelab[satellite]'"
        ) from err
    from ..voice.wake_verify import WhisperWakeVerifier  # noqa: PLC0415

    verify = args.wake_verify_model
    try:
        engine = WakeEngine(
            Path(args.wake_dir).expanduser() if args.wake_dir else None,
            threshold=args.wake_threshold,
            trigger_level=args.wake_trigger_level,
            refractory_s=args.wake_refractory,
            verifier=WhisperWakeVerifier(
                Path(verify).expanduser(), threshold=args.wake_verify_threshold
            )
            if verify
            else None,
        )
    except Exception as err:
        raise SatelliteError(f"cannot start the wake word engine: {err}") from err
    mic = (
        CommandMic(args.mic_command)
        if args.mic_command is not None
        else FileMic(args.mic_file, speed=args.mic_file_speed)
    )
    speaker: Speaker | None = None
    if args.snd_command is not None:
        speaker = CommandSpeaker(args.snd_command, settings.snd_format)
    elif args.snd_file is not None:
        speaker = WavFileSpeaker(Path(args.snd_file).expanduser())
    return VoiceSatellite(settings, engine=engine, mic=mic, speaker=speaker)


async def _serve(satellite: VoiceSatellite) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await satellite.start()
    try:
        await stop.wait()
    finally:
        _LOGGER.info("Stopping")
        await satellite.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and check the options, then serve until SIGINT or SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        settings = settings_from_args(args)
        satellite = create_satellite(args, settings)
        satellite.prepare()
    except (OptionError, SatelliteError) as err:
        parser.exit(2, f"{PROG}: error: {err}\n")
    try:
        asyncio.run(_serve(satellite))
    except SatelliteError as err:
        _LOGGER.error("%s", err)
        return 1
    except OSError as err:
        _LOGGER.error("Cannot serve on %s: %s", settings.uri, err)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
