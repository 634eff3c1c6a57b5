"""Running schemes: the registry, conversion, one job, measurement, the sweep, executors, the store."""
