"""The rendered full-backup jobs run from the gateway image against a real PostgreSQL
registry: the Kubernetes CronJob `demigod-gateway-backup-full` (to S3, the only destination
a cluster render takes) and the Podman render's systemd service (to a bind-mounted
directory). Each must leave a PostgreSQL base backup taken by the image's pg_basebackup.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from demigod.ops.postgres_cluster import PostgresCluster
from demigod.registry import Registry
from tests.conftest import S3Server
from tests.containers.conftest import Images, podman, podman_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
BACKUP_TIMEOUT = 300
BASE_BACKUP = re.compile(r"registry/postgres/base/(?P<stamp>[0-9T.]+Z)/(?P<name>[^/]+)$")


# A render places a model: one declared by its footprint (no file needed here).
MODEL = {
    "models": [{"name": "chat", "path": "/srv/models/chat.Q4_0.gguf"}],
    "placement": {
        "footprints": {
            "chat": {
                "parameters": 1_400_000_000,
                "weights_bytes": 860_000_000,
                "state_bytes_per_sequence": 1_622_016,
            }
        }
    },
}


def render(kind: str, out: Path, config: dict[str, Any], *args: str) -> None:
    config_file = out.parent / f"{kind}-mesh.yaml"
    config_file.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "demigod", "deploy", "render", kind, "--out", str(out),
         "--config", str(config_file), *args],
        cwd=out.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def image_config(images: Images) -> dict[str, str]:
    """`images:` naming the image the suite built (REGISTRY/demigod-gateway:TAG)."""
    repository, _, tag = images.gateway.rpartition(":")
    return {"registry": repository.removesuffix("/demigod-gateway"), "tag": tag}


def kubelet_run_args(cronjob: dict[str, Any], secret_env: dict[str, str]) -> list[str]:
    """`podman run` arguments doing what a kubelet does with the CronJob's one container:
    its user, read-only root, no capabilities, its emptyDir volumes (as tmpfs), its
    variables and the Secrets' (`secret_env`: what the `env` and `s3` Secrets hold), the
    image's entrypoint with the container's args."""
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "command" not in container  # the image's ENTRYPOINT, `demigod`
    context = container["securityContext"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    args = ["run", "--rm", "--network", "host",
            "--user", f"{context['runAsUser']}:{context['runAsGroup']}"]  # fmt: skip
    if context["readOnlyRootFilesystem"]:
        args.append("--read-only")
    if context["capabilities"]["drop"] == ["ALL"]:
        args += ["--cap-drop", "all"]
    if not context["allowPrivilegeEscalation"]:
        args += ["--security-opt", "no-new-privileges"]
    for mount in container["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]], mount  # anything else: extend this
        args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
    for variable in container["env"]:
        args += ["--env", f"{variable['name']}={variable['value']}"]
    for name, value in secret_env.items():
        args += ["--env", f"{name}={value}"]
    return [*args, container["image"], *container["args"]]


def exec_start(unit: str) -> list[str]:
    """The service's ExecStart as argv: continuation lines joined, systemd's quoting and
    its doubled `%` and `$` undone."""
    found = re.search(r"^ExecStart=(.*?)(?:\n\n|\n\[|\Z)", unit, re.M | re.S)
    assert found is not None, unit
    line = found.group(1).replace("\\\n", " ").replace("%%", "%").replace("$$", "$")
    return shlex.split(line)


def check_base_backup(files: dict[str, bytes], postgres: PostgresCluster) -> str:
    """`files` (backup key -> content) hold one complete base backup of `postgres`'s
    cluster; returns its stamp."""
    found = {(m["stamp"], m["name"]) for key in files if (m := BASE_BACKUP.search(key))}
    stamps = {stamp for stamp, _ in found}
    assert len(stamps) == 1, sorted(files)
    [stamp] = stamps
    assert {(stamp, "base.tar.gz"), (stamp, "done")} <= found, sorted(files)
    content = {m["name"]: files[key] for key in files if (m := BASE_BACKUP.search(key))}
    with tarfile.open(fileobj=io.BytesIO(content["base.tar.gz"])) as tar:
        label = tar.extractfile("backup_label").read().decode()  # type: ignore[union-attr]
        version = tar.extractfile("PG_VERSION").read().decode().strip()  # type: ignore[union-attr]
        assert "global/pg_control" in tar.getnames()
    assert f"LABEL: demigod {stamp}" in label
    start = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", label)
    assert start is not None and content["done"].decode() == start.group(1)
    # The cluster the suite started, whose major the image's client had to reach.
    assert version == (postgres.data / "PG_VERSION").read_text().strip()
    return stamp


def registry_url(postgres: PostgresCluster) -> str:
    """A fresh registry database on the suite's server, migrated."""
    url = postgres.create_database()
    Registry(url, actor="tester").close()
    return url


