"""Rebuild the SAD eval subset and the demo sample from the shared SAD_v1.xlsx.

Usage: python evals/sad/make_subset.py [PATH/TO/SAD_v1.xlsx]

Deterministic (seeded). Keeps sentences the crowd judged to be stressors (is_stressor == 1), drops
duplicates, and draws 34 per top_label category (306 units); the demo sample is 30 of them,
up to 4 per category. Gold is the 5-rater majority top_label plus each category's vote share.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LABELS = {
    "Work": "work",
    "School": "school",
    "Financial Problem": "financial_problem",
    "Emotional Turmoil": "emotional_turmoil",
    "Social Relationships": "social_relationships",
    "Family Issues": "family_issues",
    "Health, Fatigue, or Physical Pain": "health_fatigue_physical_pain",
    "Everyday Decision Making": "everyday_decision_making",
    "Other": "other",
}
SEED = 20211


def main(xlsx: Path) -> None:
    df = pd.read_excel(xlsx)
    df = df[(df.is_stressor == 1) & df.sentence.astype(str).str.strip().str.len().gt(10)]
    df = df.drop_duplicates("sentence")
    df["stressor"] = df.top_label.map(LABELS)
    df["second"] = df.second_label.astype(str).str.strip().map(LABELS)
    df = df[df.stressor.notna()]
    per = df.groupby("stressor").sample(n=34, random_state=SEED)
    per = per.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    per["id"] = "sad-" + per.sID.astype(str)
    shares = {code: per[col].round(3) for col, code in LABELS.items()}
    data = per[["id", "sentence", "Source"]].rename(
        columns={"sentence": "text", "Source": "source"})
    data.to_csv(HERE / "data.csv", index=False)
    gold = pd.DataFrame({"id": per.id, "stressor": per.stressor, "second_stressor": per.second,
                         "votes": per.Votes, **{f"share_{k}": v for k, v in shares.items()}})
    gold.to_csv(HERE / "gold.csv", index=False)
    demo = per.groupby("stressor", group_keys=False).head(4).head(30)
    demo = demo.sort_values("id", key=lambda s: s.str.len() * 10**6 + s.str[4:].astype(int))
    pd.DataFrame({"id": demo.id, "text": demo.sentence, "human_stressor": demo.stressor}).to_csv(
        ROOT / "plugins" / "samples" / "sad-demo.csv", index=False)
    print(f"data.csv: {len(data)} units; demo: {len(demo)} units")


if __name__ == "__main__":
    default = ROOT.parent / "shared" / "datasets" / "sad" / "SAD_v1_unzipped" / "SAD_v1.xlsx"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
