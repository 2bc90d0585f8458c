"""`demigod deploy ...`: render deployment artefacts from the mesh's configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from demigod.deploy.placement import Placement

from demigod.cli_support import console, settings_or_exit
from demigod.config import Settings

deploy_app = typer.Typer(help="Render deployment artefacts from mesh.yaml.", no_args_is_help=True)
render_app = typer.Typer(help="Write configuration files for a deployment.", no_args_is_help=True)
deploy_app.add_typer(render_app, name="render")

# A gateway listening on every interface is scraped through loopback.
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


@render_app.command("observability")
def render_observability_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write into")],
    gateway: Annotated[
        str | None,
        typer.Option(help="HOST:PORT Prometheus scrapes [default: host:port from the config]"),
    ] = None,
    alertmanager: Annotated[str, typer.Option(help="HOST:PORT of Alertmanager")] = "127.0.0.1:9093",
    loki_url: Annotated[
        str, typer.Option(help="Loki push URL for Promtail")
    ] = "http://127.0.0.1:3100/loki/api/v1/push",
    log_glob: Annotated[
        str, typer.Option(help="files Promtail tails (the gateway's stderr, redirected)")
    ] = "/var/log/demigod/*.log",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list the written files as JSON")] = False,
) -> None:
    """Prometheus scrape config and alert rules, Alertmanager, Promtail and Grafana
    dashboards for this mesh, written under --out."""
    from demigod.deploy.observability import Targets, render_observability

    settings = settings_or_exit(config)
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    targets = Targets(
        gateway=gateway or f"{host}:{settings.port}",
        alertmanager=alertmanager,
        loki_push_url=loki_url,
        log_glob=log_glob,
    )
    written = render_observability(settings, targets, out)
    if as_json:
        typer.echo(json.dumps([str(path) for path in written]))
        return
    for path in written:
        console.print(f"wrote {path}")


@render_app.command("caddy")
def render_caddy_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write the Caddyfile into")],
    gateway: Annotated[
        str | None,
        typer.Option(help="HOST:PORT Caddy proxies to [default: host:port from the config]"),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="public domain: ACME certificates [default: localhost, Caddy's local CA]"
        ),
    ] = None,
    email: Annotated[str | None, typer.Option(help="ACME account e-mail (with --domain)")] = None,
    https_port: Annotated[
        int, typer.Option(min=1, max=65535, help="HTTPS port without --domain")
    ] = 8443,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="larger request bodies are refused with 413")
    ] = 10 * 1024 * 1024,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list the written files as JSON")] = False,
) -> None:
    """A Caddyfile for Caddy in front of the gateway: TLS, request size limit, security
    headers, streaming reverse proxy (no per-IP rate limit: Debian's Caddy lacks the module)."""
    from demigod.deploy.caddy import CaddySite, render_caddy

    settings = settings_or_exit(config)
    if email and not domain:
        console.print("[red]--email needs --domain[/red] (local certificates need no account)")
        raise typer.Exit(2)
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    site = CaddySite(
        gateway=gateway or f"{host}:{settings.port}",
        domain=domain,
        email=email,
        https_port=https_port,
        max_body_bytes=max_body_bytes,
    )
    written = render_caddy(site, out)
    if as_json:
        typer.echo(json.dumps([str(path) for path in written]))
        return
    for path in written:
        console.print(f"wrote {path}")


def _replica_counts(values: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        if not name or not count.isdigit() or int(count) < 1:
            raise typer.BadParameter(f"expected NAME=N with N >= 1, got {value!r}")
        counts[name] = int(count)
    return counts


@render_app.command("podman")
def render_podman_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write into")],
    port: Annotated[
        int | None, typer.Option(help="the gateway's port [default: port from the config]")
    ] = None,
    worker_port: Annotated[
        int | None,
        typer.Option(help="first loopback port of the workers, one each [default: port + 1]"),
    ] = None,
    replicas: Annotated[
        list[str] | None,
        typer.Option("--replicas", help="NAME=N worker containers for a model (default 1)"),
    ] = None,
    gateway_image: Annotated[
        str | None,
        typer.Option(help="[default: IMAGES.REGISTRY/demigod-gateway:IMAGES.TAG from the config]"),
    ] = None,
    worker_image: Annotated[
        str | None, typer.Option(help="CPU workers' image [default: .../demigod-worker-cpu:TAG]")
    ] = None,
    gpu_worker_image: Annotated[
        str | None, typer.Option(help="GPU workers' image [default: .../demigod-worker-cuda:TAG]")
    ] = None,
    name: Annotated[
        str, typer.Option(help="prefix of the pod and volume names (several deployments)")
    ] = "demigod",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list the written files as JSON")] = False,
) -> None:
    """Pods for `podman kube play` on this host: the gateway and one worker container per
    served model (the configured GGUF files and each registered model's stable version),
    sized by the placement rule; plus Quadlet units and systemd notes. With a backup
    destination (ops.backup.dir or snapshots.bucket), the backup agent beside the gateway
    and a systemd timer for full copies. Run it with `podman kube play OUT/demigod.yaml`."""
    from demigod.deploy.footprint import FootprintUnknownError, place_models
    from demigod.deploy.images import ImageSet
    from demigod.deploy.placement import PlacementError
    from demigod.deploy.podman import PodmanTarget, dns_label, render_podman
    from demigod.deploy.served import NotServableError, served_models
    from demigod.lifecycle.artefacts import ArtefactError
    from demigod.lifecycle.state_size import StateSizeError
    from demigod.registry import RegistryError

    settings = settings_or_exit(config)
    counts = _replica_counts(replicas or [])
    try:
        served = served_models(settings)
        if not served:
            console.print(
                "[red]nothing to serve:[/red] no `models` in the config and no stable version "
                "in the registry (`make models` builds and registers the demo models)"
            )
            raise typer.Exit(2)
        with console.status("placing models"):
            placed = place_models(
                settings.model_copy(update={"models": [m.config for m in served]})
            )
    except (NotServableError, RegistryError, ArtefactError) as exc:
        console.print(f"[red]cannot serve:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (FootprintUnknownError, PlacementError, StateSizeError) as exc:
        console.print(f"[red]cannot place:[/red] {exc}")
        raise typer.Exit(1) from exc
    if unknown := sorted(set(counts) - {m.worker.name for m in served}):
        console.print(f"[red]--replicas names models not served:[/red] {', '.join(unknown)}")
        raise typer.Exit(2)
    gateway_port = port or settings.port
    images = ImageSet.from_config(settings.images)
    target = PodmanTarget(
        gateway_image=gateway_image or images.gateway,
        worker_image=worker_image or images.worker(on_gpu=False),
        gpu_worker_image=gpu_worker_image or images.worker(on_gpu=True),
        gateway_port=gateway_port,
        first_worker_port=worker_port or gateway_port + 1,
        replicas=counts,
        name=dns_label(name),
    )
    try:
        written = render_podman(settings, served, {p.model: p for p in placed}, target, out)
    except ValueError as exc:
        console.print(f"[red]cannot render:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps([str(path) for path in written]))
        return
    for path in written:
        console.print(f"wrote {path}")


def _placed(config: Path | None) -> tuple[Settings, list[Placement]]:
    """The settings and each served model's placement; exits 2 on a configuration error,
    1 when a model cannot be measured or placed."""
    from demigod.deploy.footprint import FootprintUnknownError, place_models
    from demigod.deploy.placement import PlacementError
    from demigod.lifecycle.state_size import StateSizeError

    settings = settings_or_exit(config)
    if not settings.models:
        console.print("[red]no models in the configuration[/red] (the `models` list is empty)")
        raise typer.Exit(2)
    try:
        with console.status("measuring models"):
            return settings, place_models(settings)
    except (FootprintUnknownError, PlacementError, StateSizeError) as exc:
        console.print(f"[red]cannot place:[/red] {exc}")
        raise typer.Exit(1) from exc


@deploy_app.command("placement")
def placement_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
) -> None:
    """Where each served model's worker runs and what it requests: the node class chosen
    from its parameters and measured memory (placement in mesh.yaml), with the numbers.
    Models whose GGUF is not here need placement.footprints; others are measured (a load
    and a prefill of engine.n_ctx tokens each)."""
    _, placements = _placed(config)
    rows = [
        {
            "model": placed.model,
            "node_class": placed.node_class.name,
            "reason": placed.reason,
            "weights_bytes": placed.need.weights,
            "slot_states_bytes": placed.need.slot_states,
            "state_cache_bytes": placed.need.state_cache,
            "overhead_bytes": placed.need.overhead,
            "resources": placed.resources.kubernetes(),
        }
        for placed in placements
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(
        "model", "node class", "weights", "slot states", "memory req/limit", "cpu", "gpus"
    )
    for placed in placements:
        resources = placed.resources.kubernetes()
        table.add_row(
            placed.model,
            placed.node_class.name,
            f"{placed.need.weights / 1024**3:.2f} GiB",
            f"{placed.need.slot_states / 1024**2:.1f} MiB",
            f"{resources['requests']['memory']} / {resources['limits']['memory']}",
            resources["requests"]["cpu"],
            str(placed.resources.gpus),
        )
    Console().print(table)
    for placed in placements:
        console.print(f"{placed.model}: {placed.reason}")


@render_app.command("k8s")
def render_kubernetes_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write the tree into")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list the written files as JSON")] = False,
) -> None:
    """A Kustomize tree for Kubernetes: base, overlays dev/stage/prod (KEDA autoscaling),
    the plain-HPA alternative, InferencePools and HTTPRoutes (docs/kubernetes.md). Each
    worker is placed and sized as `demigod deploy placement` shows. With a backup bucket
    (snapshots.bucket), the backup agent beside the gateway and, for a PostgreSQL
    registry, a base-backup CronJob."""
    from demigod.deploy.kubernetes import render_kubernetes

    settings, placements = _placed(config)
    try:
        written = render_kubernetes(settings, placements, out)
    except ValueError as exc:
        console.print(f"[red]cannot render:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps([str(path) for path in written]))
        return
    for path in written:
        console.print(f"wrote {path}")
