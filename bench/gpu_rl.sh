#!/usr/bin/env bash
# The RL method comparison (bench/rl.py parts compare + pure) on a GPU machine: every (method, seed)
# run is its own process on the GPU (RLConfig.device auto -> cuda). Runs go to runs/bench_rl_gpu;
# $OUT/rl_runs.tgz brings back their metrics and configs, $OUT/rl_checkpoints.tgz the checkpoints of
# unfinished runs (which then resume here, if it is small enough to come back). Then, here: tar xzf rl_runs.tgz && .venv/bin/python bench/rl.py --part compare --work runs/bench_rl_gpu
set -u
export PYTHONPATH=$PWD PRMKIT_QUIET=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/prmkit_gpu_out}
BUDGET=${BUDGET:-450}
W=runs/bench_rl_gpu
mkdir -p "$OUT" "$W/logs"
one() { timeout "$BUDGET" python3 bench/rl.py --work "$W" --one "$1" "$2" --one-part "$3" > "$W/logs/$3_$1_$2.log" 2>&1; echo "$3 $1 $2 rc=$?" >> "$W/logs/done.txt"; }
for s in 0 1 2; do for m in grpo prime pure pav; do one $m $s compare & done; done
one pure-sum 0 pure &
one pure 0 pure &
wait
cat "$W/logs/done.txt"
python3 - <<'PY'
import json, pathlib
for f in sorted(pathlib.Path("runs/bench_rl_gpu").glob("*/*/seed*/metrics.jsonl")):
    r = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    ev = [(x["step"], round(x["eval/accuracy"], 3)) for x in r if "eval/accuracy" in x]
    print(f.parent, r[-1]["step"], r[-1].get("time/step_s"), ev)
PY
# finished runs: drop their checkpoints (the metrics are the result); unfinished ones keep theirs
for d in "$W"/*/*/seed*; do
  last=$(tail -n 1 "$d/metrics.jsonl" 2>/dev/null | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['step'])" 2>/dev/null)
  [ "$last" = "160" ] && rm -rf "$d/checkpoint"
done
tar czf "$OUT/rl_runs.tgz" --exclude=checkpoint "$W"
tar czf "$OUT/rl_checkpoints.tgz" $(ls -d "$W"/*/*/seed*/checkpoint 2>/dev/null) 2>/dev/null
ls -la "$OUT"
