"""Windmill script, run by the schedule in retire_cron.schedule.yaml: snapshot to S3 and
delete locally every model version no alias points at that was neither served nor
promoted for `ttl_days` (`demigod models retire`)."""

from __future__ import annotations

from typing import Any

from f.demigod.cli import demigod_json


def main(config: str = "mesh.yaml", ttl_days: int = 0, dry_run: bool = False) -> dict[str, Any]:
    """ttl_days 0: lifecycle.retire_after_days from the config. Returns the versions retired
    (or due, with dry_run)."""
    args = ["models", "retire"]
    if ttl_days:
        args += ["--ttl-days", str(ttl_days)]
    if dry_run:
        args.append("--dry-run")
    versions = demigod_json(*args, config=config)
    return {"dry_run": dry_run, "count": len(versions), "versions": versions}
