"""Dataset configuration loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CDNOW_CONFIG, TELCO_CONFIG

from valuecube.features.config import DIMENSIONS, ConfigError, DatasetConfig, load_config


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


@pytest.fixture()
def telco_raw() -> dict:
    return yaml.safe_load(TELCO_CONFIG.read_text())


def test_shipped_configs_load() -> None:
    telco = load_config(TELCO_CONFIG)
    cdnow = load_config(CDNOW_CONFIG)
    assert isinstance(telco, DatasetConfig) and telco.name == "telco"
    assert cdnow.input.shape == "transaction_log" and cdnow.clv.method == "bgnbd"
    assert Path(telco.data).is_file() and Path(cdnow.data).is_file()
    assert list(telco.tree.dimensions()) == list(DIMENSIONS)
    # fractions like "1/3" are parsed
    assert telco.tree.current_value.comparison[1][0] == pytest.approx(1 / 3)
    assert "price_per_service" in telco.tree.factor_names()
    assert len(telco.tree.factor_names()) == len(set(telco.tree.factor_names()))


def test_unknown_key_named(tmp_path, telco_raw) -> None:
    telco_raw["segmentation"]["treshold"] = 5
    with pytest.raises(ConfigError, match=r"segmentation\.treshold"):
        load_config(_write(tmp_path, telco_raw))


def test_undefined_tree_factor(tmp_path, telco_raw) -> None:
    telco_raw["tree"]["relative_advantage"]["indicators"]["financial"]["factors"] = {
        "ghost_factor": "cost"
    }
    with pytest.raises(ConfigError, match="ghost_factor"):
        load_config(_write(tmp_path, telco_raw))


def test_comparison_size_mismatch(tmp_path, telco_raw) -> None:
    telco_raw["tree"]["potential_value"]["comparison"] = [[1, 2], ["1/2", 1]]
    with pytest.raises(ConfigError, match="potential_value") as info:
        load_config(_write(tmp_path, telco_raw))
    assert "3 children" in str(info.value)


def test_bad_direction_and_bad_factor_form(tmp_path, telco_raw) -> None:
    telco_raw["tree"]["relative_advantage"]["indicators"]["financial"]["factors"] = {
        "price_per_service": "cheap"
    }
    with pytest.raises(ConfigError, match="price_per_service"):
        load_config(_write(tmp_path, telco_raw))


def test_factor_with_two_forms(tmp_path, telco_raw) -> None:
    telco_raw["factors"]["monthly_charges"] = {
        "column": "monthlycharges",
        "expr": "monthlycharges * 2",
    }
    with pytest.raises(ConfigError, match=r"factors\.monthly_charges"):
        load_config(_write(tmp_path, telco_raw))


def test_bad_yaml(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n  input: {")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_missing_required_key(tmp_path, telco_raw) -> None:
    del telco_raw["input"]["id_column"]
    with pytest.raises(ConfigError, match=r"input\.id_column"):
        load_config(_write(tmp_path, telco_raw))


def test_label_column_not_declared(tmp_path, telco_raw) -> None:
    telco_raw["input"]["label_column"] = "churned"
    with pytest.raises(ConfigError, match="churned"):
        load_config(_write(tmp_path, telco_raw))


def test_clv_refers_to_undefined_factor(tmp_path, telco_raw) -> None:
    telco_raw["clv"]["yearly_revenue"] = "nope"
    with pytest.raises(ConfigError, match="nope"):
        load_config(_write(tmp_path, telco_raw))


def test_threshold_out_of_range(tmp_path, telco_raw) -> None:
    telco_raw["segmentation"]["threshold"] = 12
    with pytest.raises(ConfigError, match=r"segmentation\.threshold"):
        load_config(_write(tmp_path, telco_raw))


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m.pop("Two year"), ["factors.contract_months.map", "'Two year'"]),
        (
            lambda m: m.update({"Three year": 36}),
            ["factors.contract_months.map", "'Three year'", "not values"],
        ),
    ],
)
def test_category_map_must_match_declared_values(tmp_path, telco_raw, edit, words) -> None:
    edit(telco_raw["factors"]["contract_months"]["map"])
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, telco_raw))
    assert all(w in str(info.value) for w in words), str(info.value)


def test_input_encoding(tmp_path, telco_raw) -> None:
    assert load_config(TELCO_CONFIG).input.encoding == "utf-8"
    telco_raw["input"]["encoding"] = "latin-1"
    assert load_config(_write(tmp_path, telco_raw)).input.encoding == "latin-1"
    telco_raw["input"]["encoding"] = "klingon-8"
    with pytest.raises(ConfigError, match=r"input: .*'klingon-8' is not a known text encoding"):
        load_config(_write(tmp_path, telco_raw))
