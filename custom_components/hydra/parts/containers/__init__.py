"""The containers part: the worker's container engine, each container a device with its entities,
self-healing, the action log and the repairs issues."""
