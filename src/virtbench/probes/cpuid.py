"""The CPUID hypervisor leaves (0x40000000 + n*0x100), read by a tiny C helper.

The helper is compiled with the host ``cc`` on first use and cached under
``virtbench.paths.cache_dir()`` (keyed by the source, the flags and the compiler binary).
Without a compiler, or on a CPU that is not x86, there is no CPUID: the probe says so and
detection relies on the other sources.

Offline (``--root DIR``), ``DIR/cpuid.txt`` is parsed instead. It may be the helper's own
output (what ``virtbench snapshot`` writes), the raw dump of the ``cpuid`` tool
(``0x40000000 0x00: eax=... ebx=... ecx=... edx=...``), or any text that names a known
signature (``hypervisor_id = "XenVMMXenVMM"``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from virtbench import paths
from virtbench.probes import hypervisors

HELPER_SOURCE = r"""/* virtbench cpuid helper: print the CPUID hypervisor leaves. */
#include <stdio.h>
#include <cpuid.h>

int main(void)
{
    unsigned int a, b, c, d, leaf;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 2;
    printf("hypervisor_bit=%u\n", (c >> 31) & 1u);
    for (leaf = 0x40000000u; leaf <= 0x40000f00u; leaf += 0x100u) {
        __cpuid(leaf, a, b, c, d);
        if (leaf != 0x40000000u && !(a | b | c | d))
            continue;
        printf("0x%08x eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", leaf, a, b, c, d);
    }
    return 0;
}
"""
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


def _helper_key(cc: str) -> str:
    st = os.stat(cc)
    h = hashlib.sha256()
    h.update(HELPER_SOURCE.encode())
    h.update(" ".join(FLAGS).encode())
    h.update(f"{os.path.realpath(cc)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _build(cc: str, out_dir: Path, exe: Path) -> str | None:
    """Compile the helper into ``exe`` (atomically); the reason on failure."""
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src = Path(tmp) / "cpuid.c"
        src.write_text(HELPER_SOURCE)
        tmp_exe = Path(tmp) / "cpuid"
        proc = subprocess.run(
            [cc, *FLAGS, "-o", str(tmp_exe), str(src)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["?"])[0]
            return f"cannot build the CPUID helper with {cc}: {first}"
        os.replace(tmp_exe, exe)  # atomic: concurrent builders agree
    return None


def helper_path() -> Path | str:
    """The compiled helper (building it if needed), or a string saying why there is none."""
    if not is_x86():
        return f"not x86 ({platform.machine()}): no CPUID instruction"
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        return "no C compiler (cc) to build the CPUID helper"
    try:
        key = _helper_key(cc)
    except OSError as exc:
        return f"cannot stat the compiler: {exc}"
    out_dir = paths.cache_dir() / "detect"
    exe = out_dir / f"cpuid-{key}"
    try:
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
        out_dir.mkdir(parents=True, exist_ok=True)
        why = _build(cc, out_dir, exe)
    except (OSError, subprocess.SubprocessError) as exc:
        # An unusable cache (read-only home, another user's directory): build privately.
        return _private_build(cc, f"cache {out_dir}: {exc}")
    return why or exe


_PRIVATE: list[Path] = []


def _private_build(cc: str, reason: str) -> Path | str:
    """Build the helper in a private temporary directory (removed at exit)."""
    if _PRIVATE and _PRIVATE[0].is_file():
        return _PRIVATE[0]
    import atexit
    import shutil as _shutil

    try:
        tmp = Path(tempfile.mkdtemp(prefix="virtbench-cpuid-"))
        atexit.register(_shutil.rmtree, tmp, True)
        exe = tmp / "cpuid"
        why = _build(cc, tmp, exe)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot build the CPUID helper ({reason}; {exc})"
    if why:
        return why
    _PRIVATE[:] = [exe]
    return exe


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
