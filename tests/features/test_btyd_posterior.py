"""BTYD by the library's posterior (ADVI, MCMC) and ``--posterior`` on the command line.

Real fits on a small slice of CDNOW (the first 250 customers) with few ADVI
iterations / MCMC draws, so each costs a few seconds beyond PyTensor's
compilation. The MAP path is tested in test_btyd.py.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.features.btyd import BtydValue, parameter_summary
from valuecube.features.config import load_config, with_posterior
from valuecube.features.transactions import customer_features

runner = CliRunner()
N_CUSTOMERS = 250
ADVI = {"n": 1500}
MCMC = {"draws": 100, "tune": 100, "chains": 1}


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> pd.DataFrame:
    """The first customers' transactions of the bundled CDNOW log, in its raw format."""
    tx = pd.read_csv(CDNOW_TXT, sep=r"\s+", dtype={"customer_id": str, "date": str})
    keep = tx["customer_id"].drop_duplicates().iloc[:N_CUSTOMERS]
    return tx[tx["customer_id"].isin(keep)]


@pytest.fixture(scope="module")
def histories(small_log) -> pd.DataFrame:
    log = pd.DataFrame(
        {
            "customer_id": small_log["customer_id"],
            "date": pd.to_datetime(small_log["date"], format="%Y%m%d"),
            "quantity": small_log["number_of_cds"].astype(float),
            "amount": small_log["dollar_value"].astype(float),
        }
    )
    return customer_features(
        log, pd.Timestamp("1997-09-30"), window_start=pd.Timestamp("1997-01-01"),
        holdout_end=pd.Timestamp("1998-06-30"),
    )  # fmt: skip


def assert_posterior_interval(scores: pd.DataFrame) -> None:
    """clv inside [clv_low, clv_high] for everyone, and a band that differs by customer."""
    assert (scores["clv_low"] <= scores["clv"] + 1e-9).all()
    assert (scores["clv"] <= scores["clv_high"] + 1e-9).all()
    width = scores["clv_high"] - scores["clv_low"]
    assert (width > 0).mean() > 0.9
    assert width.nunique() > 50  # customers with the same history share a band
    assert width.std() > 0.05 * width.mean()


@pytest.mark.parametrize(("method", "options"), [("advi", ADVI), ("mcmc", MCMC)])
def test_posterior_methods_give_draw_based_intervals(histories, method, options):
    model = BtydValue(model="mbgnbd", method=method, n_draws=60, fit_options=options)
    model.fit(histories)
    assert model.method == method
    assert parameter_summary(model).endswith(f"({method.upper()})")
    # the interval's draws are distinct posterior draws, not one point repeated
    assert all(len(np.unique(v)) > 30 for v in model.draws_.values())
    scores = model.transform(histories)
    assert_posterior_interval(scores)
    assert np.isfinite(scores[["expected_purchases", "p_alive", "clv"]].to_numpy()).all()


@pytest.fixture(scope="module")
def advi_segment(small_log, tmp_path_factory):
    """``valuecube segment --posterior advi`` on the small log (cheap ADVI via the config)."""
    root = tmp_path_factory.mktemp("posterior")
    data = root / "log.txt"
    small_log.to_csv(data, sep=" ", index=False)
    raw = yaml.safe_load(CDNOW_CONFIG.read_text())
    raw["bgnbd"]["fit_options"] = ADVI
    raw.pop("data")
    config = root / "cdnow.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = root / "seg.csv"
    result = runner.invoke(
        app, ["segment", "-c", str(config), "-i", str(data), "-o", str(out), "--posterior", "ADVI"]
    )
    return result, out


def test_segment_posterior_advi_writes_posterior_intervals(advi_segment):
    result, out = advi_segment
    assert result.exit_code == 0, result.output
    assert "(ADVI)" in result.output  # the fitted method, as the parameter line records it
    scores = pd.read_csv(out)
    assert len(scores) > 200
    assert_posterior_interval(scores)


@pytest.mark.parametrize("command", ["segment", "train"])
def test_posterior_option_rejects_unknown_methods(tmp_path, command):
    args = [command, "-c", str(CDNOW_CONFIG), "--posterior", "nuts"]
    if command == "segment":
        args += ["-i", str(CDNOW_TXT), "-o", str(tmp_path / "o.csv")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)  # the error box, unwrapped
    assert "Invalid value for '--posterior'" in text
    assert "'nuts' is not one of 'advi', 'mcmc'" in text
    assert "Traceback" not in result.output
    assert "--posterior" in runner.invoke(app, [command, "--help"]).output


def test_posterior_on_a_table_without_btyd_is_a_clear_error(tmp_path):
    out = tmp_path / "o.csv"
    args = ["segment", "-c", str(TELCO_CONFIG), "-i", str(TELCO_CSV), "-o", str(out)]
    result = runner.invoke(app, [*args, "--posterior", "mcmc"])
    assert result.exit_code == 1
    assert "fits no BTYD model" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_with_posterior_overrides_only_the_method():
    cfg = load_config(CDNOW_CONFIG)
    assert with_posterior(cfg, None) is cfg
    changed = with_posterior(cfg, "mcmc")
    assert changed.bgnbd.method == "mcmc" and cfg.bgnbd.method == "map"
    assert changed.bgnbd.model_dump(exclude={"method"}) == cfg.bgnbd.model_dump(exclude={"method"})
