"""``plstm-graph models``: the registered models."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list the registered models",
        description="List every model `plstm-graph train --model` takes, with its defaults.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..nn import models  # noqa: F401  (registers the built-in models)
    from ..nn.registry import get_model, model_names
    for name in model_names():
        spec = get_model(name)
        edges = "edge features" if spec.supports_edge_attr else "no edge features"
        print(f"{name:<12} {spec.description} ({edges}; {spec.default_pooling} pooling)")
    return 0
