"""`pip install clients/python` works offline (pip given no index at all) into a fresh
virtualenv, and the installed package loads liberrq and reports through it."""

import os
import subprocess
import sys
import tempfile
import unittest

import support

PKG = os.path.dirname(support.HERE)


class InstallTest(unittest.TestCase):

    def test_pip_install_offline_into_a_venv(self):
        with tempfile.TemporaryDirectory(prefix="errq-venv-") as d:
            venv = os.path.join(d, "venv")
            r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True,
                               text=True)
            if r.returncode != 0 and "ensurepip" in (r.stdout + r.stderr):
                self.skipTest("python3-venv is not installed: " + r.stderr.strip())
            self.assertEqual(r.returncode, 0, r.stderr)
            py = os.path.join(venv, "bin", "python")
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                       PIP_FIND_LINKS="")
            env.pop("PYTHONPATH", None)
            r = subprocess.run([py, "-m", "pip", "install", "--no-index", PKG],
                               capture_output=True, text=True, env=env, timeout=support.DEADLINE * 4)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            code = ("import errq, errq.asyncio, errq.logging, errq.structlog, errq._lib as l\n"
                    "print(errq.__file__)\n"
                    "print(l.load().errq_version().decode())\n")
            r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env,
                               cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            where, version = r.stdout.split()
            self.assertTrue(where.startswith(venv), where)  # the installed copy, not the tree
            self.assertEqual(version, "0.1.0")


if __name__ == "__main__":
    unittest.main()
