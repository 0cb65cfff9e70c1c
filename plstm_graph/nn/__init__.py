"""Neural-network modules: layers, blocks and models."""
from .plstm_block import PLSTMBlock, mlp, plstm_layer_plan
from .plstm_conv import PLSTMConv
