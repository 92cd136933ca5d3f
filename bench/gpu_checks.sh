#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run on a machine with one GPU (offline is fine):
#
#   bash bench/gpu_checks.sh [LOG_DIR]
#
# Writes LOG_DIR/summary.txt (one line per check, with the figures the READMEs quote) and
# LOG_DIR/all.log (every check's output). Takes about 8 minutes on an H200.
set -u
cd "$(dirname "$0")/.."
LOG=${1:-gpu-checks}
SCRATCH=$(mktemp -d)
mkdir -p "$LOG"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
SUMMARY="$LOG/summary.txt"
ALL="$LOG/all.log"

# step NAME SECONDS COMMAND...: runs it with a time limit, keeps its output, notes its exit status and time.
step() {
    local name=$1 limit=$2 started rc
    shift 2
    started=$(date +%s)
    echo "===== $name: $*" >>"$ALL"
    timeout "$limit" "$@" >"$SCRATCH/$name.log" 2>&1
    rc=$?
    cat "$SCRATCH/$name.log" >>"$ALL"
    echo "$name: exit $rc after $(($(date +%s) - started)) s" >>"$SUMMARY"
    return $rc
}

# note NAME PATTERN: the lines of NAME's output that match, into the summary.
note() {
    grep -E "$2" "$SCRATCH/$1.log" | sed "s/^/  $1| /" >>"$SUMMARY"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, transformers, accelerate, peft; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'accelerate', accelerate.__version__, 'peft', peft.__version__)"
} >"$SUMMARY" 2>&1

# CPU processes on a GPU machine: --device cpu under torchrun must use gloo barriers without device ids.
# They run beside the GPU checks, on the CPU cores.
(
    step launchers 300 python3 -m pytest -q -p no:cacheprovider tests/training/test_launchers.py tests/training/test_distributed.py
    note launchers "passed|failed|error"
    # More processes than GPUs: one clear line instead of an NCCL failure.
    step too-many-processes 120 python3 -m torch.distributed.run --nproc_per_node 2 instruct_ger.py \
        --model-name tiny-bloom --epochs 1 --output-dir "$SCRATCH/too-many"
    note too-many-processes "processes per machine"
) &
cpu_checks=$!

# The demo on CUDA, and its answers in float16 as generate.py gives them there.
step demo 240 python3 instruct_ger.py --model-name tiny-bloom --output-dir "$SCRATCH/demo"
note demo "Exact match|Training finished"
step demo-answers 120 python3 generate.py --model-name "$SCRATCH/demo/instruct_ger_bsp_1_tiny" \
    --eval instruct_ger_bsp_1.txt --eval-lines train
note demo-answers "Exact match"

# Training rows in bf16 (full and LoRA) with peak GPU memory and seconds per answer in fp16.
step bench 300 python3 bench/benchmark.py --device cuda --shapes 1b5 --modes full lora --precision bf16 \
    --steps 5 --answers 2 --scratch "$SCRATCH/bench"
note bench "^\||Machine"

# The tutorial's whole run on the 1b5 shape, time split by phase.
step tutorial 360 python3 bench/benchmark.py --device cuda --tutorial-run 1b5 --precision bf16 --epochs 4 \
    --answers 12 --scratch "$SCRATCH/tutorial"
note tutorial "^\||Inside|failed"

# LoRA through the CLI with a bf16 base: the report's peak GPU memory; the merged model is fp32.
BASE="$SCRATCH/tutorial/random-1b5"
printf '%s\n' '{"instruction": "Nenne drei Flüsse.", "output": "Elbe, Weser und Mosel sind drei Flüsse."}' \
    >"$SCRATCH/one.jsonl"
sed '/_EVAL_/,$d' instruct_ger_bsp_1.txt >"$SCRATCH/train.txt"
step lora-cli 240 python3 instruct_ger.py --model-name "$BASE" --input-file "$SCRATCH/train.txt" \
    --eval-file "$SCRATCH/one.jsonl" --lora --bf16 --epochs 1 --learning-rate 2e-4 --output-dir "$SCRATCH/lora"
python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print('  lora-cli| peak GPU GiB', \
round(r['peak_memory_gib'], 2), 'estimated', round(r['estimated_peak_memory_gib'], 2))" \
    "$SCRATCH/lora/instruct_ger_bsp_1_1b5_ep4/training_report.json" >>"$SUMMARY" 2>&1
python3 -c "from safetensors import safe_open; import sys; f = safe_open(sys.argv[1], 'pt'); \
print('  lora-cli| merged dtypes', sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()}))" \
    "$SCRATCH/lora/instruct_ger_bsp_1_1b5_ep4/model.safetensors" >>"$SUMMARY" 2>&1

# The plan for the tutorial's full fine-tune on this GPU.
step dry-run 120 python3 instruct_ger.py --model-name "$BASE" --bf16 --dry-run --output-dir "$SCRATCH/dry"
note dry-run "Memory|Parameters"

# FSDP with one process: sharded weights, so evaluation by generation is skipped with a notice, the model saved whole.
step fsdp 240 python3 -m accelerate.commands.launch --config_file configs/accelerate_2gpu_fsdp.yaml --num_processes 1 instruct_ger.py \
    --model-name tiny-bloom --epochs 2 --output-dir "$SCRATCH/fsdp"
note fsdp "Notice: the weights were sharded|Training finished"

wait $cpu_checks
rm -rf "$SCRATCH"
cat "$SUMMARY"
