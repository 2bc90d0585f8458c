"""The backup agent in the cluster (docs/operations.md#backups): the objects of
demigod.deploy.backup_workloads with what only a cluster has — the pods' settings, the
Secrets the gateway reads by reference, and its Secret files, which the agent copies.

- the sidecar joins the gateway's StatefulSet pod, on that replica's `data` claim;
- the CronJob (PostgreSQL registry only) takes the base backups; a SQLite registry lives
  on the gateway's volume, where the sidecar's Litestream takes its full snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence

from demigod.config import Settings
from demigod.deploy.backup_workloads import backup_sidecar, full_backup_cronjob
from demigod.deploy.kubernetes.names import GATEWAY
from demigod.deploy.workloads import JSONObject

CRONJOB_NAME = f"{GATEWAY}-backup-full"


def _with_gateway_secrets(container: JSONObject, env_from: Sequence[JSONObject]) -> JSONObject:
    """The gateway's Secret variables (database URL, S3 credentials) first, then the
    agent's own optional `demigod-backup-credentials`."""
    return {**container, "envFrom": [*env_from, *container["envFrom"]]}


def cluster_backup_sidecar(
    pod_settings: Settings,
    image: str,
    env_from: Sequence[JSONObject],
    secret_mounts: Sequence[JSONObject],
) -> JSONObject:
    """The continuous agent beside the gateway: its settings, Secrets and Secret files
    (the audit signing key and API keys, read-only), so a restore brings them back."""
    sidecar = _with_gateway_secrets(backup_sidecar(pod_settings, image=image), env_from)
    return {**sidecar, "volumeMounts": [*sidecar["volumeMounts"], *secret_mounts]}


def cluster_backup_cronjob(
    pod_settings: Settings, image: str, env_from: Sequence[JSONObject]
) -> JSONObject:
    """The PostgreSQL base backup every `full_every_hours`; the database URL reaches it
    from the gateway's `env` Secret, as it reaches the gateway."""
    cronjob = full_backup_cronjob(pod_settings, image=image, name=CRONJOB_NAME)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["containers"] = [_with_gateway_secrets(c, env_from) for c in pod["containers"]]
    return cronjob
