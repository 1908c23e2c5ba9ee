"""Release engineering: scripts/bump-version on a copy of the repository, and the GitHub
workflows' shapes (GitHub cannot run here; actionlint's PyPI wheel builds only by downloading
its binary, so these checks read the YAML)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUMP = ROOT / "scripts" / "bump-version"
WORKFLOWS = ROOT / ".github" / "workflows"
VERSIONED = (
    "pyproject.toml",
    "hydra_core/__init__.py",
    "custom_components/hydra/manifest.json",
    "addon/config.yaml",
    "addon/Dockerfile",
    "addon/compose.yaml",
    "CHANGELOG.md",
    "addon/CHANGELOG.md",
)


def bump(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUMP), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files that carry the version, copied as they are in the repository."""
    for name in VERSIONED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_repository_has_one_version() -> None:
    shown = bump(ROOT, "--show")
    assert shown.returncode == 0, shown.stderr
    version = shown.stdout.strip()
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()


def test_bump_writes_one_version_everywhere(copy: Path) -> None:
    old = bump(copy, "--show").stdout.strip()
    done = bump(copy, "0.2.0")
    assert done.returncode == 0, done.stderr
    assert bump(copy, "--show").stdout.strip() == "0.2.0"

    manifest = json.loads((copy / "custom_components/hydra/manifest.json").read_text())
    assert manifest["version"] == "0.2.0"
    assert manifest["requirements"] == ["hydra-homelab==0.2.0"]
    assert yaml.safe_load((copy / "addon/config.yaml").read_text())["version"] == "0.2.0"
    assert '__version__ = "0.2.0"' in (copy / "hydra_core/__init__.py").read_text()
    assert "==0.2.0" in (copy / "addon/Dockerfile").read_text()

    changelog = (copy / "CHANGELOG.md").read_text()
    today = datetime.date.today().isoformat()
    # What was unreleased is 0.2.0's now, under a new empty Unreleased.
    assert f"## [Unreleased]\n\n## [0.2.0] - {today}\n\n### Added" in changelog
    assert f"## [{old}]" in changelog
    assert "compare/v0.2.0...HEAD" in changelog
    assert f"[0.2.0]: https://github.com/hydra-homelab/hydra/compare/v{old}...v0.2.0" in changelog
    addon_changelog = (copy / "addon/CHANGELOG.md").read_text()
    assert addon_changelog.index("## 0.2.0") < addon_changelog.index(f"## {old}")


def test_bump_refuses_what_it_cannot_do_and_changes_nothing(copy: Path) -> None:
    before = {name: (copy / name).read_text() for name in VERSIONED}
    old = bump(copy, "--show").stdout.strip()
    for args, message in (
        (("two",), "is not a version"),
        ((old,), "already"),
    ):
        refused = bump(copy, *args)
        assert refused.returncode == 1
        assert message in refused.stderr
    # A file that drifted is named, and nothing is written.
    config = copy / "addon/config.yaml"
    config.write_text(config.read_text().replace(f'version: "{old}"', 'version: "9.9.9"'))
    drifted = bump(copy, "0.3.0")
    assert drifted.returncode == 1
    assert "addon/config.yaml" in drifted.stderr
    assert bump(copy, "--show").returncode == 1
    for name, text in before.items():
        if name != "addon/config.yaml":
            assert (copy / name).read_text() == text, name


# The workflows ---------------------------------------------------------------------------


def workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key "on" as True.
    data["on"] = data.pop(True)
    return data


def steps_using(data: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [
        step
        for job in data["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith(action)
    ]


@pytest.mark.parametrize("name", sorted(path.name for path in WORKFLOWS.glob("*.yml")))
def test_every_workflow_has_the_shape_github_runs(name: str) -> None:
    data = workflow(name)
    assert data["name"]
    assert data["on"]
    assert data["permissions"] == {"contents": "read"}  # each job asks for more itself
    for job_id, job in data["jobs"].items():
        assert job["runs-on"].startswith("ubuntu-"), job_id
        for need in [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []):
            assert need in data["jobs"], (job_id, need)
        assert job["steps"], job_id
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (job_id, step)
            if step.get("uses", "").startswith("docker://"):
                assert step["uses"].rpartition(":")[2][0].isdigit(), step  # a tagged image
            elif "uses" in step:
                action, _, ref = step["uses"].partition("@")
                assert action.count("/") >= 1
                assert ref, (job_id, step["uses"])  # always pinned to a tag or branch
            else:
                for line in step["run"].splitlines():
                    for script in ("scripts/test", "scripts/system-setup", "scripts/bump-version"):
                        if script in line.split():
                            assert (ROOT / script).exists(), script


def test_hacs_and_hassfest_validate_every_change() -> None:
    data = workflow("validate.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    (hacs,) = steps_using(data, "hacs/action")
    assert hacs["with"]["category"] == "integration"
    assert steps_using(data, "home-assistant/actions/hassfest")
    # GitHub can fetch actionlint, which cannot be installed here: it checks these workflows.
    assert steps_using(data, "docker://rhysd/actionlint:")
    assert json.loads((ROOT / "hacs.json").read_text())["name"] == "Hydra"


def test_tests_run_scripts_test() -> None:
    data = workflow("tests.yml")
    runs = [step.get("run") for step in data["jobs"]["test"]["steps"]]
    assert "scripts/test" in runs


def test_a_tag_publishes_the_wheel_and_the_addon_images() -> None:
    data = workflow("release.yml")
    assert data["on"]["push"]["tags"] == ["v*"]
    jobs = data["jobs"]
    # PyPI trusted publishing: an OIDC token and an environment, no password.
    (publish,) = steps_using(data, "pypa/gh-action-pypi-publish")
    assert "password" not in publish.get("with", {})
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert jobs["pypi"]["environment"]["name"] == "pypi"
    assert "refs/tags/v" in jobs["pypi"]["if"]
    # The tag must be the version every file carries.
    assert any("bump-version --show" in (step.get("run") or "") for step in jobs["build"]["steps"])
    # Both add-on architectures, built after the wheel they install is on PyPI.
    addon = jobs["addon"]
    assert "pypi" in addon["needs"]
    arches = set(addon["strategy"]["matrix"]["arch"])
    assert arches == set(yaml.safe_load((ROOT / "addon/config.yaml").read_text())["arch"])
    (builder,) = steps_using(data, "home-assistant/builder")
    assert "--target /data/addon" in builder["with"]["args"]
    assert "--${{ matrix.arch }}" in builder["with"]["args"]
