"""The quality part: image quality scoring and the review loop."""
