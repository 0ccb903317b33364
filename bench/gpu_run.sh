#!/usr/bin/env bash
# Every GPU measurement of issue #14 in one run (a lent GPU machine gives minutes, not hours).
#
#   OUT=/tmp/gpu-out ASSETS=.gpu bash bench/gpu_run.sh
#
# ASSETS holds what the machine lacks: wheels/ (diffusers + importlib_metadata, and pytest + pluggy +
# iniconfig for tests/test_cuda.py where they are missing, installed into /tmp/site), smollm2-tok/
# (SmolLM2's tokenizer, for genai_lib.text's cost on real text) and minilm-fp16/ (all-MiniLM-L6-v2
# stored in fp16, loaded as fp32: the diffusion notebook's text encoder).
# Steps run from the most to the least important; each has its own time limit and writes to $OUT as it
# goes, so what finished comes back even when the whole command runs out of time. On a CPU-only machine
# it runs the CPU versions (tests the script itself): DEVICE=cpu and smaller sizes.
set -u
OUT=${OUT:?set OUT to a folder for the results}
ASSETS=$(cd "${ASSETS:-.gpu}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p "$OUT"
if ls "$ASSETS"/wheels/*.whl >/dev/null 2>&1 && ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ASSETS"/wheels/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export GENAI_CACHE=${GENAI_CACHE:-/tmp/genai-cache} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PY:-python3}
if $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  DEVICE=cuda; NEW=128; BATCH=32; REP=3; SCALE=1
else
  DEVICE=cpu; NEW=${NEW:-8}; BATCH=4; REP=1; SCALE=${SCALE:-4}   # a quick self-test of the script
fi
step() { echo; echo "=== $1 ($(date -u +%T))"; }
t0=$(date +%s)
{
  date -u; uname -a; nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || true
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.version.cuda, 'default tf32', torch.backends.cuda.matmul.allow_tf32)"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
TOK=(); [ -d "$ASSETS/smollm2-tok" ] && TOK=(--tokenizer "$ASSETS/smollm2-tok")

step "decode: eager, genai_lib, static, batched (bf16 on a GPU that has it)"
timeout $((150 / SCALE + 60)) $PY bench/decode.py --device $DEVICE --modes eager,genai_lib,static,batched \
  --new-tokens $NEW --batch $BATCH --repeats $REP "${TOK[@]}" --json "$OUT/decode.jsonl" 2>&1 | grep -v Warning

step "genai_lib on $DEVICE against the CPU: tests/test_cuda.py (goal 4 at the library's level)"
GENAI_TEST_DEVICE=$DEVICE timeout 240 $PY -m pytest -q -p no:cacheprovider -p no:randomly -p no:xdist \
  tests/test_cuda.py 2>&1 | tail -40 | tee "$OUT/test_cuda.txt"

step "decode: a batch sampled by generate's multinomial on $DEVICE vs genai_lib's CPUSampler"
timeout $((90 / SCALE + 60)) $PY bench/decode.py --device $DEVICE --modes sampled,cpu_sampled \
  --new-tokens $NEW --batch $BATCH --repeats $REP "${TOK[@]}" --json "$OUT/decode.jsonl" 2>&1 | grep -v Warning

step "gpt vs transformers GPT-2 at the 124M shape: TF32 / fp32 / fp64"
timeout $((90 / SCALE + 60)) $PY bench/gpt_precision.py --device $DEVICE $([ $DEVICE = cpu ] && echo "--small --new-tokens 16") \
  --json "$OUT/precision.jsonl" 2>&1

step "thread policy: digit classifier"
timeout $((150 / SCALE + 60)) $PY bench/threads.py --parallel 4 --timeout $((10 / SCALE + 20)) \
  $([ $DEVICE = cpu ] && echo "--epochs 2") --json "$OUT/threads.jsonl" 2>&1

if [ $DEVICE = cuda ]; then
  step "decode: static cache + torch.compile(backend=cudagraphs)"
  timeout 100 $PY bench/decode.py --device cuda --modes eager,cudagraphs --new-tokens $NEW --repeats 2 \
    "${TOK[@]}" --json "$OUT/decode.jsonl" 2>&1 | grep -v Warning
  step "decode: static cache + torch.compile(mode=reduce-overhead) (inductor)"
  timeout 170 $PY bench/decode.py --device cuda --modes eager,compiled --new-tokens $NEW --repeats 2 \
    "${TOK[@]}" --json "$OUT/decode.jsonl" 2>&1 | grep -v Warning
  step "decode: fp16 eager and batched (the dtype of GPUs without fast bf16)"
  timeout 45 $PY bench/decode.py --device cuda --dtype fp16 --modes eager,batched --new-tokens 64 --batch $BATCH \
    --repeats 1 --json "$OUT/decode.jsonl" 2>&1 | grep -v Warning
fi

left=$(( ${DEADLINE_S:-540} - ($(date +%s) - t0) ))
step "notebooks, offline profile, on $DEVICE (${left} s left)"
EMB=(); [ -d "$ASSETS/minilm-fp16" ] && export GENAI_MODEL_EMBEDDER="$ASSETS/minilm-fp16"
NBS=${NOTEBOOKS_OFFLINE:-diffusion,gan,vae}
[ $left -gt 30 ] && timeout $((left - 10)) $PY bench/gpu_notebooks.py --notebooks "$NBS" --out "$OUT/nb-offline" \
  --timeout 200 --budget $((left - 60)) 2>&1

left=$(( ${DEADLINE_S:-540} - ($(date +%s) - t0) ))
step "notebooks, tiny profile, on $DEVICE (${left} s left)"
NBS=${NOTEBOOKS_TINY:-transformers,text-generation,prompting,question-answering,rag,fine-tuning,responsible-ai,code-generation}
[ $left -gt 30 ] && GENAI_PROFILE=tiny timeout $((left - 5)) $PY bench/gpu_notebooks.py --notebooks "$NBS" \
  --out "$OUT/nb-tiny" --timeout 60 --budget $((left - 40)) 2>&1
echo "total $(( $(date +%s) - t0 )) s"
