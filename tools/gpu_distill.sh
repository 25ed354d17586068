#!/usr/bin/env bash
# Distil the lite model on a leased GPU for MINUTES, from what tools/gpu_carry.py packed.
#
#   bash tools/gpu_distill.sh MINUTES [more `stylenorm train lite` options]
#
# Run from the repository root on the device machine, with gpu_carry/ carried along, e.g. the
# device tool's `run` with carry ["gpu_carry"], timeout_s = 60 * MINUTES + 120 and the command
#   bash tools/gpu_distill.sh 7 --init weights/lite.safetensors --res-blocks 3
# The teacher runs on every batch (--cache-pairs 0), the images stay in GPU memory and are
# cropped there, and --time-limit ends the run with its model. What comes back under $OUT:
# train.log, run/log.jsonl, run/val.jsonl, run/config.json, run/model.safetensors (fp32) and
# model-fp16.safetensors. Continue on a CPU with --init from either file.
# DEVICE=cpu runs the same on a CPU (a check of this script, not a way to train).
set -euo pipefail
minutes=${1:?usage: bash tools/gpu_distill.sh MINUTES [train options]}
shift
out=${OUT:-runs/gpu}
export STYLENORM_HOME=gpu_carry/home PYTHONUNBUFFERED=1
python3 - <<'EOF' 2>&1 | tee -a "$out/train.log" || true
import platform, torch
name = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor()
print(f"torch {torch.__version__}, {name}")
EOF
python3 -m stylenorm train lite --teacher adain --cache-pairs 0 \
    --content gpu_carry/content --style gpu_carry/style \
    --val-content gpu_carry/val_content --val-style gpu_carry/val_style --val-every 500 \
    --device "${DEVICE:-cuda}" --data memory --crop-size 192 --batch-size 32 --ema 0.999 \
    --lr 2e-4 --lr-decay 1e-4 --pixel-weight 10 --feature-weight 1 --feature-layer relu3_1 \
    --style-layers relu1_1,relu2_1,relu3_1,relu4_1 --style-weight 5 --identity-weight 20 \
    --iterations 1000000 --checkpoint-every 2000 --sample-every 0 --log-every 50 \
    --time-limit "$minutes" --out "$out/run" --no-progress "$@" 2>&1 | tee -a "$out/train.log"
python3 -m stylenorm weights pack "$out/run/model.safetensors" "$out/model-fp16.safetensors" \
    --set style_size=512 2>&1 | tee -a "$out/train.log"
rm -f "$out/run/checkpoint.pt"  # optimizer state: over the 16 MiB a returned file may have
