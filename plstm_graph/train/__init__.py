"""Training runs: the loop, checkpoints, run folders, comparisons and their figures."""
from .config import TrainConfig
from .run import evaluate_run, run_training
from .trainer import Trainer, build_model

__all__ = ["TrainConfig", "Trainer", "build_model", "evaluate_run", "run_training"]
