"""``python -m bench.growth RUN.json RUN.json [RUN.json]`` (``make bench-growth``): how each figure grows.

Issue 7 asks that every figure grow no faster than linearly with the number of accounts. This
reads two or more bench reports of different sizes (``docs/bench/<date>-10000.json``, the S
report, the L report), puts each figure side by side and gives its growth exponent between
consecutive sizes: ``log(cost_b / cost_a) / log(accounts_b / accounts_a)``, where the cost is the
value itself, or its inverse for rates (events/s, req/s: a rate that falls is a cost that grows).
An exponent of 1 is linear, 0 flat. A figure passes when every exponent is at most
``GROWTH_TOLERANCE`` (default 1.15: the machine is shared and single runs are noisy).

Writes the table as JSON to ``docs/bench/growth-<date>.json`` (or ``--out``).
"""

import argparse
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = float(os.environ.get("GROWTH_TOLERANCE", "1.15"))


def cost(row: dict) -> float | None:
    """What the figure costs: its value, or 1/value for a rate; None when it cannot be compared."""
    value = row.get("value")
    if value is None or value <= 0:
        return None
    return 1 / value if row.get("unit", "").endswith("/s") else value


def exponent(cost_a: float, cost_b: float, accounts_a: int, accounts_b: int) -> float:
    """The growth exponent between two sizes: 1 is linear, 0 flat, above 1 faster than linear."""
    return math.log(cost_b / cost_a) / math.log(accounts_b / accounts_a)


def growth_table(reports: list[dict]) -> list[dict]:
    """One row per figure present in every report, ordered by size, with exponents and a verdict."""
    reports = sorted(reports, key=lambda report: report["size"]["accounts"])
    sizes = [report["size"]["accounts"] for report in reports]
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"two reports of the same size: {sizes}")
    by_figure = [{row["figure"]: row for row in report["figures"]} for report in reports]
    rows = []
    for figure in by_figure[0]:
        if not all(figure in figures for figures in by_figure):
            continue
        cells = [figures[figure] for figures in by_figure]
        costs = [cost(cell) for cell in cells]
        exponents = None
        if all(value is not None for value in costs):
            pairs = range(len(sizes) - 1)
            exponents = [round(exponent(costs[i], costs[i + 1], sizes[i], sizes[i + 1]), 2) for i in pairs]
        rows.append(
            {
                "figure": figure,
                "unit": cells[0]["unit"],
                "values": [cell["value"] for cell in cells],
                "exponents": exponents,
                "linear_or_better": None if exponents is None else all(e <= TOLERANCE for e in exponents),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="bench JSON reports of different sizes")
    parser.add_argument("--out", type=Path, help="the JSON to write (default docs/bench/growth-<date>.json)")
    args = parser.parse_args(argv)
    if len(args.reports) < 2:
        parser.error("give at least two reports of different sizes")
    reports = [json.loads(path.read_text()) for path in args.reports]
    try:
        rows = growth_table(reports)
    except ValueError as error:
        parser.error(str(error))
    sizes = sorted(report["size"]["accounts"] for report in reports)
    _print(rows, sizes)
    out = args.out or ROOT / "docs" / "bench" / f"growth-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "date": dt.date.today().isoformat(),
        "accounts": sizes,
        "tolerance": TOLERANCE,
        "reports": [str(path) for path in args.reports],
        "figures": rows,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Written to {out}")
    return 0


def _print(rows: list[dict], sizes: list[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Growth with accounts ({' → '.join(f'{size:,}' for size in sizes)})")
    table.add_column("figure")
    for size in sizes:
        table.add_column(f"{size:,}")
    table.add_column("exponent(s)")
    table.add_column("≤ linear?")
    for row in rows:
        verdict = {None: "", True: "yes", False: "NO"}[row["linear_or_better"]]
        exponents = ", ".join(f"{e:.2f}" for e in row["exponents"]) if row["exponents"] else ""
        values = [f"{value:,.3f} {row['unit']}" for value in row["values"]]
        table.add_row(row["figure"], *values, exponents, verdict)
    Console(width=200).print(table)


if __name__ == "__main__":
    sys.exit(main())
