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


def test_registry_example_adds_a_model():
    from plstm_graph.nn import model_names
    from plstm_graph.nn.registry import unregister_model
    example = next(block for block in python_blocks() if "class NodeMLP" in block)
    try:
        namespace = {}
        exec(compile(example, str(README), "exec"), namespace)
        assert "node-mlp" in model_names()
        assert namespace["model"].blocks[0][0].in_features == 32
    finally:
        unregister_model("node-mlp")


def test_own_dags_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    example = next(block for block in python_blocks() if "class MyDAGs" in block)
    namespace = {}
    exec(compile(example, str(README), "exec"), namespace)
    assert namespace["summary"]["status"] == "finished"
    assert (tmp_path / "runs" / "my-dags" / "summary.json").is_file()
