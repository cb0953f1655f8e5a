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
        ``"reasons_json": True`` gives them as JSON strings (Spark's ``spark_udf``).
        """
        params = params or {}
        reasons = int(params.get("reasons", 0))
        out = self.model.predict(pd.DataFrame(model_input), reasons=reasons)
        if reasons > 0 and params.get("reasons_json", False):  # Spark: string columns
            from valuecube.models.reasons import as_json, reason_column_names

            for column in reason_column_names(self.model):
                out[column] = as_json(out[column])
        return out
