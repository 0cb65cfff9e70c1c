"""``plstm-graph models``: the registered models."""
import inspect


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list the registered models",
        description="List every model `plstm-graph train --model` takes, with its defaults "
                    "and the options `--model-option KEY=VALUE` sets.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..nn import models  # registers the built-in models
    from ..nn.registry import get_model, model_names
    for name in model_names():
        spec = get_model(name)
        edges = "edge features" if spec.supports_edge_attr else "no edge features"
        print(f"{name:<12} {spec.description} ({edges}; {spec.default_pooling} pooling)")
        options = options_of(type(spec))
        if options:
            print(f"{'':<12} --model-option {', '.join(options)}")
    every = ", ".join(f"{key}={'|'.join(values)}" for key, values in models.MODEL_OPTIONS.items())
    print(f"every model: --model-option {every} (the first value is the default)")
    return 0


def options_of(spec_class) -> list[str]:
    """``["arrangement=alternate", ...]``: the keyword options of a model spec's ``__init__``
    (what ``--model-option`` sets), with their defaults."""
    parameters = inspect.signature(spec_class.__init__).parameters.values()
    return [f"{p.name}={p.default}" for p in parameters
            if p.name != "self" and p.default is not inspect.Parameter.empty]
