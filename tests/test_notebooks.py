"""Executes every notebook top to bottom in a fresh kernel on tiny budgets (VAE_NOTEBOOK_QUICK=1), so
they never rot, and checks that the notebooks in git carry no outputs."""

import glob
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
EXPECTED = ["01_quickstart", "02_latent_explorer", "03_disentanglement", "04_synthetic_data"]


def _name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def test_all_notebooks_present():
    assert [_name(p) for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_outputs_stripped(path):
    book = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(book.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{_name(path)}: cells {dirty} carry outputs; clear them before committing"


def _images(book) -> int:
    return sum(1 for cell in book.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
               if "image/png" in out.get("data", {}) or "image/gif" in out.get("data", {}))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("VAE_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell and the traceback
    errors = [out for cell in book.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert not errors
    assert _images(book) >= 2, "the notebook's figures were not displayed"
    assert os.path.isdir(tmp_path / "runs"), "the notebook wrote no run"
