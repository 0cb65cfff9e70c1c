"""Neural-network modules: layers, blocks and models."""
from .plstm_block import PLSTMBlock, plstm_layer_plan
from .residual_block import ResidualBlock, mlp
from .plstm_conv import PLSTMConv
from .conv_block import ConvBlock
from .graph_transformer import GraphAttention, GraphTransformerBlock
from .encoders import DegreeEncoding, FeatureEncoder
from .models import MIXERS, GraphModel, count_parameters
