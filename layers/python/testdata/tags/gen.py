"""Writes the golden tag lists the Go tag tests compare with.

They come from the packaging.tags that pip vendors, with the running
platform's answers (glibc/musl version, architecture) replaced, so any
Python 3 with pip can regenerate them:

    cd layers/python/testdata/tags && python3 gen.py
"""

import sysconfig

from pip._vendor.packaging import _manylinux, _musllinux, tags

CASES = [
    # file,                        python,  platform,        glibc,   musl
    ("cp313-glibc2.36-x86_64.txt", (3, 13), "linux-x86_64", (2, 36), None),
    ("cp313-glibc2.36-aarch64.txt", (3, 13), "linux-aarch64", (2, 36), None),
    ("cp312-musl1.2-aarch64.txt", (3, 12), "linux-aarch64", None, (1, 2)),
    ("cp311-glibc2.31-armv7l.txt", (3, 11), "linux-armv7l", (2, 31), None),
]

for name, py, plat, glibc, musl in CASES:
    sysconfig.get_platform = lambda plat=plat: plat
    _manylinux._get_glibc_version = lambda glibc=glibc: glibc or (-1, -1)
    _manylinux._is_linux_armhf = lambda: True
    _manylinux._is_linux_i686 = lambda: True
    _musllinux._get_musl_version = lambda executable, musl=musl: (
        _musllinux._MuslVersion(*musl) if musl else None
    )
    platforms = list(tags._linux_platforms(is_32bit=False))
    interp = "cp%d%d" % py
    out = list(tags.cpython_tags(py, [interp], platforms))
    out += list(tags.compatible_tags(py, interp, platforms))
    with open(name, "w") as f:
        f.write("".join(str(t) + "\n" for t in out))
