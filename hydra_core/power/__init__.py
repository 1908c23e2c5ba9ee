"""GPU power profiles: eco, balanced, full or a limit in watts, kept across restarts."""
