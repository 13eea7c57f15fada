"""Accuracy (%) the paper reports (Infi-MMR, arXiv 2505.23091v3), Table 1 (main) and Table 2 (phase-2 ablation).

Keyed by our bench names; a bench the paper does not report for a model is absent.
"""

from __future__ import annotations

PAPER: dict[str, dict[str, float]] = {
    "Qwen2.5-VL-3B": {"math500": 63.40, "mathverse": 33.20, "mathvision": 21.25, "olympiadbench": 11.33,
                      "mathvista": 63.40},
    "Infi-MMR_FRA": {"math500": 68.8, "mathverse": 40.8, "mathvision": 23.91, "olympiadbench": 19.33,
                     "mathvista": 62.9},
    "Infi-MMR_CMRA": {"math500": 65.65, "mathverse": 42.84, "mathvision": 26.34, "olympiadbench": 19.33,
                      "mathvista": 63.5},
    "Infi-MMR-3B": {"math500": 65.5, "mathverse": 43.68, "mathvision": 27.04, "olympiadbench": 21.33,
                    "mathvista": 67.2},
    # Table 2: phase 2 on ViRL39K without captions (the ablation), MATH500 not reported.
    "Infi-MMR_CapFre": {"mathverse": 41.94, "mathvision": 25.88, "olympiadbench": 18.67, "mathvista": 63.9},
}


# The rows and columns of each table the paper prints: Table 1 (main results), Table 2 (phase-2 data ablation, RQ2:
# from the FRA model, caption-augmented CMRA vs caption-free CapFre, multimodal benchmarks only).
TABLES: dict[str, dict[str, list[str]]] = {
    "1": {"rows": ["Qwen2.5-VL-3B", "Infi-MMR_FRA", "Infi-MMR_CMRA", "Infi-MMR-3B"],
          "columns": ["math500", "mathverse", "mathvision", "olympiadbench", "mathvista"]},
    "2": {"rows": ["Infi-MMR_FRA", "Infi-MMR_CMRA", "Infi-MMR_CapFre"],
          "columns": ["mathverse", "mathvision", "olympiadbench", "mathvista"]},
}