def test_the_rendered_cronjob_takes_a_base_backup_with_the_gateway_image(
    images: Images,
    postgres: PostgresCluster,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    import boto3

    bucket = f"cronjob-{secrets.token_hex(4)}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "demigod-test",
        "AWS_SECRET_ACCESS_KEY": "demigod-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name=credentials["AWS_DEFAULT_REGION"],
    )
    s3.create_bucket(Bucket=bucket)
    url = registry_url(postgres)
    config = {
        **MODEL,
        "database_url": url,
        "snapshots": {"endpoint_url": s3_server.endpoint_url, "bucket": bucket},
        "images": image_config(images),
    }
    render("k8s", tmp_path / "k8s", config)
    [cronjob] = yaml.safe_load_all((tmp_path / "k8s" / "base" / "backup.yaml").read_text())
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == (
        "demigod-gateway-backup-full"
    )
    # The database URL reaches the job from the `env` Secret, never the rendered object.
    assert url not in json.dumps(cronjob)
    args = kubelet_run_args(cronjob, {"DEMIGOD_DATABASE_URL": url, **credentials})
    assert images.gateway in args and args[-3:] == ["ops", "backup", "--json"]

    out = podman(*args, timeout=BACKUP_TIMEOUT)
    report = json.loads(out)
    assert report["errors"] == [] and report["registry"].startswith("postgresql base backup")

    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    files = {
        key: s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in keys
        if BASE_BACKUP.search(key)
    }
    stamp = check_base_backup(files, postgres)
    assert report["registry"] == f"postgresql base backup {stamp}"


def test_the_rendered_timer_service_takes_a_base_backup_into_a_directory(
    images: Images, postgres: PostgresCluster, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    backups.chmod(0o777)  # the container's user (10001) writes there
    name = f"dgtest-{secrets.token_hex(3)}"
    model = tmp_path / "chat.Q4_0.gguf"  # a host render mounts the file: it must exist
    model.write_bytes(b"GGUF")
    config = {
        **MODEL,
        "models": [{"name": "chat", "path": str(model)}],
        "database_url": registry_url(postgres),
        "ops": {"backup": {"dir": str(backups)}},
        "images": image_config(images),
    }
    render("podman", tmp_path / "podman", config, "--name", name)
    service = (tmp_path / "podman" / "systemd" / "demigod-backup-full.service").read_text()
    argv = exec_start(service)
    assert argv[:2] == ["/usr/bin/podman", "run"] and argv[-3:] == ["ops", "backup", "--json"]
    assert f"{backups}:{backups}" in argv  # the destination, bind-mounted at its own path
    try:
        done = subprocess.run(
            ["podman", *argv[1:]],
            env=podman_environment(),
            capture_output=True,
            text=True,
            timeout=BACKUP_TIMEOUT,
            check=False,
        )
    finally:
        podman("volume", "rm", "--force", f"{name}-data", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == [], report

    files = {
        str(path.relative_to(backups)): path.read_bytes()
        for path in backups.rglob("*")
        if path.is_file() and BASE_BACKUP.search(str(path.relative_to(backups)))
    }
    stamp = check_base_backup(files, postgres)
    assert report["registry"] == f"postgresql base backup {stamp}"
