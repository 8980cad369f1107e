#!/usr/bin/env bash
# Build llama-cpp-python (llama.cpp's Python bindings) into the given Python's environment for the llama.cpp
# serving backend. It compiles llama.cpp from source (~3.5 min on 2 cores). The flags target any x86-64 CPU
# with AVX2 (a native build has died with "Illegal instruction" on another machine of the same kind); on a CPU
# without AVX2 it is skipped. A failed build never fails the install: the log says why, and ragtune serves
# with the transformers backend.
#   usage: install-llamacpp.sh PYTHON LOGFILE [auto|always]
# auto (make install LLAMACPP=1): only on a CPU without native bf16, the only kind where `--backend auto` serves with it
# (docs/llamacpp.md: with native bf16 the transformers backend is faster on RAG prompts, so the compile would
# only cost time); always (make llamacpp, CI): on any CPU.
set -uo pipefail
PY=${1:?python}
LOG=${2:?log file}
WHEN=${3:-always}
VERSION=0.3.36
CPUINFO=${RAGTUNE_CPUINFO:-/proc/cpuinfo}  # bench/as_avx2.sh points it at another machine kind's flags
mkdir -p "$(dirname "$LOG")"
if "$PY" -c "import llama_cpp" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(uname -m)" = x86_64 ] && ! grep -qw avx2 "$CPUINFO"; then
    echo "llama.cpp backend not installed: this CPU has no AVX2; serving uses the transformers backend"
    exit 0
fi
if [ "$WHEN" = auto ] && grep -qwE "avx512_bf16|amx_bf16" "$CPUINFO"; then
    echo "llama.cpp backend not built: this CPU has native bf16, where the transformers backend serves RAG" \
        "prompts faster (docs/llamacpp.md); \`make llamacpp\` builds it anyway (~3.5 min)"
    exit 0
fi
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
FLAGS="$FLAGS -DGGML_AVX512=OFF -DGGML_OPENMP=ON -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF"
FLAGS="$FLAGS -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
echo "building llama-cpp-python $VERSION (llama.cpp, ~3-4 min on 2 cores; log: $LOG)"
if CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PY" -m pip install -q "llama-cpp-python==$VERSION" >"$LOG" 2>&1 \
    && "$PY" -c "import llama_cpp" >>"$LOG" 2>&1; then
    echo "llama.cpp backend installed"
else
    "$PY" -m pip uninstall -q -y llama-cpp-python >>"$LOG" 2>&1  # never leave a half-working build behind
    echo "llama.cpp backend not installed: the build failed (last lines of $LOG below); serving uses the" \
        "transformers backend. Retry with: make llamacpp"
    tail -n 5 "$LOG"
fi
exit 0
