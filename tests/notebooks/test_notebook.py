"""The comparison notebook: paired with its jupytext source, and it runs headless without error."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "notebooks" / "compare_model_vs_fuzzy.py"
NOTEBOOK = SOURCE.with_suffix(".ipynb")


def test_notebook_is_in_sync_with_its_source() -> None:
    """The .ipynb holds exactly the cells of the .py (regenerate: `jupytext --sync`)."""
    source, notebook = jupytext.read(SOURCE), jupytext.read(NOTEBOOK)
    assert [(c.cell_type, c.source) for c in source.cells] == [
        (c.cell_type, c.source) for c in notebook.cells
    ]
    assert (
        notebook.metadata["jupytext"]["formats"]
        == source.metadata["jupytext"]["formats"]
        == "ipynb,py:percent"
    )


@pytest.mark.slow
def test_notebook_runs_on_a_small_configuration(
    telco_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "report.html"
    for name, value in {
        "VC_MODEL_URI": telco_model.model_uri,
        "VC_MAX_ROWS": "250",
        "VC_REPEATS": "1",
        "VC_OUTPUT": str(output),
    }.items():
        monkeypatch.setenv(name, value)
    assert os.environ["MLFLOW_TRACKING_URI"]  # the kernel inherits the session's store
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    assert output.exists() and "data:image/png;base64," in output.read_text()
    outputs = "".join(
        str(o.get("text", "")) for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "250 customers scored" in outputs and f"wrote {output}" in outputs
    assert "Targeting retention by churn risk: use the" in outputs
