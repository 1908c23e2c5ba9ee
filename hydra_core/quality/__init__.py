"""Image quality: CLIP scoring, the character registry, the review loop and what it learns."""
