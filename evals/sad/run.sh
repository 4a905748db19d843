#!/usr/bin/env bash
# Code the SAD subset with a model, then compare its codes with the 5-rater majority.
#
#   vsdcoder evals fetch sad                     # once: download the data set (or have a copy)
#   evals/sad/run.sh                             # embedded model, first 100 sentences
#   MODEL=openai/gpt-4.1-mini LIMIT=all evals/sad/run.sh
#
# MODEL: any LiteLLM model string (default: the embedded local/smollm2).
# LIMIT: code only the first N sentences (default 100), or "all" for all 306.
# Further arguments go to `vsdcoder code` (e.g. --api-base URL --concurrency 4).
# The suite's files come from `vsdcoder evals build sad` (see evals/sad/README.md).
# The run directory is runs/sad-<model>; running again resumes it.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL="${MODEL:-local/smollm2}"
LIMIT="${LIMIT:-100}"
OUT="runs/sad-$(printf '%s' "$MODEL" | tr '/: ' '---')"
limit=()
if [ "$LIMIT" != "all" ]; then limit=(--limit "$LIMIT"); fi

SUITE="$(vsdcoder evals build sad)"
vsdcoder code "$SUITE/data.csv" --codebook sad-stressors --meta-cols source \
  --model "$MODEL" --out "$OUT" "${limit[@]}" "$@"
vsdcoder eval --gold "$SUITE/gold.csv" --layout "$SUITE/layout.yaml" \
  --pred "$OUT" --codebook sad-stressors
