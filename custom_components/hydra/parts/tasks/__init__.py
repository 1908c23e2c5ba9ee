"""The tasks part: the worker's task queue, its entities, actions and task events."""
