"""The pure parts of scripts/dev/develop.py: files it writes and decisions it makes."""

from __future__ import annotations

import json
from pathlib import Path
import stat
from types import ModuleType

import aiohttp
from homeassistant.util.yaml import load_yaml
import pytest

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("with_http", [True, False])
def test_configuration_is_valid_yaml_without_default_config(
    develop: ModuleType, tmp_path: Path, with_http: bool
) -> None:
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "mine.yaml").write_text("input_boolean:\n  dev_toggle:\n")
    path = tmp_path / "configuration.yaml"
    path.write_text(develop.render_configuration(ha_port=18123, with_http=with_http))

    config = load_yaml(path)

    assert "default_config" not in config
    for domain in ("frontend", "config", "history", "logbook", "system_health"):
        assert domain in config
    assert config["logger"]["logs"]["custom_components.hydra"] == "debug"
    assert config["logger"]["logs"]["hydra_core"] == "debug"
    assert config["homeassistant"]["packages"] == {"mine": {"input_boolean": {"dev_toggle": None}}}
    if with_http:
        assert config["http"] == {"server_host": "127.0.0.1", "server_port": 18123}
    else:
        assert "http" not in config


def test_the_hydra_dashboard_is_a_yaml_dashboard_built_by_the_strategy(
    develop: ModuleType, tmp_path: Path
) -> None:
    """The dev config has a "Hydra" YAML dashboard (a path with a hyphen, as Home Assistant
    requires) whose file is the one line a user adds: the integration's strategy."""
    (tmp_path / "packages").mkdir()
    path = tmp_path / "configuration.yaml"
    path.write_text(develop.render_configuration(ha_port=18123, with_http=False))
    dashboard = tmp_path / develop.DASHBOARD_FILE
    dashboard.parent.mkdir()
    dashboard.write_text(develop.DASHBOARD_YAML)

    dashboards = load_yaml(path)["lovelace"]["dashboards"]

    assert "-" in develop.DASHBOARD_PATH
    assert dashboards[develop.DASHBOARD_PATH] == {
        "mode": "yaml",
        "title": "Hydra",
        "icon": "mdi:server-network",
        "show_in_sidebar": True,
        "filename": develop.DASHBOARD_FILE,
    }
    assert load_yaml(dashboard) == {"strategy": {"type": "custom:hydra"}}


def test_the_seeded_work_reads_hydras_own_documentation(develop: ModuleType) -> None:
    """A maintenance dry run (nothing removed) and research on pages that exist in docs/."""
    showcase = develop.showcase
    requests = dict(showcase.seed_requests(lambda page: f"http://127.0.0.1:1/docs/{page}.html"))
    assert requests["maintenance"] == {"dry_run": True}
    assert requests["research"]["topic"] == showcase.RESEARCH_TOPIC
    assert requests["quality_scoring"]["images"] == [showcase.REVIEW_IMAGE]
    for page in showcase.RESEARCH_PAGES:
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"http://127.0.0.1:1/docs/{page}.html" in requests["research"]["urls"]


def test_the_review_image_is_written_once(develop: ModuleType, tmp_path: Path) -> None:
    showcase = develop.showcase
    showcase.write_review_image(tmp_path)
    path = tmp_path / showcase.REVIEW_IMAGE
    assert path.read_bytes().startswith(b"\x89PNG")
    path.write_bytes(b"mine")
    showcase.write_review_image(tmp_path)
    assert path.read_bytes() == b"mine"


def test_a_documentation_page_as_html(develop: ModuleType) -> None:
    page = develop.showcase.markdown_page(
        "# Models & VRAM\n\nThe arbiter <leases> VRAM\nbefore a load.\n\n```\ncode\n```\n"
    )
    assert "<title>Models &amp; VRAM</title>" in page
    assert "<p>The arbiter &lt;leases&gt; VRAM before a load.</p>" in page
    assert "code" not in page


def _http_store(config_dir: Path, data: dict | str) -> None:
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    text = (
        data if isinstance(data, str) else json.dumps({"version": 2, "key": "http", "data": data})
    )
    (storage / "http").write_text(text)


def _conf(port: int, host: list[str] | None = None, error: str | None = None) -> dict:
    conf = {"server_port": port, "error": error}
    if host is not None:
        conf["server_host"] = host
    return conf


