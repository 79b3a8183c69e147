"""The growth table of ``make bench-growth``: exponents per figure, rates counted as costs."""

import json

import pytest

from bench.growth import growth_table, main


def _report(accounts: int, **figures) -> dict:
    return {
        "size": {"accounts": accounts},
        "figures": [
            {"figure": name, "value": value, "unit": unit} for name, (value, unit) in figures.items()
        ],
    }


def test_linear_flat_and_worse_than_linear_figures_are_told_apart():
    small = _report(10_000, recompute=(1.0, "s"), queries=(11, "queries"), pipeline=(2.0, "s"))
    large = _report(100_000, recompute=(10.0, "s"), queries=(11, "queries"), pipeline=(200.0, "s"))

    rows = {row["figure"]: row for row in growth_table([large, small])}

    assert rows["recompute"]["exponents"] == [1.0]
    assert rows["recompute"]["linear_or_better"] is True
    assert rows["queries"]["exponents"] == [0.0]
    assert rows["pipeline"]["exponents"] == [2.0]
    assert rows["pipeline"]["linear_or_better"] is False
    assert rows["recompute"]["values"] == [1.0, 10.0]  # ordered by size, whatever the argument order


def test_a_falling_rate_is_a_growing_cost():
    rows = growth_table(
        [_report(10_000, ingest=(20_000.0, "events/s")), _report(100_000, ingest=(2_000.0, "events/s"))]
    )

    assert rows[0]["exponents"] == [1.0]


def test_figures_missing_from_a_report_or_without_a_value_are_left_out_or_unjudged():
    rows = growth_table(
        [
            _report(10_000, kept=(1.0, "s"), only_small=(1.0, "s"), zero=(0.0, "s")),
            _report(1_000_000, kept=(50.0, "s"), zero=(3.0, "s")),
        ]
    )

    assert [row["figure"] for row in rows] == ["kept", "zero"]
    assert rows[0]["exponents"] == [0.85]
    assert rows[1]["linear_or_better"] is None


def test_two_reports_of_one_size_are_refused(tmp_path, capsys):
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_report(10_000, recompute=(1.0, "s"))))
        paths.append(str(path))

    with pytest.raises(SystemExit) as exit_info:
        main([*paths, "--out", str(tmp_path / "out.json")])

    assert exit_info.value.code == 2
    assert "same size" in capsys.readouterr().err


def test_the_command_writes_the_table(tmp_path):
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    small.write_text(json.dumps(_report(10_000, recompute=(1.0, "s"))))
    large.write_text(json.dumps(_report(100_000, recompute=(12.0, "s"))))

    assert main([str(small), str(large), "--out", str(tmp_path / "growth.json")]) == 0

    written = json.loads((tmp_path / "growth.json").read_text())
    assert written["accounts"] == [10_000, 100_000]
    assert written["figures"][0]["exponents"] == [1.08]
    assert written["figures"][0]["linear_or_better"] is True
