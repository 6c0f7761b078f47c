#!/usr/bin/env python3
"""Two root filesystems, entry by entry: type, mode, owner, size, content
(sha256), symlink target, device number, extended attributes, mtime (to the
nanosecond, except with --no-mtimes) and hard-link identity (which paths share an
inode). The roots themselves are not compared (they are the destinations).

    benches/tree_diff.py [--no-owners] [--no-mtimes] LEFT RIGHT

Prints the number of entries on each side, then every kind of difference with
its count and first example; exits 1 when there is any. benches/umoci_identity.sh
uses it to hold pulltime's trees against umoci's (docs/performance.md, "The same
tree as umoci").
"""
import collections
import hashlib
import os
import stat
import sys


def snapshot(root, owners, mtimes):
    out = {}
    inodes = collections.defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            e = {"type": stat.filemode(st.st_mode)[0], "mode": oct(stat.S_IMODE(st.st_mode))}
            if owners:
                e["owner"] = (st.st_uid, st.st_gid)
            if mtimes:
                e["mtime"] = st.st_mtime_ns
            if stat.S_ISREG(kind):
                e["size"] = st.st_size
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                e["sha256"] = h.hexdigest()
            elif stat.S_ISLNK(kind):
                e["target"] = os.readlink(path)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                names = os.listxattr(path, follow_symlinks=False)
                e["xattrs"] = sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in names)
            except OSError as err:
                e["xattrs"] = f"unreadable: {err.strerror}"
            if not stat.S_ISDIR(kind) and st.st_nlink > 1:
                inodes[st.st_ino].append(rel)
            out[rel] = e
    # Hard links: each path names the first path of its inode (same on both
    # sides when the same paths share an inode).
    for paths in inodes.values():
        first = min(paths)
        for p in paths:
            out[p]["hard link of"] = first
    return out


def main():
    args = sys.argv[1:]
    owners = "--no-owners" not in args
    mtimes = "--no-mtimes" not in args
    roots = [a for a in args if not a.startswith("--")]
    if len(roots) != 2 or not all(os.path.isdir(r) for r in roots):
        sys.exit("usage: tree_diff.py [--no-owners] [--no-mtimes] LEFT_DIR RIGHT_DIR")
    left, right = (snapshot(r, owners, mtimes) for r in roots)
    print(f"{len(left)} entries in {roots[0]}, {len(right)} in {roots[1]}")
    counts = collections.Counter()
    first = {}
    for rel in sorted(set(left) | set(right)):
        if rel not in right or rel not in left:
            kind = f"only in {roots[0] if rel in left else roots[1]}"
            counts[kind] += 1
            first.setdefault(kind, rel)
            continue
        a, b = left[rel], right[rel]
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                kind = f"{field} of {'directories' if a['type'] == 'd' else 'other entries'}"
                counts[kind] += 1
                first.setdefault(kind, f"{rel}: {a.get(field)!r} vs {b.get(field)!r}")
    for kind, n in counts.most_common():
        print(f"{n} differ in {kind}, e.g. {first[kind]}")
    if counts:
        sys.exit(1)
    print("identical")


if __name__ == "__main__":
    main()
