"""Optional dependencies (pip extras), imported when a feature needs them.

A plain `pip install demigod` serves GGUF files; S3, Redis and PostgreSQL support are
extras (`pip install 'demigod[s3]'`, `[redis]`, `[postgres]`) so that install stays lean;
so are the one-pager's plot and PDF (`[report]`: matplotlib, reportlab).
"""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> the extra that installs it
EXTRA_OF = {
    "boto3": "s3",
    "botocore": "s3",
    "redis": "redis",
    "psycopg": "postgres",
    "matplotlib": "report",
    "reportlab": "report",
}


class MissingExtraError(ImportError):
    """A feature's optional dependency is not installed; the message names the extra."""


def require(module: str, feature: str) -> ModuleType:
    """Import `module` (e.g. "boto3", "redis.asyncio") for `feature` ("S3 snapshots").

    Raises MissingExtraError saying which extra to install when it is missing.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if exc.name is None or exc.name.partition(".")[0] != top:
            raise  # the module is there but something it imports is broken: say that
        extra = EXTRA_OF[top]
        raise MissingExtraError(
            f"{feature} needs {top!r}, which is not installed: pip install 'demigod[{extra}]'"
        ) from exc