def test_http_store_absent_or_not_migrated_means_write_the_yaml(
    develop: ModuleType, tmp_path: Path
) -> None:
    assert develop.stored_http_matches(tmp_path, 8123) is None
    _http_store(tmp_path, {"stable": _conf(8123), "pending": None, "yaml_migration_done": False})
    assert develop.stored_http_matches(tmp_path, 8123) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Stable as wanted.
        ({"stable": _conf(18123, ["127.0.0.1"]), "pending": None}, True),
        # Another port (an earlier --ha-port) or every interface (Home Assistant's default).
        ({"stable": _conf(8123, ["127.0.0.1"]), "pending": None}, False),
        ({"stable": _conf(18123), "pending": None}, False),
        # A pending setting is what Home Assistant starts with, unless it failed its trial.
        ({"stable": _conf(8123), "pending": _conf(18123, ["127.0.0.1"])}, True),
        ({"stable": _conf(18123, ["127.0.0.1"]), "pending": _conf(9999, ["127.0.0.1"])}, False),
        (
            {
                "stable": _conf(18123, ["127.0.0.1"]),
                "pending": _conf(9999, ["127.0.0.1"], error="apply_failed"),
            },
            True,
        ),
    ],
)
def test_http_store_compared_with_the_wanted_port(
    develop: ModuleType, tmp_path: Path, data: dict, expected: bool
) -> None:
    _http_store(tmp_path, {**data, "yaml_migration_done": True})
    assert develop.stored_http_matches(tmp_path, 18123) is expected


def test_unreadable_http_store_is_a_mismatch(develop: ModuleType, tmp_path: Path) -> None:
    _http_store(tmp_path, "{not json")
    assert develop.stored_http_matches(tmp_path, 8123) is False


def test_write_private_makes_and_keeps_files_0600(develop: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret"
    develop.write_private(path, "one\n")
    assert path.read_text() == "one\n"
    assert mode(path) == 0o600
    path.chmod(0o644)
    develop.write_private(path, "two\n")
    assert path.read_text() == "two\n"
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]


