"""The ViT baseline on patch grids: full attention among the patches of each image."""
from .graph_transformer import GraphTransformerBlock
from .registry import BlockInputs, register_model
from .vision import ImageModelSpec


@register_model
class ViT(ImageModelSpec):
    """A ViT (Dosovitskiy et al. 2021) as the pLSTM paper's baseline (SPEC section 8): patch
    embedding (the node encoder), a learned position table bicubically interpolated to larger
    grids, pre-norm transformer blocks with RMSNorm on :func:`~plstm_graph.einsum_attention`
    over the patches of each image, and max pooling over the patches instead of the paper's
    CLS token (the graph batch has no extra node for it; max chosen on APE's validation images
    over mean, README APE round 11)."""

    name = "vit"
    description = "ViT on patch grids (images): attention among all patches, learned position table"

    def init_block(self, hidden, heads, layer, edge_dim):
        return GraphTransformerBlock(hidden, heads)

    def call_block(self, block, x, inputs: BlockInputs):
        return block.forward_shared(x, inputs)
