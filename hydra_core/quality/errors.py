"""Requests the quality services refuse; ``status`` and ``code`` are what the API answers."""

from __future__ import annotations

from ..errors import Refusal


class QualityError(Refusal, code="invalid_body"):
    """A refused request: bad input, something missing, or scoring unavailable."""


class CharacterNotFoundError(QualityError, code="character_not_found", status=404):
    """No character with that id."""


class ReferenceNotFoundError(QualityError, code="reference_not_found", status=404):
    """The character has no reference image of that name."""


class AssetNotFoundError(QualityError, code="asset_not_found", status=404):
    """No asset with that id."""


class InvalidDecisionError(QualityError, code="invalid_decision"):
    """A review decision other than accept or reject."""


class AssetDecidedError(QualityError, code="asset_decided", status=409):
    """A person already decided the asset; a human decision is final."""


class QualityUnavailableError(QualityError, code="quality_unavailable", status=503):
    """Scoring cannot run here (open_clip missing, the model failed to load)."""