def test_credentials_made_once(develop: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    first = develop.load_or_create_credentials(path)
    assert first.username == "hydra"
    assert len(first.password) >= 16
    assert mode(path) == 0o600
    path.chmod(0o644)
    assert develop.load_or_create_credentials(path) == first
    assert mode(path) == 0o600


def test_credentials_not_ours_are_refused(develop: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("hydra:secret\n")
    with pytest.raises(develop.DevelopError, match="not a login this script wrote"):
        develop.load_or_create_credentials(path)
    assert path.read_text() == "hydra:secret\n"


def test_integration_link_is_idempotent(develop: ModuleType, tmp_path: Path) -> None:
    link = develop.link_integration(tmp_path)
    assert link == tmp_path / "custom_components" / "hydra"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "custom_components" / "hydra").resolve()
    assert develop.link_integration(tmp_path) == link
    # A link to another checkout is replaced.
    link.unlink()
    link.symlink_to(tmp_path, target_is_directory=True)
    develop.link_integration(tmp_path)
    assert link.resolve() == (ROOT / "custom_components" / "hydra").resolve()


def test_integration_link_never_replaces_a_directory(develop: ModuleType, tmp_path: Path) -> None:
    directory = tmp_path / "custom_components" / "hydra"
    directory.mkdir(parents=True)
    (directory / "mine.py").write_text("")
    with pytest.raises(develop.DevelopError, match="move it away"):
        develop.link_integration(tmp_path)
    assert (directory / "mine.py").exists()


def test_options_defaults(develop: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_DEV_DIR", raising=False)
    options = develop.parse_args([])
    assert options.dev_dir == ROOT / ".dev"
    assert (options.ha_port, options.worker_port, options.voice_port) == (8123, 8741, 10300)
    assert not options.check
    assert options.timeout == 240


def test_relative_dev_dir_means_the_callers_directory(
    develop: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HYDRA_DEVELOP_CALLER_DIR", str(tmp_path))
    monkeypatch.setenv("HYDRA_DEV_DIR", "from-env")
    assert develop.parse_args([]).dev_dir == tmp_path / "from-env"
    options = develop.parse_args(
        ["--dev-dir", "state", "--ha-port", "18123", "--worker-port", "18741", "--check"]
    )
    assert options.dev_dir == tmp_path / "state"
    assert (options.ha_port, options.worker_port, options.check) == (18123, 18741, True)


def test_gpu_backend_nvml_when_nvml_lists_a_gpu(develop: ModuleType) -> None:
    report = {"backend": "nvml", "available": True, "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}
    backend, note = develop.choose_gpu_backend(0, json.dumps(report).encode(), b"")
    assert backend == "nvml"
    assert note == "NVML found 1 GPU(s) (NVIDIA H100 80GB HBM3): using the nvml backend"


@pytest.mark.parametrize(
    ("returncode", "out", "err", "reason"),
    [
        (
            1,
            b'{"available": false, "reason": "No NVIDIA driver found", "gpus": []}',
            b"GPU monitoring unavailable",
            "No NVIDIA driver found",
        ),
        (0, b'{"available": true, "gpus": []}', b"", "no GPU listed"),
        (1, b"", b"ModuleNotFoundError: No module named 'pynvml'", "ModuleNotFoundError"),
        (0, b"not json", b"", "no GPU listed"),
    ],
)
def test_gpu_backend_simulated_otherwise(
    develop: ModuleType, returncode: int, out: bytes, err: bytes, reason: str
) -> None:
    backend, note = develop.choose_gpu_backend(returncode, out, err)
    assert backend == "simulated"
    assert note.startswith("no NVIDIA GPU found: using the simulated backend (")
    assert reason in note


def test_the_seeded_chapter_is_the_tests_shortest(develop: ModuleType, tmp_path: Path) -> None:
    showcase = develop.showcase
    (tmp_path / "long.fountain").write_text("Title: Long\n\nINT. HALL - DAY\n\nA long chapter.\n")
    (tmp_path / "short.fountain").write_text("INT. HALL - DAY\n\nShort.\n")
    (tmp_path / "notes.txt").write_text("x")
    assert showcase.shortest_chapter(tmp_path) == tmp_path / "short.fountain"
    chapter = showcase.shortest_chapter()
    assert chapter.parent == ROOT / "tests" / "creative" / "chapters"
    assert chapter.suffix == ".fountain"
    with pytest.raises(FileNotFoundError, match=r"no \.fountain chapter"):
        showcase.shortest_chapter(tmp_path / "notes.txt")


def test_the_cast_and_style_book_cover_the_seeded_chapter(
    develop: ModuleType, tmp_path: Path
) -> None:
    """The worker refuses a chapter naming a character its registry lacks: the seeded cast has
    every speaker of the chapter, and the style book gives each a look and a voice."""
    from hydra_core.creative.chapter import parse_chapter  # noqa: PLC0415
    from hydra_core.creative.stylebook import load_style_book  # noqa: PLC0415

    showcase = develop.showcase
    known = {name.lower(): [name] for name in showcase.CAST}
    chapter = parse_chapter(showcase.shortest_chapter().read_text(), known)
    assert chapter.title == "The Glass Crown"
    showcase.write_style_book(tmp_path)
    style = load_style_book(tmp_path / "default" / "style.yaml")
    assert set(style.characters) == set(known)
    assert all(character.voice for character in style.characters.values())


def test_the_style_book_is_written_once(develop: ModuleType, tmp_path: Path) -> None:
    showcase = develop.showcase
    showcase.write_style_book(tmp_path)
    path = tmp_path / "default" / "style.yaml"
    assert path.read_text() == showcase.STYLE_BOOK
    path.write_text("style: watercolour\n")
    showcase.write_style_book(tmp_path)
    assert path.read_text() == "style: watercolour\n"


async def test_the_comfyui_is_the_tests_stand_in_unless_one_is_given(
    develop: ModuleType, socket_enabled: None
) -> None:
    showcase = develop.showcase
    site = showcase.ComfyUISite()
    await site.start()
    try:
        assert site.url.startswith("http://127.0.0.1:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{site.url}/system_stats") as response,
        ):
            assert response.status == 200
            assert "comfyui_version" in (await response.json())["system"]
        assert "the tests' stand-in" in site.note
        assert "--comfyui-url URL uses your own ComfyUI" in site.note
    finally:
        await site.stop()

    own = showcase.ComfyUISite("http://127.0.0.1:8188")
    await own.start()
    assert own.url == "http://127.0.0.1:8188"
    assert own.note == "creative: chapters are drawn by your ComfyUI at http://127.0.0.1:8188"
    await own.stop()


def test_comfyui_url_option(develop: ModuleType) -> None:
    assert develop.parse_args([]).comfyui_url is None
    options = develop.parse_args(["--comfyui-url", "http://127.0.0.1:8188"])
    assert options.comfyui_url == "http://127.0.0.1:8188"
