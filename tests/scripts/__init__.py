"""Tests of the project's scripts (scripts/develop)."""
