"""`demigod deploy placement` measures a real GGUF and places it; declared footprints place
models whose files are elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from demigod.cli import app
from demigod.deploy.footprint import measure_footprint
from demigod.lifecycle.state_size import sequence_state_bytes

GIB = 1024**3


def test_placement_measures_the_gguf_and_uses_declared_footprints(
    tiny_model: Path, tmp_path: Path
) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "engine": {"n_ctx": 256, "slots": 4},
                "models": [
                    {"name": "tiny", "path": str(tiny_model)},
                    {"name": "jamba-52b", "path": "/models/jamba-52b.gguf"},
                ],
                "placement": {
                    "footprints": {
                        "jamba-52b": {
                            "parameters": 52_000_000_000,
                            "weights_bytes": 20 * GIB,
                            "state_bytes_per_sequence": 200 * 1024**2,
                        }
                    }
                },
            }
        )
    )
    result = CliRunner().invoke(app, ["deploy", "placement", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    tiny, jamba = json.loads(result.stdout)

    measured = measure_footprint(tiny_model, 256)
    assert measured.weights_bytes == tiny_model.stat().st_size
    assert measured.state_bytes_per_sequence == sequence_state_bytes(tiny_model, [256])[256] > 0
    assert 0 < measured.parameters < 10_000_000
    assert tiny["node_class"] == "cpu"
    assert tiny["slot_states_bytes"] == 4 * measured.state_bytes_per_sequence
    assert tiny["weights_bytes"] == measured.weights_bytes

    assert jamba["node_class"] == "gpu"
    assert jamba["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_placement_names_the_missing_footprint(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(yaml.safe_dump({"models": [{"name": "big", "path": "/models/big.gguf"}]}))
    result = CliRunner().invoke(app, ["deploy", "placement", "--config", str(config)])
    assert result.exit_code == 1
    assert "placement.footprints.big" in result.output
