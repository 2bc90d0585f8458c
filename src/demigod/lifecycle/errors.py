"""The base of every lifecycle step's error (pull, convert, quantize, validate, promote,
retire, snapshots, the demo build): the message is written for the operator, and
`demigod models ...` prints it and exits 1."""


class LifecycleError(Exception):
    """A lifecycle step failed or refused; the message says why."""
