"""A PEP 517 build backend in the standard library alone, so that `pip install clients/python`
works offline, in any virtualenv, with nothing to download (setuptools would have to be
fetched into pip's isolated build environment, and needs `wheel` besides).

The package is pure Python: a wheel is a zip of errq/*.py plus its dist-info (METADATA,
WHEEL, RECORD).  build_editable (PEP 660) makes a wheel holding one .pth line that puts
this directory on sys.path.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "errq"


def _version():
    with open(os.path.join(ROOT, NAME, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("errq_build: no __version__ in errq/__init__.py")
    return m.group(1)


def _metadata(version):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return ("Metadata-Version: 2.1\n"
            "Name: %s\n"
            "Version: %s\n"
            "Summary: Report Python and asyncio service failures to an errq collector through liberrq\n"
            "Requires-Python: >=3.9\n"
            "Classifier: Framework :: AsyncIO\n"
            "Classifier: Operating System :: POSIX :: Linux\n"
            "Description-Content-Type: text/markdown\n"
            "\n%s" % (NAME, version, readme))


_WHEEL = ("Wheel-Version: 1.0\n"
          "Generator: errq_build\n"
          "Root-Is-Purelib: true\n"
          "Tag: py3-none-any\n")


def _sources():
    pkg = os.path.join(ROOT, NAME)
    for fn in sorted(os.listdir(pkg)):
        if fn.endswith(".py"):
            yield "%s/%s" % (NAME, fn), os.path.join(pkg, fn)


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(directory, files):
    """files: [(archive name, bytes)]; adds dist-info and RECORD; returns the file name."""
    version = _version()
    dist = "%s-%s.dist-info" % (NAME, version)
    files = list(files) + [(dist + "/METADATA", _metadata(version).encode()),
                           (dist + "/WHEEL", _WHEEL.encode())]
    record = "".join("%s,%s,%d\n" % (n, _digest(d), len(d)) for n, d in files)
    record += dist + "/RECORD,,\n"
    files.append((dist + "/RECORD", record.encode()))
    name = "%s-%s-py3-none-any.whl" % (NAME, version)
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            zi = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)
    return name


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(n, _read(p)) for n, p in _sources()])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [("%s_editable.pth" % NAME, (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    version = _version()
    base = "%s-%s" % (NAME, version)
    name = base + ".tar.gz"
    paths = ["pyproject.toml", "README.md", "_build/errq_build.py"] + \
        [n for n, _ in _sources()]
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in paths:
            t.add(os.path.join(ROOT, rel), arcname="%s/%s" % (base, rel), recursive=False)
        pkg_info = _metadata(version).encode()
        ti = tarfile.TarInfo("%s/PKG-INFO" % base)
        ti.size = len(pkg_info)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(pkg_info))
    return name
