"""The model registry: one registered class adds a model everywhere, and nothing else in the
package compares model names."""
import json
import re
from pathlib import Path

import pytest
import torch

import plstm_graph
from plstm_graph.cli import main
from plstm_graph.nn import GraphModel, ModelSpec, model_names, register_model
from plstm_graph.nn.registry import unregister_model

PACKAGE = Path(plstm_graph.__file__).parent


def test_no_model_name_is_compared_outside_the_registry():
    names = "|".join(re.escape(name) for name in model_names())
    comparison = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']""")
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in PACKAGE.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if comparison.search(line)]
    assert not found, "model names compared outside the registry:\n" + "\n".join(found)


class NodeMLP(ModelSpec):
    """A throw-away model: an MLP on each node, no message passing."""

    name = "node-mlp"
    description = "per-node MLP (test)"

    def init_block(self, hidden, heads, layer, edge_dim):
        return torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.GELU())

    def call_block(self, block, x, inputs):
        return x + block(x)


@pytest.fixture
def node_mlp():
    register_model(NodeMLP)
    yield NodeMLP
    unregister_model(NodeMLP.name)


def test_one_registered_class_adds_a_model_to_the_model_and_the_command_line(tmp_path, node_mlp):
    assert "node-mlp" in model_names()
    assert GraphModel("node-mlp", 1, node_channels=3, hidden=8).transform() is None
    run_dir = tmp_path / "run"
    assert main(["train", "--model", "node-mlp", "--out", str(run_dir), "--limit", "16",
                 "--epochs", "1", "--hidden", "8", "--batch-size", "8", "--no-progress"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "node-mlp" and summary["status"] == "finished"
    assert summary["parameters"] > 0


def test_register_model_rejects_what_is_not_a_model():
    with pytest.raises(TypeError, match="ModelSpec subclass"):
        register_model(object)

    class Nameless(ModelSpec):
        pass

    with pytest.raises(ValueError, match="name must be a non-empty string"):
        register_model(Nameless)
