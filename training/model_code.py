"""What a saved MLflow model ships besides its pickle: valuecube's code and pinned requirements.

Both the network (:mod:`training.train`) and the saved value cube
(:mod:`training.segment`) are pyfunc models whose pickles refer to classes of
``valuecube.features`` and ``valuecube.models``; they ship that code so the
model loads where valuecube is not installed, and pin the libraries that
unpickle it.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

SHIPPED_SUBPACKAGES = ("features", "models")  # what a logged model needs to unpickle and predict
_SHIPPED_INIT = (
    '"""valuecube as shipped in a logged MLflow model: the subpackages the model needs."""\n\n'
    "from pkgutil import extend_path\n\n"
    "__path__ = extend_path(__path__, __name__)\n"
)
_PINNED = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "pymc-marketing",
    "scikit-survival",
    "pydantic",
    "pyyaml",
    "mlflow",
)


def requirements() -> list[str]:
    """The pip requirements of a saved model, pinned to the versions installed now."""
    return [f"{n}=={version(n)}" for n in _PINNED] + ["torch==2.13.0"]


@contextmanager
def model_code() -> Iterator[list[str]]:
    """The code a saved model ships: a ``valuecube`` package with the subpackages it unpickles.

    MLflow puts the model's ``code/`` folder first on ``sys.path``; the
    package's ``__init__`` extends its ``__path__`` so that an installed
    ``valuecube`` still provides the subpackages the model does not carry.
    Yields the ``code_paths`` argument of ``mlflow.pyfunc.save_model``/``log_model``.
    """
    with tempfile.TemporaryDirectory(prefix="valuecube-code-") as tmp:
        package = Path(tmp) / "valuecube"
        package.mkdir()
        (package / "__init__.py").write_text(_SHIPPED_INIT)
        for name in SHIPPED_SUBPACKAGES:
            source = Path(importlib.import_module(f"valuecube.{name}").__path__[0])
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        yield [str(package)]
