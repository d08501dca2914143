"""The CPUID hypervisor leaves (0x40000000 + n*0x100), read by a tiny C helper.

The helper (``probes/c/cpuid.c``) is compiled with the host's ``$CC`` on first use, in the
one build cache of :mod:`virtbench.toolchain` (keyed by the source, the flags and
``cc --version``; a private temporary directory when the cache is not writable).
Without a compiler, or on a CPU that is not x86, there is no CPUID: the probe says so and
detection relies on the other sources.

Offline (``--root DIR``), ``DIR/cpuid.txt`` is parsed instead. It may be the helper's own
output (what ``virtbench snapshot`` writes), the raw dump of the ``cpuid`` tool
(``0x40000000 0x00: eax=... ebx=... ecx=... edx=...``), or any text that names a known
signature (``hypervisor_id = "XenVMMXenVMM"``).
"""

from __future__ import annotations

import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from virtbench import toolchain
from virtbench.errors import EnvironmentUnsupported
from virtbench.probes import hypervisors
from virtbench.toolchain import Program

HELPER = Program("cpuid", Path(__file__).resolve().parent / "c", ("cpuid.c",))
FLAGS = ("-O1", "-w")

# Signatures (EBX, ECX, EDX as 12 bytes) -> hypervisor name, from the definitions.
SIGNATURES: dict[str, str] = {
    sig: name for sig, (name, _) in hypervisors.cpuid_signatures().items()
}

_LEAF_RE = re.compile(
    r"(0x4000[0-9a-f]{4})\b[^\n]*?eax=(0x[0-9a-f]+)\s+ebx=(0x[0-9a-f]+)\s+"
    r"ecx=(0x[0-9a-f]+)\s+edx=(0x[0-9a-f]+)",
    re.IGNORECASE,
)
_BIT_RE = re.compile(r"hypervisor_bit\s*[=:]\s*([01])")
# A reader that looked at every hypervisor leaf and found no known signature says so.
NO_SIGNATURE = "no known signature"


@dataclass
class CpuidLeaf:
    leaf: int
    max_leaf: int
    signature: str  # printable text of EBX ECX EDX


@dataclass
class CpuidResult:
    source: str  # 'cpuid instruction' or 'cpuid.txt'
    no_signature: bool = False  # the text says no leaf holds a known signature
    hypervisor_bit: bool | None = None
    leaves: list[CpuidLeaf] = field(default_factory=list)
    # (name, signature, leaf) for every known signature found, outermost leaf first
    found: list[tuple[str, str, int]] = field(default_factory=list)
    error: str | None = None


def _signature(b: int, c: int, d: int) -> str:
    b, c, d = (x & 0xFFFFFFFF for x in (b, c, d))
    raw = b.to_bytes(4, "little") + c.to_bytes(4, "little") + d.to_bytes(4, "little")
    return raw.decode("latin-1").replace("\x00", " ").strip()


def _lookup(signature: str) -> str | None:
    text = signature.strip()
    for sig in SIGNATURES:
        if text == sig.strip() or (len(sig) >= 9 and sig.strip() in text):
            return sig
    return None


def lookup(signature: str) -> str | None:
    """The hypervisor a CPUID signature names, or ``None``."""
    sig = _lookup(signature)
    return SIGNATURES[sig] if sig else None


def variant_of(signature: str) -> str | None:
    """The variant a CPUID signature implies (kvmtool's LKVM is KVM, variant kvmtool)."""
    sig = _lookup(signature)
    return hypervisors.cpuid_signatures()[sig][1] if sig else None


def parse(text: str, source: str) -> CpuidResult:
    """Parse helper output, a ``cpuid`` tool dump, or free text naming a signature."""
    res = CpuidResult(source=source, no_signature=NO_SIGNATURE in text)
    m = _BIT_RE.search(text)
    if m:
        res.hypervisor_bit = m.group(1) == "1"
    seen: set[int] = set()
    for m in _LEAF_RE.finditer(text):
        leaf = int(m.group(1), 16)
        if leaf in seen:  # 'cpuid' dumps every CPU: the first is enough
            continue
        seen.add(leaf)
        a, b, c, d = (int(m.group(i), 16) for i in range(2, 6))
        res.leaves.append(CpuidLeaf(leaf, a, _signature(b, c, d)))
    trusted = res.hypervisor_bit is not False
    for lf in res.leaves:
        name = lookup(lf.signature)
        # Without the hypervisor bit, bare-metal CPUs return junk for these leaves.
        if name and (trusted or lf.leaf == 0x40000000):
            res.found.append((name, lf.signature, lf.leaf))
    if not res.leaves:
        for sig, name in SIGNATURES.items():
            if sig.strip() in text and all(n != name for n, _, _ in res.found):
                res.found.append((name, sig.strip(), 0x40000000))
    return res


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def helper_path() -> Path | str:
    """The compiled helper (building it if needed), or a string saying why there is none."""
    if not is_x86():
        return f"not x86 ({platform.machine()}): no CPUID instruction"
    try:
        return toolchain.build_program(HELPER, FLAGS)
    except EnvironmentUnsupported as exc:
        return f"cannot build the CPUID helper: {exc}"


_RESULT: list[tuple[str | None, str]] = []


def run_helper() -> tuple[str | None, str]:
    """(helper output, '') or (None, why not). Run once per process: every result document
    embeds a detect report, and the hypervisor leaves do not change under a running process."""
    if not _RESULT:
        _RESULT.append(_run_helper())
    return _RESULT[0]


def _run_helper() -> tuple[str | None, str]:
    exe = helper_path()
    if isinstance(exe, str):
        return None, exe
    try:
        proc = subprocess.run(
            [str(exe)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"CPUID helper failed: {exc}"
    if proc.returncode != 0:
        return None, f"CPUID helper exited with {proc.returncode}"
    return proc.stdout, ""
