#!/usr/bin/env bash
# Code the ConvAbuse test split with a model, then compare its codes with the eight annotators'.
#
#   vsdcoder evals fetch convabuse               # once: download the data set (or have a copy)
#   evals/convabuse/run.sh                       # embedded model, first 100 items
#   MODEL=openai/gpt-4.1-mini LIMIT=all evals/convabuse/run.sh
#
# MODEL: any LiteLLM model string (default: the embedded local/smollm2).
# LIMIT: code only the first N items (default 100), or "all" for all 853.
# Further arguments go to `vsdcoder code` (e.g. --api-base URL --concurrency 4).
# The suite's files come from `vsdcoder evals build convabuse` (see evals/convabuse/README.md).
# The run directory is runs/convabuse-<model>; running again resumes it.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL="${MODEL:-local/smollm2}"
LIMIT="${LIMIT:-100}"
OUT="runs/convabuse-$(printf '%s' "$MODEL" | tr '/: ' '---')"
limit=()
if [ "$LIMIT" != "all" ]; then limit=(--limit "$LIMIT"); fi

SUITE="$(vsdcoder evals build convabuse)"
vsdcoder code "$SUITE/data.csv" --codebook convabuse \
  --context-cols prev_agent,prev_user,agent --meta-cols bot \
  --model "$MODEL" --out "$OUT" "${limit[@]}" "$@"
vsdcoder eval --gold "$SUITE/gold.csv" --layout "$SUITE/layout.yaml" \
  --pred "$OUT" --codebook convabuse
