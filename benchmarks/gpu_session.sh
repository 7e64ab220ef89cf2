#!/usr/bin/env bash
# One prepared run on a lent CUDA machine (see ../shared/GPU.md): the cuda-marked tests,
# the GPU speed tables and the applications on --device cuda.  Writes logs under $OUT.
#
#   bash benchmarks/gpu_session.sh [tests] [ragged] [full] [memory] [decode] [graphs] [sweep]
#                                  [kernels] [apps]
#
# (no argument: all of them).  Carry .whl (optree, pythonbible wheels) with the call.
set -u
OUT=${OUT:-/tmp/rnnkit-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
PARTS=${*:-tests ragged full memory decode graphs sweep kernels apps}
want() { [[ " $PARTS " == *" $1 "* ]]; }
step() { echo "== $1 ($(date +%T))"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'cudnn', torch.backends.cudnn.version())"
} | tee "$OUT/machine.txt"
if want tests; then
  step "pytest -m cuda"
  timeout 300 python3 -m pytest -q -p no:cacheprovider -m cuda tests/ 2>&1 | tee "$OUT/pytest_cuda.txt" | tail -25
fi
if want ragged; then
  step "rnn_speed ragged fp32 and bf16"
  (cd benchmarks && timeout 100 python3 rnn_speed.py --device cuda --only ragged --repeat 21) \
    2>&1 | tee "$OUT/bench_ragged_fp32.txt" | tail -16
  (cd benchmarks && timeout 80 python3 rnn_speed.py --device cuda --only ragged --repeat 21 \
    --autocast bf16) 2>&1 | tee "$OUT/bench_ragged_bf16.txt" | tail -16
fi
if want full; then
  step "rnn_speed full fp32 (user cells eager and cuda_graph)"
  (cd benchmarks && timeout 120 python3 rnn_speed.py --device cuda --only full --repeat 15 \
    --no-compile) 2>&1 | tee "$OUT/bench_full_fp32.txt" | tail -16
fi
if want memory; then
  step "rnn_memory (saved for backward, peak)"
  (cd benchmarks && timeout 120 python3 rnn_memory.py --device cuda) 2>&1 \
    | tee "$OUT/memory_cuda.txt" | tail -20
fi
if want decode; then
  step "decode_speed"
  (cd benchmarks && timeout 100 python3 decode_speed.py --device cuda --repeat 7) 2>&1 \
    | tee "$OUT/decode_cuda.txt" | tail -10
fi
if want graphs; then
  step "decode_speed --graphs (eager vs replayed CUDA graphs)"
  (cd benchmarks && timeout 150 python3 decode_speed.py --device cuda --graphs --repeat 7) \
    2>&1 | tee "$OUT/decode_graphs.txt" | tail -12
fi
if want sweep; then
  step "check_finished_every sweep"
  (cd benchmarks && timeout 120 python3 check_every_sweep.py --device cuda) 2>&1 \
    | tee "$OUT/check_every.txt" | tail -8
fi
if want kernels; then
  step "kernel count"
  (cd benchmarks && timeout 60 python3 kernel_count.py) 2>&1 | grep -v -i "profiler\|warn" \
    | tee "$OUT/kernel_count.txt" | tail -3
fi
if want apps; then
  step "charrnn train --device cuda"
  printf 'HAMLET\n' > /tmp/corpus.txt
  python3 - <<'PY' >> /tmp/corpus.txt
import random
random.seed(0)
words = "to be or not that is the question whether tis nobler in the mind suffer".split()
print("\n".join(" ".join(random.choice(words) for _ in range(12)) for _ in range(3000)))
PY
  timeout 60 python3 -m rnnkit charrnn train --device cuda --corpus /tmp/corpus.txt \
    --steps 200 --out /tmp/char 2>&1 | tee "$OUT/charrnn_cuda.txt" | tail -4
  timeout 60 python3 -m rnnkit charrnn sample /tmp/char --device cuda --length 80 2>&1 | tail -3
  step "translate train --device cuda"
  timeout 150 python3 -m rnnkit translate train --device cuda --steps 200 --out /tmp/tr \
    2>&1 | tee "$OUT/translate_cuda.txt" | tail -6
fi
step "done"
