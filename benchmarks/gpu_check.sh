#!/usr/bin/env bash
# GPU check, sized for about 5 minutes on one H100/H200-class card:
#   1. bf16 autocast vs fp32 on a fixed batch (correctness of the fast path)
#   2. our Encoder vs torch.nn.TransformerEncoder, bf16 (small and 768/12/256 shapes)
#   3. MFU at dim 768 / depth 12 / seq 256 against the measured bf16 matmul peak, eager
#      and torch.compile (skip the compiled row with COMPILE=0)
#   4. the harness vs a plain loop on the GPU (image_digits, 300 steps x 3 rounds)
#   5. a trainer=gpu run, then the quick study on the GPU (skip with QUICK_STUDY=0)
#   6. packed training (skip with PACK=0): per-model step time at k = 1..16 members, and
#      runs/hour of the findings study at seeds 0-2 (432 runs) packed by PACK_SIZE against
#      a 4-run unpacked sample of the same study
# Usage: benchmarks/gpu_check.sh [OUT_DIR]      (needs resnorm importable and a CUDA device)
set -euo pipefail
out=${1:-gpu_check_out}
mkdir -p "$out"
py=${PYTHON:-python3}
run() { echo "\$ resnorm $*"; $py -m resnorm.cli "$@"; }
{
  $py -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
  run bench precision --device cuda
  run bench block --device cuda --dtype bf16
  if [ "${COMPILE:-1}" = 1 ]; then run bench mfu --device cuda --dtype bf16 --compile
  else run bench mfu --device cuda --dtype bf16; fi
  run bench harness --device cuda --rounds 3
  run train trainer=gpu trainer.max_steps=600 hydra.run.dir="$out/gpu_run"
  if [ "${QUICK_STUDY:-1}" = 1 ]; then
    start=$(date +%s)
    run train -m study=quick trainer=gpu hydra.sweep.dir="$out/quick_gpu"
    echo "quick study on GPU: $(( $(date +%s) - start )) s"
  fi
  if [ "${PACK:-1}" = 1 ]; then
    run bench pack --device cuda --steps 300 --rounds 2 trainer=gpu
    k=${PACK_SIZE:-64}
    rate() {  # label, overrides...: runs per hour of one multirun into $out/<label>
      local label=$1; shift
      local t0; t0=$(date +%s%N)
      run train -m study=findings trainer=gpu hydra.sweep.dir="$out/$label" "$@" > "$out/$label.log" 2>&1
      local n; n=$(find "$out/$label" -name summary.json -not -path '*/.packs/*' | wc -l)
      $py -c "print(f'$label: {$n} runs in {($(date +%s%N) - $t0) / 1e9:.1f} s, ' \
                 f'{$n * 3600e9 / ($(date +%s%N) - $t0):.0f} runs/hour')"
    }
    rate unpacked_sample pack=1 task=image_digits +case=pre_ln,post_ln seed=0,1
    rate packed_findings pack="$k" seed=0,1,2
  fi
} 2>&1 | tee "$out/gpu_check.log"
