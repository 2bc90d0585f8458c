"""deploy/terraform: the provider-free placement module runs under `terraform test` and
agrees with demigod.deploy.placement on generated cases; the provider-bound modules parse
(python-hcl2), have the seed's interface, pass checkov, take the rendered variables, and
apply the rendered objects without a replica count of their own (their `locals`, run by
Terraform offline on the rendered objects)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from typer.testing import CliRunner

from demigod.cli import app
from demigod.config import EngineConfig, NodeClassConfig, PlacementConfig
from demigod.deploy.placement import ModelFootprint, PlacementError, place
from tests.conftest import require_binary
from tests.deploy.checkov import checkov
from tests.deploy.test_kubernetes import MESH

TERRAFORM = Path(__file__).parents[2] / "deploy" / "terraform"
GIB = 1024**3


def _terraform_env(tmp_path: Path) -> dict[str, str]:
    # No plugin downloads are possible here, and none is needed: the module has no provider.
    return {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc"),
    }


def _terraform_ok(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a terraform command offline; it must succeed (its output names why not)."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _cases() -> list[tuple[ModelFootprint, EngineConfig, PlacementConfig]]:
    """Footprints across the three bands, on the default classes and on a mixed set."""
    rng = random.Random(13)
    mixed = PlacementConfig(
        node_classes=[
            NodeClassConfig(name="small", memory_bytes=8 * GIB, cpu_cores=4),
            NodeClassConfig(name="large", memory_bytes=64 * GIB, cpu_cores=16),
            NodeClassConfig(
                name="a100",
                accelerator="nvidia",
                memory_bytes=96 * GIB,
                cpu_cores=8,
                gpus=4,
                gpu_memory_bytes=40 * GIB,
            ),
        ]
    )
    cases = []
    for index in range(24):
        parameters = rng.choice([1, 3, 7, 8, 10, 12, 13, 30, 70]) * 1_000_000_000
        footprint = ModelFootprint(
            parameters,
            int(parameters * rng.uniform(0.4, 2.2)),
            rng.choice([0, 1_622_016, 64 * 1024**2, 600 * 1024**2]),
        )
        engine = EngineConfig(slots=rng.choice([1, 8, 32]))
        cases.append((footprint, engine, mixed if index % 2 else PlacementConfig()))
    return cases


def _run_block(
    index: int, footprint: ModelFootprint, engine: EngineConfig, config: PlacementConfig
) -> str:
    classes = ", ".join(
        "{ "
        + ", ".join(
            f"{k} = {json.dumps(v)}"
            for k, v in c.model_dump(exclude={"node_selector", "tolerations"}).items()
        )
        + " }"
        for c in config.node_classes
    )
    variables = f"""    parameters               = {footprint.parameters}
    weights_bytes            = {footprint.weights_bytes}
    state_bytes_per_sequence = {footprint.state_bytes_per_sequence}
    slots                    = {engine.slots}
    state_cache_bytes        = {engine.state_cache.ram_bytes}
    overhead_bytes           = {config.overhead_bytes}
    memory_limit_ratio       = {config.memory_limit_ratio}
    node_classes             = [{classes}]"""
    try:
        placed = place("m", footprint, engine, config)
    except PlacementError:
        return (
            f'run "case_{index}" {{\n  command = plan\n  variables {{\n{variables}\n  }}\n'
            "  expect_failures = [output.node_class]\n}\n"
        )
    resources = placed.resources
    condition = (
        f'output.node_class == "{placed.node_class.name}" && output.gpus == {resources.gpus} '
        f"&& output.memory_request_bytes == {resources.memory_request_bytes} "
        f"&& output.memory_limit_bytes == {resources.memory_limit_bytes}"
    )
    return (
        f'run "case_{index}" {{\n  command = plan\n  variables {{\n{variables}\n  }}\n'
        f"  assert {{\n    condition     = {condition}\n"
        f'    error_message = "differs from the Python rule: {placed.reason}"\n  }}\n}}\n'
    )


def test_the_placement_module_agrees_with_the_python_rule(tmp_path: Path) -> None:
    terraform = require_binary("terraform")
    module = tmp_path / "placement"
    shutil.copytree(TERRAFORM / "modules" / "placement", module)
    cases = _cases()
    blocks = [_run_block(i, *case) for i, case in enumerate(cases)]
    assert sum("expect_failures" in b for b in blocks) in range(1, len(blocks) - 8)
    (module / "tests" / "generated.tftest.hcl").write_text("\n".join(blocks))
    env = _terraform_env(tmp_path)
    _terraform_ok([terraform, "init", "-backend=false", "-input=false"], module, env)
    tested = _terraform_ok([terraform, "test", "-no-color"], module, env, timeout=300)
    assert f"{len(blocks) + 3} passed, 0 failed" in tested.stdout  # + the 3 seed examples


def _parse(path: Path) -> dict[str, object]:
    with path.open() as handle:
        return hcl2.load(handle)


def test_the_modules_parse_and_have_the_seeds_interface(tmp_path: Path) -> None:
    terraform = require_binary("terraform")
    formatted = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", str(TERRAFORM)],
        env=_terraform_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert formatted.returncode == 0, f"terraform fmt would change: {formatted.stdout}"
    variables = {}
    for directory in ("router", "model", "placement"):
        parsed = [_parse(f) for f in sorted((TERRAFORM / "modules" / directory).glob("*.tf"))]
        variables[directory] = {
            name.strip('"') for p in parsed for block in p.get("variable", []) for name in block
        }
    assert {"replicas"} <= variables["router"]
    assert {"model_name", "quantization", "gpu"} <= variables["model"]
    root = _parse(TERRAFORM / "main.tf")
    modules = {name.strip('"'): body for block in root["module"] for name, body in block.items()}
    assert set(modules) == {"router", "model"}
    for body in modules.values():
        assert (TERRAFORM / body["source"].strip('"')).is_dir()


def _render(tmp_path: Path) -> Path:
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(MESH))
    result = CliRunner().invoke(
        app,
        [
            "deploy",
            "render",
            "k8s",
            "--config",
            str(tmp_path / "mesh.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "out"


def test_the_rendered_variables_fit_the_root_module(tmp_path: Path) -> None:
    tfvars = json.loads((_render(tmp_path) / "terraform" / "prod.tfvars.json").read_text())
    declared = {
        name.strip('"'): body
        for p in (_parse(TERRAFORM / "variables.tf"),)
        for block in p["variable"]
        for name, body in block.items()
    }
    required = {name for name, body in declared.items() if "default" not in body}
    assert required - {"manifests"} == set(tfvars)
    assert tfvars["router_replicas"] == 3
    assert tfvars["models"]["chat"]["quantization"] == "Q4_0"
    assert tfvars["models"]["falcon-h1-34b"] == {
        "label": "falcon-h1-34b",
        "quantization": "Q4_K_M",
        "gpu": True,
        "footprint": MESH["placement"]["footprints"]["falcon-h1-34b"],
    }


def test_checkov_passes_on_the_terraform() -> None:
    (report,) = checkov(TERRAFORM, "terraform")
    # checkov has no policy for kubernetes_manifest: the objects it applies are the rendered
    # manifests, which test_kubernetes.py runs checkov on. Here: it parses, nothing fails.
    summary = report.get("summary", report)
    assert summary["parsing_errors"] == 0 and summary["failed"] == 0, report


def _locals_block(text: str) -> str:
    """The module's `locals { ... }` block, verbatim (braces counted)."""
    start = text.index("locals {")
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if text[end] == "}" and depth == 0:
            return text[start : end + 1]
    raise AssertionError("unbalanced locals block")


