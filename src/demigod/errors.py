"""Errors about names, shared by every layer that knows models by name (the registry, the
routing policy, the canary): the one definition of an unknown model and an unknown
version. Each message names what does exist."""


class UnknownModelError(LookupError):
    """No model has the name asked for."""


class UnknownVersionError(LookupError):
    """The model has no version (or alias) of the label asked for."""
