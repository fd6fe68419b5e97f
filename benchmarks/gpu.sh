#!/usr/bin/env bash
# The GPU check, one command, for an H200-class machine with no network (within 8 minutes):
#
#   benchmarks/gpu.sh OUT_DIR              # on the GPU machine (carry .whl/ from `make gpu-wheels`)
#   benchmarks/gpu.sh --cpu-smoke OUT_DIR  # here: the same steps, tiny sizes, nothing installed
#
# 1. records what the machine has and installs the missing wheels from .whl/ (no index, no deps);
# 2. runs the GPU tests (pytest -m gpu): bf16 fine-tune lowers the loss, GPU rows = CPU rows for
#    a fixed seed, continuous batching on the GPU;
# 3. runs the generation benchmark (augment loop vs one `generate` batch vs per-row pipeline) on a
#    GPT-2 124M and on a Qwen2-1.5B shape (random weights, 151,936-token vocabulary, built there),
#    and the fine-tuning benchmark (packed vs padded Trainer) at GPU sizes, with MFU.
# Everything lands in OUT_DIR as JSON (plus the pytest report); a failed step does not stop the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
if [ "${1:-}" = "--cpu-smoke" ]; then SMOKE=1; shift; fi
OUT=${1:?usage: benchmarks/gpu.sh [--cpu-smoke] OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export AUGMENT_CACHE=${AUGMENT_CACHE:-/tmp/augment-gpu-cache}
status=0
step() {  # step NAME SECONDS CMD...: run with a time limit, note the exit code, carry on
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - start))}" >> "$OUT/steps.jsonl"
  echo "$name: rc=$rc ($((SECONDS - start)) s)"
  [ $rc -eq 0 ] || status=1
}
rm -f "$OUT/steps.jsonl"
if [ $SMOKE -eq 1 ]; then
  step environment 60 "$PY" -m benchmarks.gpu_env "$OUT/environment.json" --dry-run
  step gpu-tests 300 "$PY" -m pytest -q -m gpu tests/gpu -p no:cacheprovider
  step generation 300 "$PY" -m benchmarks.generation --smoke --rows 4 --new-tokens 4 --out "$OUT/generation.json"
  step generation-qwen2 300 "$PY" -m benchmarks.generation --smoke --models qwen2-tiny --rows 4 --new-tokens 4 \
    --out "$OUT/generation-qwen2.json"
  step finetune 300 "$PY" -m benchmarks.finetune --smoke --rows 32 --steps 2 --batch-size 2 --block 32 \
    --out "$OUT/finetune.json"
else
  step environment 90 "$PY" -m benchmarks.gpu_env "$OUT/environment.json" --wheels .whl
  step gpu-tests 100 "$PY" -m pytest -q -m gpu tests/gpu -p no:cacheprovider
  step generation 110 "$PY" -m benchmarks.generation --models gpt2-124m --rows 2048 --baseline-rows 16 \
    --new-tokens 48 --repeats 2 --out "$OUT/generation.json"
  step generation-qwen2 100 "$PY" -m benchmarks.generation --models qwen2-1.5b --rows 1024 --baseline-rows 4 \
    --new-tokens 48 --repeats 1 --no-ablation --out "$OUT/generation-qwen2.json"
  step finetune 80 "$PY" -m benchmarks.finetune --models gpt2-124m --rows 4000 --batch-size 64 --block 128 \
    --steps 8 --repeats 1 --out "$OUT/finetune.json"
fi
"$PY" -m benchmarks.report "$OUT"/generation.json "$OUT"/generation-qwen2.json "$OUT"/finetune.json > "$OUT/tables.md" 2>/dev/null || status=1
exit $status
