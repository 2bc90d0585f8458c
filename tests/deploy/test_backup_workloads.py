"""The backup agent as deploy objects: validated against the official Kubernetes schemas,
and the systemd units checked by systemd itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from demigod.config import Settings
from demigod.deploy.backup_workloads import (
    CREDENTIALS_SECRET,
    backup_sidecar,
    cron_schedule,
    full_backup_cronjob,
    full_backup_units,
)
from demigod.deploy.workloads import (
    DATA_VOLUME,
    TMP_VOLUME,
    gateway_container,
    pod_spec,
)
from tests.conftest import require_binary

KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
IMAGE = "registry.example/demigod-gateway:1.0"
SETTINGS = Settings(
    database_url="postgresql+psycopg://demigod@db:5432/registry",
    snapshots={"endpoint_url": "http://minio:9000", "bucket": "demigod"},
    ops={"backup": {"interval_seconds": 2, "full_every_hours": 6}},
)


def _validate(obj: dict[str, object]) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_gateway_pod_with_its_backup_sidecar_validates() -> None:
    sidecar = backup_sidecar(SETTINGS, image=IMAGE)
    spec = pod_spec(
        [gateway_container(SETTINGS, [], image=IMAGE), sidecar],
        {DATA_VOLUME: {"emptyDir": {}}, TMP_VOLUME: {"emptyDir": {}}},
    )
    _validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gw"}, "spec": spec})
    assert sidecar["args"][:3] == ["ops", "backup", "--continuous"]
    env = {item["name"]: item["value"] for item in sidecar["env"]}
    assert "interval_seconds" in env["DEMIGOD_OPS"]  # the agent reads the same config
    assert sidecar["envFrom"] == [{"secretRef": {"name": CREDENTIALS_SECRET, "optional": True}}]
    # Same data folder as the gateway: the audit log and keys it writes are what is copied.
    gateway = spec["containers"][0]
    assert [m for m in gateway["volumeMounts"] if m["name"] == DATA_VOLUME] == [
        m for m in sidecar["volumeMounts"] if m["name"] == DATA_VOLUME
    ]


def test_the_full_backup_cronjob_validates() -> None:
    cronjob = full_backup_cronjob(SETTINGS, image=IMAGE)
    _validate(cronjob)
    assert cronjob["spec"]["schedule"] == "0 */6 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize(
    ("hours", "schedule"),
    [
        (0.25, "0 */1 * * *"),
        (5, "0 */4 * * *"),
        (12, "0 */12 * * *"),
        (23.9, "0 */12 * * *"),
        (24, "0 3 * * *"),
        (72, "0 3 */3 * *"),
    ],
)
def test_cron_schedules_are_never_less_frequent_than_asked(hours: float, schedule: str) -> None:
    assert cron_schedule(hours) == schedule


def test_the_systemd_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    podman = require_binary("podman")
    # A backup directory with a space: mounted as one word.
    backup = SETTINGS.ops.backup.model_copy(update={"dir": Path("/srv/demigod backups")})
    ops = SETTINGS.ops.model_copy(update={"backup": backup})
    tricky = SETTINGS.model_copy(update={"default_model": "odd%name$HOME", "ops": ops})
    units = full_backup_units(tricky, image=IMAGE, data_volume="demigod-data", podman=podman)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OnUnitActiveSec=6h" in units["demigod-backup-full.timer"]
    service = units["demigod-backup-full.service"]
    assert "--volume demigod-data:/var/lib/demigod" in service
    assert '"odd%%name$$HOME"' in service  # neither a specifier nor a variable to systemd
    assert '--volume "/srv/demigod backups:/srv/demigod backups"' in service
