"""Neural-network modules: layers, blocks and models."""
from .plstm_block import PLSTMBlock, mlp, plstm_layer_plan
from .plstm_conv import PLSTMConv
from .conv_block import ConvBlock
from .graph_transformer import GraphTransformerBlock
from .encoders import DegreeEncoding, FeatureEncoder
from .models import MIXERS, GraphModel, count_parameters
