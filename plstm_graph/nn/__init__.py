"""Neural-network modules: layers, blocks, models and the model registry."""
from .plstm_block import PLSTMBlock, plstm_layer_plan
from .local_global import LocalGlobalMixer
from .residual_block import ResidualBlock, mlp
from .plstm_conv import PLSTMConv
from .conv_block import ConvBlock
from .plain_block import PlainConvBlock
from .graph_transformer import GraphAttention, GraphTransformerBlock
from .encoders import DegreeEncoding, FeatureEncoder
from .registry import BlockInputs, ModelSpec, get_model, model_names, register_model
from .models import POOLINGS, GraphModel, count_parameters
from .dag_lstm import DAGLSTMConv

__all__ = ["BlockInputs", "ConvBlock", "DAGLSTMConv", "DegreeEncoding", "FeatureEncoder",
           "GraphAttention", "GraphModel", "GraphTransformerBlock", "LocalGlobalMixer", "ModelSpec",
           "PLSTMBlock", "PLSTMConv", "POOLINGS", "PlainConvBlock", "ResidualBlock",
           "count_parameters", "get_model", "mlp", "model_names", "plstm_layer_plan",
           "register_model"]
