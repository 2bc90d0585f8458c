"""`demigod models convert` picks the backend from the architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demigod.cli import app
from tests.conftest import FamilyModels


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.slow
def test_a_transformers_only_family_is_registered_hf_native(
    family_models: FamilyModels, data_dir: Path
) -> None:
    result = CliRunner().invoke(
        app, ["models", "convert", "zamba", str(family_models.hf("zamba2")), "--json"]
    )
    assert result.exit_code == 0, result.output
    version = json.loads(result.stdout)
    assert (version["backend"], version["quantization"]) == ("transformers", "HF")
    assert "slower" in version["details"]["note"]
    assert Path(version["storage_uri"].removeprefix("file://"), "config.json").is_file()
    refused = CliRunner().invoke(app, ["models", "quantize", "zamba", "v1", "--type", "Q4_0"])
    assert refused.exit_code == 1 and "only GGUF quantizes" in refused.output


def test_an_unsupported_architecture_fails_fast_naming_it(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"})
    )
    result = CliRunner().invoke(app, ["models", "convert", "bert", str(folder)])
    assert result.exit_code == 1
    assert "BertForMaskedLM" in result.output
    assert not (data_dir / "store").exists()
