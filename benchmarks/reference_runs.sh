#!/usr/bin/env bash
# 25 short reference runs (every named variant of the seed-article era on image_digits,
# and pre_ln / post_ln / deepnorm on the other embedded tasks) into OUT_DIR, then, with a
# second directory, a comparison of their metrics: a refactor changes no number.
# Usage: benchmarks/reference_runs.sh OUT_DIR [COMPARE_WITH_DIR]
set -u
out=$1
py=${PYTHON:-python3}
mkdir -p "$out"
run() { $py -m resnorm.cli train "$@" > /dev/null 2>&1; }
for v in pre_ln post_ln sandwich no_norm no_residual no_residual_post plain rezero layerscale \
         deepnorm rmsnorm_pre dyt_pre bert uncentered_ln unscaled_attn qk_norm; do
  run variant=$v trainer.max_steps=30 trainer.val_every=15 seed=1 model.depth=3 \
      hydra.run.dir="$out/digits_$v"
done
for t in nlp_charlm nlp_listops speech_synth; do
  for v in pre_ln post_ln deepnorm; do
    run task=$t variant=$v trainer.max_steps=20 trainer.val_every=10 seed=2 \
        hydra.run.dir="$out/${t}_$v"
  done
done
[ $# -lt 2 ] && exit 0
$py - "$2" "$out" <<'PY'
import json, pathlib, sys
a, b = (pathlib.Path(p) for p in sys.argv[1:])
same = 0
for d in sorted(p for p in a.iterdir() if (p / "summary.json").is_file()):
    x, y = (json.loads((r / d.name / "summary.json").read_text()) for r in (a, b))
    keys = ("status", "params", "metrics")
    if all(x[k] == y[k] for k in keys):
        same += 1
    else:
        print("differs:", d.name)
print(f"identical metrics: {same} of {len(list(a.iterdir()))}")
PY
