"""The tables ``whyrec evaluate`` prints."""

from __future__ import annotations

from typing import Any


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """One line per model: accuracy, coverage, time and the explanation measures present."""
    cols = ["model", "HR@10", "NDCG@10", "MRR@10", "NDCG@20", "coverage@10", "train_seconds"]
    extra = [
        c
        for c in (
            "fidelity_ratio",
            "fidelity_ratio_recent",
            "counterfactual_found_rate",
            "counterfactual_validity",
            "grounding_rate",
            "explain_ms_per_user",
        )
        if any(c in r for r in rows)
    ]
    cols += extra
    lines = ["  ".join(f"{c:>12}" for c in cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c, "")
            cells.append(f"{v:>12.4f}" if isinstance(v, float) else f"{v!s:>12}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def controls_table(rows: list[dict[str, Any]]) -> str:
    """One line per model and control setting (``evaluate --controls``)."""
    cols = ["NDCG@10", "NDCG@10_plain", "ILD@10", "coverage@10", "ARP@10", "calibration_KL@10"]
    lines = ["", f"{'model':>12}  {'controls':<30}" + "".join(f"{c:>18}" for c in cols)]
    for row in rows:
        for label, measured in row.get("controls", {}).items():
            cells = "".join(f"{v:>18.4f}" if isinstance(v, float) else f"{v!s:>18}" for v in
                            (measured.get(c) for c in cols))  # fmt: skip
            lines.append(f"{row['model']:>12}  {label:<30}{cells}")
    return "\n".join(lines)
