"""The README's Python example runs as written and prints what it says it prints."""

import contextlib
import io
import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_prints_its_comments(tmp_path):
    """Every `print` in the README example prints what its comment claims."""
    source = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    output = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(output):
            exec(compile(source, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    claimed = [
        line.split("# ")[1].split(":")[0].split(" (")[0].strip()
        for line in source.splitlines()
        if "print(" in line
    ]
    assert output.getvalue().splitlines() == claimed
