"""The MLflow pyfunc wrapper of the packaged model: what ``mlflow.pyfunc.load_model`` returns.

Kept apart from :mod:`models.packaged` so that loading a
:class:`~models.packaged.ChurnSegmentModel` outside MLflow (the API and the
command line, :mod:`valuecube.serving.loading`) never imports MLflow.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from valuecube.models.packaged import ChurnSegmentModel


class ValueCubePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of a :class:`ChurnSegmentModel`."""

    def __init__(self, model: ChurnSegmentModel) -> None:
        self.model = model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score raw customer rows; see :attr:`ChurnSegmentModel.output_columns`.

        ``params={"reasons": N}`` appends ``churn_reasons`` (``spend_reasons``)
        with the top N raising and lowering factors; default 0 (none);
        ``"reasons_json": True`` gives them as JSON strings (Spark's ``spark_udf``);
        ``"levers": True`` appends the rule's levers
        (:data:`models.levers.LEVER_COLUMNS`), as ``score --levers`` does.
        The params schema in the model's signature:
        :func:`models.reasons.reasons_params_schema`.
        """
        params = params or {}
        return self.model.predict(
            pd.DataFrame(model_input),
            reasons=int(params.get("reasons", 0)),
            levers=bool(params.get("levers", False)),
            reasons_as_text=bool(params.get("reasons_json", False)),
        )
