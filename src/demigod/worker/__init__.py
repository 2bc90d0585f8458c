"""Running model work off the event loop: schedulers that feed engines."""
