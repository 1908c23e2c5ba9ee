"""Requests the quality services refuse; ``status`` and ``code`` are what the API answers."""

from __future__ import annotations


class QualityError(Exception):
    """A refused request: bad input, something missing, or scoring unavailable."""

    status = 400
    code = "invalid_body"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CharacterNotFoundError(QualityError):
    """No character with that id."""

    status = 404
    code = "character_not_found"


class ReferenceNotFoundError(QualityError):
    """The character has no reference image of that name."""

    status = 404
    code = "reference_not_found"


class AssetNotFoundError(QualityError):
    """No asset with that id."""

    status = 404
    code = "asset_not_found"


class InvalidDecisionError(QualityError):
    """A review decision other than accept or reject."""

    code = "invalid_decision"


class AssetDecidedError(QualityError):
    """A person already decided the asset; a human decision is final."""

    status = 409
    code = "asset_decided"


class QualityUnavailableError(QualityError):
    """Scoring cannot run here (open_clip missing, the model failed to load)."""

    status = 503
    code = "quality_unavailable"