def _module_locals(
    module: str, variables: dict[str, object], name: str, tmp_path: Path
) -> dict[str, Any]:
    """`local.NAME` of deploy/terraform/modules/MODULE for `variables`: its variables and
    locals without the provider-bound resources, applied by Terraform offline."""
    terraform = require_binary("terraform")
    scratch = tmp_path / module
    scratch.mkdir()
    source = TERRAFORM / "modules" / module
    shutil.copy(source / "variables.tf", scratch / "variables.tf")
    main = _locals_block((source / "main.tf").read_text())
    (scratch / "main.tf").write_text(f'{main}\noutput "value" {{\n  value = local.{name}\n}}\n')
    (scratch / "input.tfvars.json").write_text(json.dumps(variables))
    env = _terraform_env(tmp_path)
    _terraform_ok([terraform, "init", "-backend=false", "-input=false"], scratch, env)
    apply = [terraform, "apply", "-auto-approve", "-input=false", "-var-file=input.tfvars.json"]
    _terraform_ok(apply, scratch, env)
    shown = _terraform_ok([terraform, "output", "-json", "value"], scratch, env, timeout=60)
    value: dict[str, Any] = json.loads(shown.stdout)
    return value


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def prod_objects(rendered: Path) -> list[dict[str, Any]]:
    """The prod overlay as `kubectl kustomize` builds it (what main.tf decodes), with a
    `spec.replicas` put back on every workload, as in a manifest rendered before the
    autoscalers owned the count."""
    kubectl = require_binary("kubectl")
    built = subprocess.run(
        [kubectl, "kustomize", str(rendered / "overlays" / "prod")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    objects = [o for o in yaml.safe_load_all(built.stdout) if o]
    for workload in objects:
        if workload["kind"] in ("Deployment", "StatefulSet"):
            assert "replicas" not in workload["spec"]  # tests/deploy/test_kubernetes.py
            workload["spec"]["replicas"] = 7
    return objects


def _label(obj: dict[str, Any], name: str) -> str:
    return str(obj["metadata"].get("labels", {}).get(name, ""))


def _without_replicas(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "spec": {k: v for k, v in obj["spec"].items() if k != "replicas"}}


def test_the_router_applies_no_replica_count_and_floors_the_hpa(
    prod_objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The StatefulSet goes out without `spec.replicas` (the HPA's), the HPA with
    `replicas` as its minimum; the other objects as rendered."""
    gateway = [o for o in prod_objects if _label(o, "app.kubernetes.io/component") == "gateway"]
    assert {o["kind"] for o in gateway} == {
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    sized = _module_locals("router", {"replicas": 4, "objects": gateway}, "sized", tmp_path)
    assert set(sized) == {f"{o['kind']}/{o['metadata']['name']}" for o in gateway}
    for obj in gateway:
        applied = sized[f"{obj['kind']}/{obj['metadata']['name']}"]
        assert "replicas" not in applied["spec"]
        if obj["kind"] == "HorizontalPodAutoscaler":
            assert (applied["spec"]["minReplicas"], applied["spec"]["maxReplicas"]) == (4, 10)
            assert applied["spec"]["metrics"] == obj["spec"]["metrics"]
        else:
            assert applied == _without_replicas(obj)


def test_the_model_module_applies_no_replica_count(
    rendered: Path, prod_objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A model's Deployments go out without `spec.replicas` (the ScaledObject's); its
    objects otherwise as rendered, each annotated with the quantization."""
    chat = [o for o in prod_objects if _label(o, "demigod.io/model") == "chat"]
    assert {o["kind"] for o in chat} == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
    }
    tfvars = json.loads((rendered / "terraform" / "prod.tfvars.json").read_text())
    variables = {
        "model_name": "chat",
        "quantization": "Q4_0",
        "gpu": False,
        "footprint": tfvars["models"]["chat"]["footprint"],
        "sizing": tfvars["sizing"],
        "objects": chat,
    }
    manifests = _module_locals("model", variables, "manifests", tmp_path)
    assert len(manifests) == len(chat) == 8  # stable and candidate: 4 objects each
    for obj in chat:
        applied = manifests[f"{obj['kind']}/{obj['metadata']['name']}"]
        assert "replicas" not in applied["spec"]
        assert applied["metadata"]["annotations"] == {"demigod.io/quantization": "Q4_0"}
        assert applied["spec"] == _without_replicas(obj)["spec"]


def test_no_manifest_resource_fights_the_autoscalers() -> None:
    """`spec.replicas` is a computed field of every kubernetes_manifest that applies a
    workload: the value the autoscaler sets is accepted, never planned back (setting
    computed_fields replaces the provider's default of labels and annotations, so those
    stay in the list)."""
    for module in ("router", "model"):
        parsed = _parse(TERRAFORM / "modules" / module / "main.tf")
        [resource] = [
            body
            for block in parsed["resource"]
            for kind, named in block.items()
            if kind.strip('"') == "kubernetes_manifest"
            for body in named.values()
        ]
        fields = {str(f).strip('"') for f in resource["computed_fields"]}
        assert fields == {"metadata.annotations", "metadata.labels", "spec.replicas"}, module
