#!/usr/bin/env bash
# One GPU-machine session (the device tool): the CUDA path check, the PRM scoring bench on the GPU,
# and the search bench's points computed on the GPU by parallel processes (one seed x method group
# each; points are cached per file, so a cut-off run keeps what finished). Results go to $OUT:
#   cuda_check.json, scoring_cuda.json, search_points.tgz (the cached points and every log).
# Then, here: tar xzf search_points.tgz && .venv/bin/python bench/search.py --only-cached --note "..."
set -u
export PYTHONPATH=$PWD PRMKIT_QUIET=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/prmkit_gpu_out}
BUDGET=${BUDGET:-500}      # seconds the search processes may run
mkdir -p "$OUT" logs_gpu
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
run() { local name=$1; shift; timeout "$BUDGET" python3 bench/search.py --device cuda --no-write "$@" > "logs_gpu/$name.log" 2>&1; echo "$name rc=$?" >> logs_gpu/done.txt; }
for s in 0 1 2; do
  run "bon_beam_s$s" --seeds "$s" --methods beam --parts curves &
  run "dvts_s$s" --seeds "$s" --methods dvts --parts curves --skip-bon &
  run "er_s$s" --seeds "$s" --methods early_reject --parts curves --skip-bon &
done
run mcts --parts mcts &
run temps --parts temps &
timeout 300 python3 bench/cuda_check.py --out "$OUT/cuda_check.json" > logs_gpu/cuda_check.log 2>&1
echo "cuda_check rc=$?" >> logs_gpu/done.txt
timeout 120 python3 bench/scoring.py --device cuda --threads 1 --out "$OUT/scoring_cuda.json" > logs_gpu/scoring.log 2>&1
echo "scoring rc=$?" >> logs_gpu/done.txt
wait
cat logs_gpu/done.txt
ls bench/results/search_points/gymprm-p200-v2 | wc -l
tar czf "$OUT/search_points.tgz" bench/results/search_points/gymprm-p200-v2 logs_gpu
tail -n 3 logs_gpu/*.log | cut -c1-300
