"""Planning: device and precision for this machine, and the run's memory, disk and time,
decided from shapes and counts before any weight loads; hands the training stage its plan."""
