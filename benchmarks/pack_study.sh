#!/usr/bin/env bash
# A study packed against the same study unpacked, side by side on one machine and launcher:
# `study=findings task=image_digits` (288 runs; narrow it with overrides such as
# '+case=pre_ln,post_ln,no_residual'), fresh sweep dirs, wall time of each and the ratio.
# Extra arguments go to both commands (e.g. trainer=gpu on a GPU).
# Usage: benchmarks/pack_study.sh [OUT_DIR] [PACK] [overrides...]
set -euo pipefail
out=${1:-pack_study_out}
pack=${2:-8}
shift $(( $# > 2 ? 2 : $# ))
py=${PYTHON:-python3}
rm -rf "$out" && mkdir -p "$out"
timed() {  # label, overrides...: wall milliseconds of one study into $out/<label>.ms
  local label=$1; shift
  local t0; t0=$(date +%s%N)
  $py -m resnorm.cli train -m study=findings task=image_digits \
      hydra.sweep.dir="$out/$label" "$@" > "$out/$label.log" 2>&1
  echo $(( ($(date +%s%N) - t0) / 1000000 )) > "$out/$label.ms"
}
timed unpacked pack=1 "$@"   # Hydra's basic sweeper, one run per job (presets pack)
timed packed "pack=$pack" "$@"
u=$(cat "$out/unpacked.ms"); p=$(cat "$out/packed.ms")
n=$(find "$out/packed" -name summary.json -not -path '*/.packs/*' | wc -l)
$py -c "print(f'runs: $n; unpacked {$u/1e3:.1f} s; packed (pack=$pack) {$p/1e3:.1f} s; ' \
           f'packed/unpacked {$p/$u:.3f}')"
