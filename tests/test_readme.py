"""The README's main example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_plstm_conv_example_runs():
    example = next(block for block in python_blocks() if "class Net" in block)
    namespace = {}
    exec(compile(example, str(README), "exec"), namespace)
    assert namespace["out"].shape == (5, 16)
