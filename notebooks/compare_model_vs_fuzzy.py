# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The BP network against the fuzzy value cube, step by step
#
# The same comparison as `valuecube compare` (and its HTML report), one step at
# a time, with the same library functions: loading from
# `valuecube.training.compare_inputs`, computations from
# `valuecube.training.compare`, intervals and verdict from
# `valuecube.training.verdict`, charts from `valuecube.training.figures`, the
# page from `valuecube.training.report`; so this notebook and the report cannot
# drift apart.
# This file is the source of truth; the `.ipynb` is generated from it
# (`jupytext --sync notebooks/compare_model_vs_fuzzy.py`).
#
# **Parameters** come from environment variables (the tests use a small
# configuration), with these defaults:
#
# | variable | meaning | default |
# |---|---|---|
# | `VC_MODEL_URI` | the registered model | `models:/valuecube-telco@challenger` |
# | `VC_CONFIG` | dataset config | the model's own |
# | `VC_INPUT` | customers to compare on | the model's training input → its test split |
# | `VC_MAX_ROWS` | random sample of at most this many customers | all |
# | `VC_REPEATS` | permutation-importance repeats | 3 |
# | `VC_OUTPUT` | where to write the HTML report | `out/compare_report.html` |
#
# MLflow is read from `MLFLOW_TRACKING_URI` (default: the local store under `mlflow/`).

# %%
import os

import pandas as pd
from IPython.display import HTML, display

from valuecube.training import compare, explanations
from valuecube.training.compare_inputs import comparison_inputs, load_packaged_model
from valuecube.training.figures import (
    calibration_figure,
    churn_by_segment_figure,
    confusion_figure,
    cube_projections,
    display_size,
    figure_uri,
    gain_figure,
    importance_figure,
    roc_figure,
    segment_sizes_figure,
    value_figure,
)
from valuecube.training.report import headline_text, render_report, write_report
from valuecube.training.verdict import build_verdict


def show(fig):
    """Display a report figure inline, as the report embeds it."""
    width, _ = display_size(fig)
    display(HTML(f'<img width="{width}" src="{figure_uri(fig)}">'))


# %%
MODEL_URI = os.environ.get("VC_MODEL_URI", "models:/valuecube-telco@challenger")
CONFIG = os.environ.get("VC_CONFIG") or None
INPUT = os.environ.get("VC_INPUT") or None
MAX_ROWS = int(os.environ["VC_MAX_ROWS"]) if os.environ.get("VC_MAX_ROWS") else None
REPEATS = int(os.environ.get("VC_REPEATS", "3"))
OUTPUT = os.environ.get("VC_OUTPUT", "out/compare_report.html")
SEED = 0

# %% [markdown]
# ## The model and the customers
#
# The test customers are the model's own test split, rebuilt from the config,
# input and seed stored with it, unless another input is given.

# %%
model, identity = load_packaged_model(MODEL_URI)
inputs = comparison_inputs(model, CONFIG, INPUT, max_rows=MAX_ROWS, seed=SEED)
print(inputs.description)
pd.Series(identity, name="")

# %% [markdown]
# ## 1. Both classifiers on the same customers
#
# The fuzzy evaluation (memberships, VA scores, segment) and the network's
# segment probabilities and churn probability; the model's training customers
# are scored too (the peers are refit on them).

# %%
scored = compare.score_for_comparison(model, inputs.customers)
train = compare.score_for_comparison(model, inputs.train_customers)
print(f"{len(scored.table):,} customers scored, {len(scored.rejected):,} set aside")
scored.table.head()

# %%
segments = compare.segment_table(scored)
show(cube_projections(scored))
show(segment_sizes_figure(segments))
segments[["customers", "share"]]

# %% [markdown]
# ## 2. Agreement
#
# Confusion matrix (rows: fuzzy, columns: network), accuracy and Cohen's kappa,
# then the customers where the two disagree most, with the fuzzy rule's reasons
# (VA scores, five-grade memberships, factor values) and the network's
# class probabilities.

# %%
confusion, agreement = compare.agreement(scored)
show(confusion_figure(confusion))
display(agreement)

# %%
disagreements = compare.disagreements(scored, top=10)
display(disagreements.T)

# %% [markdown]
# ## 3. Churn
#
# The network, logistic regression and LightGBM (refit on the model's training
# split with the same inputs) and the fuzzy churn score, on the same customers.

# %%
churn_scores = churn_metrics = None
if scored.has_churn:
    y = scored.table["churn"].to_numpy()
    churn_scores = compare.churn_scores(model, scored, train, seed=SEED)
    churn_metrics = compare.churn_table(y, churn_scores)
    show(roc_figure(y, churn_scores))
    show(gain_figure(y, churn_scores))
    show(calibration_figure(compare.calibration(y, churn_scores)))
    show(churn_by_segment_figure(segments))
display(churn_metrics)

# %% [markdown]
# ## 4. Value
#
# Where realised future spend is known (transaction logs with a holdout), how
# each potential-value score ranks customers by it.

# %%
value_scores = value_correlations = None
if scored.has_future_spend:
    value_scores = compare.potential_value_scores(model, inputs.customers, scored)
    value_correlations = compare.value_correlations(value_scores, scored.table["future_spend"])
    show(value_figure(segments, value_correlations))
display(value_correlations)

# %% [markdown]
# ## 5. Explanations
#
# Globally: permutation importance of the network's input groups for churn
# ROC-AUC. Per disagreement customer: the change in churn probability when one
# input group is set to a typical training customer's value.

# %%
importances = None
if scored.has_churn:
    importances = explanations.permutation_importances(model, scored, n_repeats=REPEATS, seed=SEED)
    show(importance_figure(importances))
display(importances)

# %%
local_effects = None
if len(disagreements):
    reference = explanations.reference_inputs(train.X)
    local_effects = explanations.median_substitution(
        model, scored.X.loc[disagreements.index], reference
    )
display(local_effects)

# %% [markdown]
# ## Intervals and the verdict
#
# Bootstrap 95 % intervals on every headline metric and, paired on the same
# resamples of customers, on the differences between models; then the verdict
# the report opens with: which classifier to use for which decision, and
# warnings for any model worse than a plain peer or the rule beyond its interval.

# %%
result = compare.with_intervals(
    compare.Comparison(
        scored,
        segments,
        confusion,
        agreement,
        disagreements,
        churn_scores=churn_scores or {},
        churn_metrics=churn_metrics,
        value_scores=value_scores,
        value_correlations=value_correlations,
        importances=importances,
        local_effects=local_effects,
    ),
    seed=SEED,
)
verdict = build_verdict(result)
print("\n\n".join(verdict.lines()))
display(result.churn_intervals.metrics if result.churn_intervals else result.agreement_intervals)

# %% [markdown]
# ## The report
#
# The same pieces, assembled into the HTML report `valuecube compare` writes.

# %%
page = render_report(
    result, identity, customers=inputs.description, config=model.config, verdict=verdict
)
path = write_report(page, OUTPUT)
print(f"wrote {path}")
pd.Series(headline_text(result.headline), name="headline")
