#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets into DIR/<target>/ (default
fuzz/seeds). Everything is generated here, so no binary seed is checked in.

    python3 fuzz/gen_seeds.py [DIR]

Seeds: references (short names, digests, ports, localhost, IPv6), real
WWW-Authenticate values (Docker Hub, ghcr.io, quay.io, distribution's token and
htpasswd auth), OCI and docker manifests, indexes and configs, and small tar layers
(files, directories, symlinks, hard links, whiteouts, opaque directories, fifos,
long names, attempted escapes) in pairs, as the layer targets read them.
"""

import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")
DIGEST = "sha256:" + "a3" * 32


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def references():
    refs = [
        "python",
        "python:3.12-slim",
        "library/python",
        "docker.io/library/alpine:3.20",
        "index.docker.io/library/busybox",
        f"alpine@{DIGEST}",
        f"docker.io/library/alpine:3.20@{DIGEST}",
        "ghcr.io/owner/image:v1.2.3",
        "quay.io/prometheus/node-exporter:latest",
        "registry.k8s.io/pause:3.9",
        "localhost/app",
        "localhost:5000/team/app:dev",
        f"127.0.0.1:5000/a/b/c@{DIGEST}",
        "[::1]:5000/x:y",
        "Host:5000/name",
        "my-registry.example.com:443/ns/sub/repo_name:tag.with-dots",
        "a" * 200 + ":" + "b" * 128,
    ]
    for i, r in enumerate(refs):
        write("reference", f"ref{i:02}", r)


def www_authenticate():
    headers = [
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"',
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:owner/image:pull"',
        'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
        'Bearer realm="http://127.0.0.1:5001/auth",service="Docker registry",scope="repository:team/app:pull,push"',
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull",error="insufficient_scope"',
        'Basic realm="Registry Realm"',
        'basic realm=registry',
        'Bearer realm="a\\"b\\\\c", service=plain , scope = "x"',
        "Bearer",
        'Negotiate abc, Bearer realm="r"',
    ]
    # The target's input is an Arbitrary enum: four zero bytes pick `Raw(String)`,
    # the rest of the input is the header.
    for i, h in enumerate(headers):
        write("www_authenticate", f"raw{i:02}", b"\0\0\0\0" + h.encode())


def descriptor(media_type, content, platform=None):
    d = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    if platform:
        d["platform"] = platform
    return d


def manifests():
    oci_m = "application/vnd.oci.image.manifest.v1+json"
    docker_m = "application/vnd.docker.distribution.manifest.v2+json"
    config = {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [DIGEST, "sha256:" + "b4" * 32]},
    }
    cfg = json.dumps(config).encode()
    layers = [
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", b"l1"),
        descriptor("application/vnd.oci.image.layer.v1.tar+zstd", b"l2"),
    ]
    oci = {
        "schemaVersion": 2,
        "mediaType": oci_m,
        "config": descriptor("application/vnd.oci.image.config.v1+json", cfg),
        "layers": layers,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    docker = {
        "schemaVersion": 2,
        "mediaType": docker_m,
        "config": descriptor("application/vnd.docker.container.image.v1+json", cfg),
        "layers": [
            descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", b"d1"),
            descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"d2"),
        ],
    }
    platforms = [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"},
        {"os": "unknown", "architecture": "unknown"},
    ]
    body = json.dumps(oci).encode()
    oci_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor(oci_m, body, p) for p in platforms],
    }
    docker_list = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [descriptor(docker_m, body, p) for p in platforms[:3]],
    }
    no_media_type_index = {"schemaVersion": 2, "manifests": oci_index["manifests"][:1]}
    docs = [
        (0, oci),
        (3, oci),
        (4, docker),
        (0, oci_index),
        (1, oci_index),
        (2, docker_list),
        (5, no_media_type_index),
        (0, config),
        (0, {"schemaVersion": 1, "name": "x", "fsLayers": []}),
    ]
    for i, (selector, doc) in enumerate(docs):
        write("manifest", f"doc{i:02}", bytes([selector]) + json.dumps(doc).encode())


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for m in members:
            kind, name = m[0], m[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "file":
                data = m[2]
                info.size = len(data)
                info.mode = 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = m[2] if len(m) > 2 else 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = m[2]
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = m[2]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    # Drop tarfile's padding to a 10 KiB record: keep the two end-of-archive blocks.
    body = buf.getvalue().rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512 + 1024)


def layers():
    lower = tar_bytes([
        ("dir", "etc"),
        ("file", "etc/hostname", b"lower\n"),
        ("dir", "usr/lib", 0o755),
        ("file", "usr/lib/libx.so.1", b"\x7fELF"),
        ("symlink", "usr/lib/libx.so", "libx.so.1"),
        ("hardlink", "usr/lib/libx-copy", "usr/lib/libx.so.1"),
        ("symlink", "lib", "usr/lib"),
        ("symlink", "abs", "/usr"),
        ("symlink", "up", "../../.."),
        ("dir", "opaque"),
        ("file", "opaque/old", b"old"),
        ("fifo", "run/fifo"),
        ("chr", "dev/null"),
        ("file", "d/" + "n" * 150 + "/long", b"long name"),
        ("dir", "ro", 0o500),
    ])
    upper = tar_bytes([
        ("file", "etc/.wh.hostname", b""),
        ("file", "opaque/.wh..wh..opq", b""),
        ("file", "opaque/new", b"new"),
        ("file", "lib/through-symlink", b"via lib -> usr/lib"),
        ("file", "abs/bin/tool", b"via an absolute symlink"),
        ("file", "up/escaped", b"must stay in the root"),
        ("symlink", "etc", "/"),
        ("file", "etc/x", b"x"),
        ("file", ".wh..wh.plnk/123", b""),
        ("file", "usr/.wh.lib", b""),
    ])
    escapes = tar_bytes([
        ("symlink", "out", "../outside"),
        ("file", "out/canary", b"overwritten?"),
        ("file", "../sentinel", b"overwritten?"),
        ("file", ".wh.out", b""),
        ("hardlink", "h", "../sentinel"),
    ])
    empty = b""
    pairs = [(lower, upper), (lower, escapes), (upper, lower), (escapes, empty), (lower, empty)]
    for i, (a, b) in enumerate(pairs):
        write("layer_apply", f"pair{i:02}", struct.pack("<I", len(a)) + a + b)
        ga, gb = gzip.compress(a, mtime=0), gzip.compress(b, mtime=0)
        write("layer_apply_gzip", f"pair{i:02}", struct.pack("<I", len(ga)) + ga + gb)


references()
www_authenticate()
manifests()
layers()
print(f"seeds written to {OUT}")
