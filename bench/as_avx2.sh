#!/usr/bin/env bash
# Run a command as on the AVX2-only machine kind, on a CPU that has AVX-512 (this project's machines come
# both ways; a session gets one): ragtune reads a cpuinfo without the avx512*/amx* flags (RAGTUNE_CPUINFO, so
# it chooses fp32 torch and `--backend auto` as it would there), and torch, oneDNN and MKL are held to their
# AVX2 kernels. llama.cpp's portable build (scripts/install-llamacpp.sh) runs AVX2 kernels on both kinds.
# It emulates the instruction set, not the other machine's clock, caches or memory: compare runs made under it
# with each other, and quote the real machine's figures where they exist.
#   usage: bench/as_avx2.sh COMMAND [ARGS...]
set -euo pipefail
info=$(mktemp /tmp/ragtune-cpuinfo-avx2.XXXXXX)  # left behind: the command may start servers that read it
sed -E '/^flags/ s/ (avx512[a-z0-9_]*|amx[a-z0-9_]*)//g' /proc/cpuinfo >"$info"
export RAGTUNE_CPUINFO=$info ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
exec "$@"
