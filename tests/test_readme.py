"""The README's Python examples run as written."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _examples():
    with open(README, encoding="utf-8") as file:
        return re.findall(r"```python\n(.*?)```", file.read(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(_examples()) >= 4


@pytest.mark.parametrize("index", range(len(_examples())))
def test_readme_example_runs(index, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", _examples()[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
