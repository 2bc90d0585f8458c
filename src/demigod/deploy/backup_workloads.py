"""The backup agent as deploy objects, for the renderers to include (pure: no I/O).

- `backup_sidecar`: a container for the gateway's pod running
  `demigod ops backup --continuous` on the gateway's data volume (audit log, keys, canary
  state, a SQLite registry): the continuous copy, RPO about `interval_seconds`. Kubernetes
  and `podman kube play` run the same container (deploy.workloads' conventions: paths,
  environment, security context).
- `full_backup_cronjob`: a Kubernetes CronJob running the one-shot `demigod ops backup`
  every `full_every_hours` — the PostgreSQL base backup (a SQLite registry in a cluster
  lives on the gateway's volume, which a CronJob's pod cannot mount; its sidecar's
  Litestream takes the full snapshots).
- `full_backup_units`: the same one-shot copy on a Podman host, as a systemd service and
  timer (`podman run` on the gateway's data volume, so it works for SQLite too).

A directory destination (`ops.backup.dir`) is mounted at its own path (volume
`BACKUPS_VOLUME`, backed by the renderer: a host directory on Podman). S3 credentials come
from a Secret (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) or an
environment file, never from the rendered objects.

The renderers (`deploy render k8s|podman`) include these objects when `backup_configured`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from demigod.config import Settings
from demigod.deploy.workloads import (
    DATA_DIR,
    DATA_VOLUME,
    TMP_DIR,
    TMP_VOLUME,
    container_env,
    container_security_context,
    gateway_settings,
    pod_spec,
)

JSONObject = dict[str, Any]
SIDECAR_NAME = "backup"
BACKUPS_VOLUME = "backups"
CREDENTIALS_SECRET = "demigod-backup-credentials"
CREDENTIALS_ENV_FILE = "/etc/demigod/backup.env"
UNIT_PREFIX = "demigod-backup-full"


def backup_configured(settings: Settings) -> bool:
    """Whether backups have a destination (`ops.backup.dir`, else the snapshots bucket):
    what `demigod ops backup` needs to run, so what makes the renderers include it."""
    return settings.ops.backup.dir is not None or settings.snapshots.bucket is not None


def registry_is_postgres(settings: Settings) -> bool:
    """Whether the registry is a PostgreSQL server (base backups on a schedule) rather
    than SQLite (replicated by the sidecar's Litestream)."""
    url = settings.database_url
    return url is not None and make_url(url).get_backend_name() == "postgresql"


def _backup_container(settings: Settings, image: str, args: list[str], name: str) -> JSONObject:
    mounts = [
        {"name": DATA_VOLUME, "mountPath": str(DATA_DIR)},
        {"name": TMP_VOLUME, "mountPath": str(TMP_DIR)},
    ]
    if settings.ops.backup.dir is not None:
        mounts.append({"name": BACKUPS_VOLUME, "mountPath": str(settings.ops.backup.dir)})
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        # The gateway's settings, so the agent finds the files where the gateway keeps them.
        "env": container_env(gateway_settings(settings, [])),
        "envFrom": [{"secretRef": {"name": CREDENTIALS_SECRET, "optional": True}}],
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
    }


def backup_sidecar(settings: Settings, *, image: str) -> JSONObject:
    """The continuous backup agent, a second container in the gateway's pod (it mounts the
    pod's `data` and `tmp` volumes)."""
    return _backup_container(
        settings, image, ["ops", "backup", "--continuous", "--json"], SIDECAR_NAME
    )


def cron_schedule(hours: float) -> str:
    """A cron schedule at least as frequent as every `hours`: every N hours for N dividing
    24, else every N days at 03:00 (N rounded down, at least 1)."""
    if hours < 24:
        every = next(n for n in (12, 8, 6, 4, 3, 2, 1) if n <= max(hours, 1))
        return f"0 */{every} * * *"
    days = int(hours // 24)
    return "0 3 * * *" if days == 1 else f"0 3 */{days} * *"


def full_backup_cronjob(settings: Settings, *, image: str, name: str = UNIT_PREFIX) -> JSONObject:
    """A batch/v1 CronJob taking the one-shot full copy every `full_every_hours` (never two
    at once)."""
    container = _backup_container(settings, image, ["ops", "backup", "--json"], "backup")
    spec = pod_spec([container], {DATA_VOLUME: {"emptyDir": {}}, TMP_VOLUME: {"emptyDir": {}}})
    spec["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "backup"}},
        "spec": {
            "schedule": cron_schedule(settings.ops.backup.full_every_hours),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 3,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/component": "backup"}},
                        "spec": spec,
                    },
                }
            },
        },
    }


def full_backup_units(
    settings: Settings, *, image: str, data_volume: str, podman: str = "/usr/bin/podman"
) -> dict[str, str]:
    """`demigod-backup-full.service` (one-shot `podman run` of `demigod ops backup` on
    the gateway's data volume) and `demigod-backup-full.timer` starting it every
    `full_every_hours` (and at boot when a run was missed)."""
    env = " ".join(
        f"--env {item['name']}={_systemd_quote(str(item['value']))}"
        for item in container_env(gateway_settings(settings, []))
    )
    hours = settings.ops.backup.full_every_hours
    volumes = f"--volume {data_volume}:{DATA_DIR}"
    if (directory := settings.ops.backup.dir) is not None:
        volumes += f" --volume {_systemd_quote(f'{directory}:{directory}')}"
    service = f"""[Unit]
Description=DemiGod full backup (registry base copy, audit log, keys, model files)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile=-{CREDENTIALS_ENV_FILE}
ExecStart={podman} run --rm --network host \\
    --env AWS_ACCESS_KEY_ID --env AWS_SECRET_ACCESS_KEY --env AWS_DEFAULT_REGION \\
    {env} \\
    {volumes} --tmpfs {TMP_DIR} \\
    {image} ops backup --json
"""
    timer = f"""[Unit]
Description=DemiGod full backup every {hours:g} hours

[Timer]
OnBootSec=15min
OnUnitActiveSec={hours:g}h
Persistent=true
Unit={UNIT_PREFIX}.service

[Install]
WantedBy=timers.target
"""
    return {f"{UNIT_PREFIX}.service": service, f"{UNIT_PREFIX}.timer": timer}


def _systemd_quote(value: str) -> str:
    """One word for systemd's command-line parser: quoted, with quotes, backslashes,
    specifiers (%) and variable references ($) escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'
