#!/usr/bin/env bash
# The 10,000-layer validation of issue #6 in one command, on a machine with a CUDA GPU.
#
#   bash benchmarks/gpu_10k.sh [OUT_DIR]
#
# tanh Delta-Orthogonal CNN on the critical line (sigma_b^2 = 0.05, sigma_w^2 ~ 1.76096), 10,000 layers of
# 256 channels on a 32-wide 1-D input, kernel 3, circular padding, 4 independent networks, float32 (TF32 off).
# Writes OUT_DIR/validate.{json,nc,png,pdf}, the table on stdout (also OUT_DIR/table.txt) and OUT_DIR/log.txt.
# The JSON summary says, per quantity, whether theory and experiment agree within the statistical threshold and
# from which layer they stop agreeing: at depth >> width the finite-width corrections to c^l accumulate (see
# docs/validation.md). Set STRICT=1 to exit with code 3 when they disagree. Override with environment variables:
#   DEPTH CHANNELS SPATIAL SEEDS WEIGHT_VAR BIAS_VAR DTYPE INIT
set -euo pipefail

OUT="${1:-gpu_10k}"
DEPTH="${DEPTH:-10000}"
CHANNELS="${CHANNELS:-256}"
SPATIAL="${SPATIAL:-32}"
SEEDS="${SEEDS:-4}"
BIAS_VAR="${BIAS_VAR:-0.05}"
DTYPE="${DTYPE:-float32}"
INIT="${INIT:-delta-orthogonal}"
PY="${PYTHON:-python}"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "Error: no CUDA device is visible to PyTorch; this script is for a machine with a GPU" >&2
    exit 2
fi
mkdir -p "$OUT"
if [ -z "${WEIGHT_VAR:-}" ]; then
    WEIGHT_VAR="$("$PY" -c "import meanfield; print(repr(meanfield.critical_weight_var('tanh', $BIAS_VAR).weight_var))")"
fi
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" | tee "$OUT/log.txt"
echo "validate: tanh weight_var=$WEIGHT_VAR bias_var=$BIAS_VAR depth=$DEPTH channels=$CHANNELS spatial=$SPATIAL seeds=$SEEDS $INIT $DTYPE" | tee -a "$OUT/log.txt"

start=$(date +%s)
set +e
"$PY" -m meanfield validate --act tanh --weight-var "$WEIGHT_VAR" --bias-var "$BIAS_VAR" \
    --input-var 1.0 --input-corr 0.3 --depth "$DEPTH" --channels "$CHANNELS" --spatial "$SPATIAL" --kernel 3 \
    --init "$INIT" --seeds "$SEEDS" --device cuda --dtype "$DTYPE" --out "$OUT" --format png,pdf ${STRICT:+--strict} \
    2> >(tee -a "$OUT/log.txt" >&2) | tee -a "$OUT/table.txt"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "wall time: $((end - start)) s (exit code $rc)" | tee -a "$OUT/log.txt"
exit "$rc"
