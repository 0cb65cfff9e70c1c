r"""Transition gates: the normalisations that keep pLSTM stable along long DAG paths.

Both modes bound how much a cell passes on (SPEC section 1):

- **P-mode** (paper Eq. 9, as the reference code does it): the raw gates :math:`t` on the line
  edges leaving one line node :math:`e` are divided by :math:`\alpha + \sum_{e \to e''} |t|`
  (:math:`\alpha = 0.5`), so :math:`\sum_{e \to e''} |T| < 1`: a cell splits what it holds
  between its successors and never passes on more than it has. The official *graph* code
  (ml-jku/plstm ``pLSTMGraphEdgeLayer``) sums over the line edges *entering* :math:`e` instead
  (``over="predecessors"``): a cell takes in less than the largest of its predecessors' cells,
  so it is bounded by the source terms along one path (growth at most linear in depth), but a
  cell may pass nearly all it holds to each of several successors.
- **D-mode**: :math:`T = \tanh t` per line edge of the pruned multitree, so :math:`|T| < 1`.

What a cell keeps per step is a *fixed point* of the parameterisation, and over a path of
:math:`d` steps it is raised to the :math:`d`-th power. In P-mode a line node with one
successor keeps :math:`r = |t| / (0.5 + |t|)`: with :math:`|t| \approx 1` (a default-initialised
linear layer) :math:`r^{64} \approx 10^{-11}`; with fan-out :math:`f` the successors share
:math:`f|t| / (0.5 + f|t|)`, a little more. Layers therefore scale their raw transitions,
:math:`t = s\,(W x + b)` with :math:`W = 0`, :math:`b = 1` at initialisation (the official 2D
code's ``tanh(5 (1 + W x))``): :data:`TRANSITION_SCALE` puts the per-step fixed point at
:math:`r \approx 0.99` in P-mode (:math:`0.99^{64} \approx 0.53`) and :math:`\tanh 5 \approx
0.9999` in D-mode, while :math:`\partial T / \partial (W x)` stays about :math:`10^{-2}` and
:math:`10^{-3}` (a bias of 50 without the scale would leave P-mode at :math:`2 \cdot 10^{-4}`).
"""
import torch
from torch import Tensor

from ...graph.line_graph import LineGraph
from ...graph.validation import check_one_of

#: P-mode's smoothing constant :math:`\alpha` (the reference code's 0.5).
P_MODE_ALPHA = 0.5

#: Per-mode factor :math:`s` on the raw transition gates (see the module docstring): with the
#: raw gate at 1, P-mode keeps :math:`50 / 50.5 \approx 0.990` per step on a chain and D-mode
#: :math:`\tanh 5 \approx 0.99991`.
TRANSITION_SCALE = {"P": 50.0, "D": 5.0}


#: P-mode's normalisation groups: the line edges leaving a line node (paper Eq. 9, the official
#: 2D code) or those entering it (the official graph code).
P_MODE_GROUPS = ("successors", "predecessors")


def p_mode_transition(raw: Tensor, graph: LineGraph, alpha: float = P_MODE_ALPHA,
                      over: str = "successors") -> Tensor:
    """``raw / (alpha + sum |raw|)`` over the line edges leaving the same line node
    (``over="successors"``) or entering it (``"predecessors"``): ``[L, H]``; each group's
    ``|T|`` then sums to less than 1."""
    check_one_of(over, "over", P_MODE_GROUPS)
    group = graph.line_index[0 if over == "successors" else 1]
    total = raw.new_zeros(graph.num_edges, *raw.shape[1:]).index_add(0, group, raw.abs())
    return raw / (alpha + total.index_select(0, group))


def transition_gate(raw: Tensor, graph: LineGraph, p_mode_over: str = "successors") -> Tensor:
    """Raw transition gates ``[L, H]`` -> bounded transitions for ``graph.mode``: P-mode's
    normalisation over each line node's successors (or predecessors), D-mode's ``tanh``."""
    return p_mode_transition(raw, graph, over=p_mode_over) if graph.mode == "P" else raw.tanh()


def transition_bias(retention: Tensor, mode: str, scale: float) -> Tensor:
    r"""The inverse of :func:`transition_gate` on a chain (a line node with one successor): the
    raw bias :math:`b` whose gate keeps ``retention`` per step, with the layer's factor
    :math:`s` = ``scale``: P-mode :math:`s b / (\alpha + s b) = \gamma`, D-mode
    :math:`\tanh(s b) = \gamma`."""
    if mode == "P":
        return P_MODE_ALPHA * retention / (scale * (1 - retention))
    return torch.atanh(retention) / scale


__all__ = ["P_MODE_ALPHA", "P_MODE_GROUPS", "TRANSITION_SCALE", "p_mode_transition",
           "transition_bias", "transition_gate"]
