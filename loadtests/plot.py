"""A picture of a locust run: requests/s and latency percentiles over time, from ``*_stats_history.csv``.

``python -m loadtests.plot OUT/locust_stats_history.csv OUT/loadtest.png [--faults OUT/faults.json]``.
Faults (kill -9 moments, storage outages, a full spool) are drawn as lines and shaded spans.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def read_history(path: Path) -> list[dict]:
    """The ``Aggregated`` rows, one per second, with numbers where locust has them."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") != "Aggregated":
                continue

            def num(key: str) -> float | None:
                try:
                    return float(row[key])
                except (KeyError, TypeError, ValueError):
                    return None  # "N/A" before the first answer

            out.append({"t": float(row["Timestamp"]), "users": num("User Count"), "total": num("Total Request Count"),
                        "failed": num("Total Failure Count"), "p50": num("50%"), "p95": num("95%"), "p99": num("99%")})
    # requests/s and failures/s from the running totals (locust's own Requests/s column is averaged over
    # several seconds and hides a restart). With several locust processes the totals move only when the
    # workers report (every 3 s), so a rate is taken over the time since the totals last moved; a row where
    # they have not moved for 4 s shows 0.
    last = None
    for row in out:
        row["rps"] = row["fps"] = None
        if row["total"] is None or row["failed"] is None:
            continue
        if last is None:
            last = row
            continue
        dt = row["t"] - last["t"]
        if row["total"] != last["total"] or dt >= 4:
            row["rps"] = (row["total"] - last["total"]) / dt if dt > 0 else 0.0
            row["fps"] = (row["failed"] - last["failed"]) / dt if dt > 0 else 0.0
            last = row
    return out


def plot(history_csv: Path, png: Path, faults: list[dict] | None = None, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = read_history(history_csv)
    if not rows:
        raise ValueError(f"{history_csv} has no Aggregated rows")
    t0 = rows[0]["t"]
    t = [r["t"] - t0 for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, dpi=100,
                                   gridspec_kw={"height_ratios": [1, 1]})
    rated = [(x, r) for x, r in zip(t, rows) if r["rps"] is not None]
    ax1.plot([x for x, _ in rated], [r["rps"] for _, r in rated], color="#1f77b4", lw=1.4, label="requests/s")
    ax1.plot([x for x, _ in rated], [r["fps"] for _, r in rated], color="#d62728", lw=1.0,
             label="failures/s (429, 503, no answer)")
    ax1.set_ylabel("requests/s")
    ax1.set_ylim(bottom=0)
    ax1.grid(alpha=0.3)
    users = ax1.twinx()
    users.plot(t, [r["users"] for r in rows], color="#7f7f7f", lw=0.8, ls=":", label="users")
    users.set_ylabel("users", color="#7f7f7f")
    users.set_ylim(bottom=0)
    for key, color in (("p50", "#2ca02c"), ("p95", "#ff7f0e"), ("p99", "#9467bd")):
        ax2.plot(t, [r[key] for r in rows], color=color, lw=1.2, label=key)
    ax2.set_yscale("log")
    ax2.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax2.set_ylabel("latency, ms (10 s window)")
    ax2.set_xlabel("seconds since the start of the run")
    ax2.grid(alpha=0.3, which="both")
    first = {"kill": True, "store": True, "spool": True}
    for f in faults or []:
        start = f["t"] - t0
        for ax in (ax1, ax2):
            if f["kind"] == "kill":
                ax.axvline(start, color="#d62728", lw=0.8, ls="--",
                           label="kill -9, restart" if ax is ax1 and first["kill"] else None)
            else:
                color = "#bcbd22" if f["kind"] == "store" else "#17becf"
                label = "storage failing" if f["kind"] == "store" else "spool full"
                ax.axvspan(start, f["end"] - t0, color=color, alpha=0.2,
                           label=label if ax is ax1 and first[f["kind"]] else None)
        first[f["kind"]] = False
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = users.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, ncol=2)
    ax2.legend(loc="upper left", fontsize=8, ncol=3)
    if title:
        ax1.set_title(title, fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history_csv", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--faults", type=Path)
    ap.add_argument("--title", default="")
    a = ap.parse_args(argv)
    faults = json.loads(a.faults.read_text()) if a.faults else None
    print(plot(a.history_csv, a.png, faults, a.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
