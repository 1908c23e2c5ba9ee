"""A chapter in words: what the notifications, the briefing and Assist say of it."""

from __future__ import annotations

from collections.abc import Sequence

from hydra_core.creative.models import ChapterStatus

from ...wording import join, plural

# What a running chapter is doing, by stage.
DOING = {
    "images": "drawing its images",
    "voices": "speaking its lines",
    "package": "writing its package",
}


def chapter_name(chapter: ChapterStatus) -> str:
    """The name the chapter was sent with, else its title, else its number."""
    return chapter.name or chapter.title or f"chapter {chapter.id}"


def made(chapter: ChapterStatus, *, accepted: bool = False) -> str:
    """What a finished chapter made: "24 images (3 wait for review) and 20 voice lines"; with
    ``accepted``, how many images passed their score too."""
    images = plural(chapter.images.done, "image")
    notes = []
    if accepted and chapter.auto_accepted:
        notes.append(f"{chapter.auto_accepted} accepted automatically")
    if chapter.pending_review:
        verb = "waits" if chapter.pending_review == 1 else "wait"
        notes.append(f"{chapter.pending_review} {verb} for review")
    if chapter.failed_assets:
        notes.append(f"{len(chapter.failed_assets)} could not be made")
    if notes:
        images += f" ({', '.join(notes)})"
    parts = [images]
    if chapter.voices.total:
        parts.append(plural(chapter.voices.done, "voice line"))
    return join(parts)


def started(chapters: Sequence[ChapterStatus]) -> str:
    """The chapters the overnight pipeline started: "2 chapters waiting for it are queued:
    The Glass Crown and chapter 4."."""
    verb = "is" if len(chapters) == 1 else "are"
    names = join([chapter_name(chapter) for chapter in chapters])
    return f"{plural(len(chapters), 'chapter')} waiting for it {verb} queued: {names}."
