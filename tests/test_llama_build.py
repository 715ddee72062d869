"""The llama.cpp that scripts/setup.sh built uses the vector instructions this CPU has.

The native build (-march=native) traps on these VMs, so setup names the instruction sets itself:
AVX2 always, AVX-512 when /proc/cpuinfo lists it (prompt processing 1.4x faster here). pip
reuses a cached wheel whatever CMAKE_ARGS say, so this checks the build that is installed.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _built_with() -> dict[str, bool]:
    info = llama_cpp.llama_print_system_info().decode()
    return {k.strip(): v.strip() == "1" for k, v in
            (item.split("=", 1) for item in info.replace("CPU :", "|").split("|") if "=" in item)}


pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _cpu_flags(),
                                reason="instruction sets are chosen for x86-64 Linux only")


def test_llama_cpp_uses_avx2() -> None:
    assert _built_with().get("AVX2") is ("avx2" in _cpu_flags())


def test_llama_cpp_uses_avx512_exactly_when_the_cpu_has_it() -> None:
    flags, built = _cpu_flags(), _built_with()
    assert built.get("AVX512", False) is (AVX512 <= flags)
    if AVX512 <= flags:
        assert built.get("AVX512_VNNI", False) is ("avx512_vnni" in flags)
        assert built.get("AVX512_BF16", False) is ("avx512_bf16" in flags)
        assert built.get("AVX512_VBMI", False) is ("avx512vbmi" in flags)
