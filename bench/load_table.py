"""The load figures as a Markdown table: shared by ``bench.load`` and ``bench.reliability_load``."""


def format_table(figures: dict) -> str:
    """The figures as a Markdown table (the same text goes to the console and to the docs)."""
    lines = [
        "| requests | count | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in [*figures["requests"], figures["total"]]:
        lines.append(
            f"| {row['name']} | {row['requests']:,} | {row['errors']} | {row['rps']} | "
            f"{row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['p99_ms']:.0f} |"
        )
    return "\n".join(lines)
