"""Self-tests of the container engine that the container-monitoring tests run against."""
