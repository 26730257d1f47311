"""The hand-written stubs match the native module, and the package type-checks."""

import os
import subprocess
import sys

import outcap


def test_native_stub_matches_runtime():
    completed = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "outcap"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_package_ships_py_typed():
    package_dir = os.path.dirname(outcap.__file__)
    assert os.path.exists(os.path.join(package_dir, "py.typed"))
    assert os.path.exists(os.path.join(package_dir, "_native.pyi"))
