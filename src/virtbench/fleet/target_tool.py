"""The few things done on a target with its own Python before virtbench runs there: check a
cached bundle against its content hash, unpack a shipped bundle safely, encode a document.

Standard library only, Python >= 3.11, no import of virtbench: the controller sends this
file's text with ``python3 -I -S -c`` (nothing from the target is imported but the standard
library), and imports the same module itself to compute the hash it expects, so both sides
hash a tree with the same code.

Every file on the target is treated as hostile: a cached bundle counts only if the tree on
disk hashes to the expected value (every file's content and executable bit, every
directory; a symlink, a device or an extra file makes it invalid, and it is removed).

Commands (``sys.argv[1:]``)::

    verify ROOT HASH          vb-ready=1 when ROOT is intact, else vb-ready=0 (ROOT removed)
    install TAR ROOT HASH     unpack TAR next to ROOT, check it, move it into place, remove
                              TAR and this host's other bundles; vb-installed=HASH
    b64 FILE                  FILE in base64 (for a document fetched over a tty)
"""

import base64
import hashlib
import os
import shutil
import stat
import sys
import tarfile
import zlib

CHUNK = 1 << 20


def tree_hash(root: str) -> str | None:
    """sha256 over every entry under ``root``, sorted: ``d PATH`` for a directory, ``f PATH
    X SHA256`` for a regular file (X: 1 if executable). None if anything else is there."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            relname = name if rel == "." else rel + "/" + name
            if stat.S_ISDIR(st.st_mode):
                lines.append("d " + relname)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    while True:
                        block = f.read(CHUNK)
                        if not block:
                            break
                        h.update(block)
                x = "1" if st.st_mode & 0o111 else "0"
                lines.append("f " + relname + " " + x + " " + h.hexdigest())
            else:
                return None
    lines.sort()
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def verify(root: str, expected: str) -> int:
    if os.path.isdir(root) and not os.path.islink(root):
        try:
            got = tree_hash(root)
        except OSError:
            got = None
        if got == expected:
            print("vb-ready=1")
            return 0
    if os.path.lexists(root):
        _remove(root)
        print("vb-removed=1")
    print("vb-ready=0")
    return 0


def _safe_members(tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Regular files and directories with relative, clean names only."""
    out = []
    for m in tf.getmembers():
        name = m.name
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or "\\" in name or not name:
            raise ValueError("unsafe path in the bundle: " + repr(name))
        if not (m.isreg() or m.isdir()):
            raise ValueError("not a file or directory in the bundle: " + repr(name))
        m.mode = 0o755 if (m.isdir() or m.mode & 0o111) else 0o644
        m.uid = m.gid = 0
        m.uname = m.gname = ""
        out.append(m)
    return out


def install(tar: str, root: str, expected: str) -> int:
    parent = os.path.dirname(root)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = root + ".tmp-" + str(os.getpid())
    _remove(tmp)
    os.mkdir(tmp, 0o700)
    try:
        with tarfile.open(tar, "r:*") as tf:
            members = _safe_members(tf)
            for m in members:
                target = os.path.join(tmp, m.name)
                if m.isdir():
                    os.makedirs(target, mode=0o755, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                src = tf.extractfile(m)
                if src is None:
                    raise ValueError("unreadable member " + repr(m.name))
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             m.mode)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
        got = tree_hash(tmp)
        if got != expected:
            print("the shipped bundle does not match its hash (corrupted in transit?)")
            return 1
        if os.path.lexists(root):
            if os.path.isdir(root) and tree_hash(root) == expected:
                pass  # another installer finished first
            else:
                _remove(root)
        if not os.path.lexists(root):
            os.rename(tmp, root)
    except (OSError, ValueError, tarfile.TarError, EOFError, zlib.error) as exc:
        # zlib.error: a tar damaged in transit can fail in the decompressor (no TarError)
        print("cannot unpack the shipped bundle: " + str(exc)[:200])
        return 1
    finally:
        _remove(tmp)
        _remove(tar)
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if path != root:
            _remove(path)
    print("vb-installed=" + expected)
    return 0


def b64(path: str) -> int:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0
    sys.stdout.write(base64.b64encode(data).decode("ascii") + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "verify":
        return verify(argv[1], argv[2])
    if len(argv) == 4 and argv[0] == "install":
        return install(argv[1], argv[2], argv[3])
    if len(argv) == 2 and argv[0] == "b64":
        return b64(argv[1])
    print("usage: verify ROOT HASH | install TAR ROOT HASH | b64 FILE")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
