"""Turn virt-what's test trees into virtbench captured trees (tests/data/detect/virt-what-*).

virt-what (https://people.redhat.com/~rjones/virt-what/, GPL-2.0-or-later) keeps, for each
platform it knows, files captured on a real machine (``tests/<name>/proc/...``) plus three
stand-in programs: ``sbin/dmidecode`` (prints the machine's dmidecode output),
``sbin/virt-what-cpuid-helper`` (prints the CPUID hypervisor signature) and ``sbin/uname``
(prints the architecture). This script copies the captured files verbatim and turns the
three programs' output into the files a virtbench snapshot has:

* ``sys/class/dmi/id/*`` from the dmidecode sections (BIOS, System, Base Board, Chassis),
* ``cpuid.txt``: ``virt-what-cpuid-helper: <signature>``, or ``no known signature ...``
  when it printed nothing (it looks for a known signature in every hypervisor leaf),
* ``arch.txt``: the architecture (read by bench/detect_vs_peers.py, not by detect).

Each tree gets a README.md saying where every file came from and what virt-what prints.

    python tests/data/detect/import_virt_what.py REPO [LABEL [NAME ...]]

REPO is a virt-what git repository (checkout or bare), LABEL how the READMEs name it, NAMEs
the test trees to convert (default: all). Sources of the committed trees, read with
``git show``: the GitHub mirror jordemort/virt-what at commit bf42d9b (2020-04-14, virt-what
1.20: all its trees) and the mirror zdyxry/virt-what at 9477302 (2023-06-29: the trees 1.20
did not have: alibaba-cloud-arm, alibaba-cloud-x86, crio, esx-arm, google-cloud, illumos-lx,
oci, upcloud).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"Makefile.am", "test.sh"}

_DMI = {
    "BIOS Information": {"Vendor": "bios_vendor", "Version": "bios_version",
                         "Release Date": "bios_date"},
    "System Information": {"Manufacturer": "sys_vendor", "Product Name": "product_name",
                           "Version": "product_version", "Family": "product_family"},
    "Base Board Information": {"Manufacturer": "board_vendor", "Product Name": "board_name"},
    "Chassis Information": {"Manufacturer": "chassis_vendor", "Asset Tag": "chassis_asset_tag"},
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def heredoc(script: str) -> str:
    """What a stand-in program prints: its 'cat <<EOF' body or its 'echo' arguments."""
    m = re.search(r"<<\s*'?(\w+)'?\n(.*?)\n\1\s*$", script, re.S | re.M)
    if m:
        return m.group(2) + "\n"
    out = []
    for line in script.splitlines():
        e = re.match(r"\s*echo\s*(.*)$", line)
        if e:
            out.append(e.group(1).strip().strip("'\""))
    return "\n".join(out) + ("\n" if out else "")


def dmi_files(text: str) -> dict[str, str]:
    files: dict[str, str] = {}
    section = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
            continue
        key, sep, value = line.strip().partition(": ")
        fname = _DMI.get(section or "", {}).get(key)
        if sep and fname and fname not in files:
            files[fname] = value.strip()
    return files


def import_case(repo: Path, commit: str, name: str, expected: str, label: str) -> None:
    dest = HERE / f"virt-what-{name}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    listing = git(repo, "ls-tree", "-r", "--name-only", commit, f"tests/{name}").split()
    verbatim: list[str] = []
    derived: list[str] = []
    uname = f"{commit}:tests/{name}/sbin/uname"
    arch = heredoc(git(repo, "show", uname)).strip() if f"tests/{name}/sbin/uname" in listing \
        else "x86_64"
    for path in listing:
        rel = path.split("/", 2)[2]
        if rel in SKIP:
            continue
        data = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                              capture_output=True, check=True).stdout
        if rel.startswith("sbin/"):
            out = heredoc(data.decode("utf-8", "replace"))
            prog = rel.split("/", 1)[1]
            if prog == "dmidecode":
                for fname, value in dmi_files(out).items():
                    target = dest / "sys/class/dmi/id" / fname
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(value + "\n")
                    derived.append(f"sys/class/dmi/id/{fname}")
            elif prog == "virt-what-cpuid-helper":
                sig = out.strip()
                # CPUID exists on x86 only; '?' was printed by one qemu guest, for unknown
                # reasons.
                if re.fullmatch(r"i\d86|x86_64", arch) and sig != "?":
                    sig = sig or "no known signature in leaves 0x40000000-0x4000ff00"
                    (dest / "cpuid.txt").write_text(f"virt-what-cpuid-helper: {sig}\n")
                    derived.append("cpuid.txt")
            elif prog == "uname":
                (dest / "arch.txt").write_text(out.strip() + "\n")
                derived.append("arch.txt")
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        verbatim.append(rel)
    readme = [
        f"# virt-what-{name}",
        "",
        f"Converted from virt-what's test tree `tests/{name}` ({label}, commit {commit[:7]}) "
        "by `import_virt_what.py`.",
        "virt-what is GPL-2.0-or-later; these are files its contributors captured on the "
        "platform.",
        "",
        "Copied verbatim: " + (", ".join(f"`{v}`" for v in sorted(verbatim)) or "nothing") + ".",
        "",
        "Derived: " + (", ".join(f"`{d}`" for d in sorted(derived)) or "nothing")
        + " (DMI values from the output of its stand-in `sbin/dmidecode`, the CPUID "
        "signature from `sbin/virt-what-cpuid-helper`, the architecture from `sbin/uname`).",
        "",
        f"virt-what's expected output for this tree: `{expected or '(nothing: bare metal)'}`.",
        "",
    ]
    (dest / "README.md").write_text("\n".join(readme))


def main() -> int:
    repo = Path(sys.argv[1])
    label = sys.argv[2] if len(sys.argv) > 2 else "GitHub mirror jordemort/virt-what"
    only = set(sys.argv[3:])
    commit = git(repo, "rev-parse", "HEAD").strip()
    names = [p.split("/", 1)[1] for p in git(repo, "ls-tree", "--name-only", commit,
                                             "tests/").split() if not p.endswith(".am")]
    for name in names:
        if only and name not in only:
            continue
        test = git(repo, "show", f"{commit}:tests/{name}/test.sh")
        m = re.search(r'^expected="([^"]*)"', test, re.M)
        import_case(repo, commit, name, " ".join((m.group(1) if m else "").split()), label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
