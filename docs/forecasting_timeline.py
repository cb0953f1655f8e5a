"""Draws docs/forecasting_timeline.png: the snapshot protocol of the forecasting network.

.venv/bin/python docs/forecasting_timeline.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

START, AS_OF, END = (
    pd.Timestamp("1997-01-01"),
    pd.Timestamp("1997-09-30"),
    pd.Timestamp("1998-06-30"),
)
HORIZON = pd.Timedelta(days=273)


def main() -> None:
    snapshots = [*pd.date_range("1997-01-31", "1997-08-31", freq="ME"), AS_OF]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for row, t in enumerate(snapshots):
        y = len(snapshots) - row
        ax.barh(y, t - START, left=START, height=0.6, color="#4c72b0")
        ax.barh(y, HORIZON, left=t, height=0.6, color="#dd8452")
        ax.text(
            START - pd.Timedelta(days=6),
            y,
            "train customers",
            ha="right",
            va="center",
            fontsize=7,
        )
    y = 0
    ax.barh(
        y, AS_OF - START, left=START, height=0.6, color="#4c72b0", hatch="//", edgecolor="white"
    )
    ax.barh(y, HORIZON, left=AS_OF, height=0.6, color="#dd8452", hatch="//", edgecolor="white")
    ax.text(
        START - pd.Timedelta(days=6),
        y,
        "validation / test customers",
        ha="right",
        va="center",
        fontsize=7,
    )
    ax.axvline(AS_OF, color="black", lw=1)
    ax.axvline(END, color="grey", lw=1, ls=":")
    ax.text(
        AS_OF,
        len(snapshots) + 0.9,
        "as_of 1997-09-30\n(last date with a full horizon)",
        ha="center",
        fontsize=8,
    )
    ax.text(END, len(snapshots) + 0.9, "log ends\n1998-06-30", ha="center", fontsize=8)
    handles = [
        Patch(color="#4c72b0", label="inputs: purchases up to t"),
        Patch(color="#dd8452", label="labels: (t, t + 273 days]"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.8, len(snapshots) + 2)
    ax.set_xlim(START - pd.Timedelta(days=170), END + pd.Timedelta(days=20))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.set_title("Rolling as-of snapshots (one row per snapshot date t)", fontsize=10)
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("forecasting_timeline.png"), dpi=110)


if __name__ == "__main__":
    main()
