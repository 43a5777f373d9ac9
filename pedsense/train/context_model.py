"""Context models: crossing intent from what JAAD annotates, no pixels.

Inputs are the feature groups of a context build (``pedsense.data.context_features``), one
tensor per group, ``{group: (B, T_g, D_g)}``: the box trajectory, the ego-vehicle's action, the
traffic scene, the behaviour tags. Two models read them, both well under a million parameters:

- :class:`ContextGRU` (the default): the groups side by side at every time step, a linear
  embedding, a GRU, its last state; beside it (``window_mlp``, on for new runs) a small MLP
  over the whole window flattened, whose summary joins the GRU's.
- :class:`ContextTransformer`: one token stream per group (a linear embedding per group, a group
  embedding, a position embedding), fused by self-attention over every group's tokens, read
  through a class token.

Both standardise their inputs with the training split's mean and standard deviation, which
they keep as buffers (:meth:`ContextModel.fit_normalisation`), so a checkpoint predicts from raw
features alone; an unknown value (NaN) becomes the training mean. ``encode`` gives the
``(B, out_dim)`` summary the ResNet-LSTM fuses with its own (late fusion, as PCPA does);
``forward`` the ``(B, 2)`` logits. A model built with ``relevance=True`` also has a
``relevance`` head (``(B, 1)`` logit of "JAAD annotated this pedestrian's behaviour"): the
trainer's second target on ``all`` builds, shaping the shared summary; ``forward`` never uses it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from pedsense.errors import DataError

MODEL_KINDS = ("gru", "transformer")
WINDOW_MLP_WIDTH = 128  # the GRU's window MLP: flattened window -> 128 -> hidden_size
MAX_PARAMETERS = 1_000_000  # the family's budget: a laptop CPU trains it in minutes
Groups = Mapping[str, torch.Tensor]


class ContextModel(nn.Module):
    """What both context models share: the groups, their normalisation and the classifier head."""

    def __init__(self, group_dims: Mapping[str, int], group_lengths: Mapping[str, int], hidden_size: int,
                 dropout: float, num_classes: int, relevance: bool = False, summary_size: int | None = None):
        super().__init__()
        if not group_dims:
            raise DataError("A context model needs at least one feature group.")
        self.groups = tuple(group_dims)
        self.group_dims = {g: int(group_dims[g]) for g in self.groups}
        self.group_lengths = {g: int(group_lengths[g]) for g in self.groups}
        self.hidden_size = int(hidden_size)
        self.summary_size = int(summary_size or hidden_size)
        for g in self.groups:
            self.register_buffer(f"mean_{g}", torch.zeros(self.group_dims[g]))
            self.register_buffer(f"std_{g}", torch.ones(self.group_dims[g]))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.summary_size, num_classes))
        self.relevance = (nn.Sequential(nn.Dropout(dropout), nn.Linear(self.summary_size, 1))
                          if relevance else None)

    @property
    def out_dim(self) -> int:
        """Width of :meth:`encode`'s output (what a fused model concatenates)."""
        return self.summary_size

    def fit_normalisation(self, groups: Mapping[str, np.ndarray]) -> None:
        """Take each feature's mean and standard deviation from ``groups`` (the training split's
        ``{group: (N, T, D)}``), ignoring unknown values; a constant feature keeps std 1."""
        for g in self.groups:
            flat = np.asarray(groups[g], np.float64).reshape(-1, self.group_dims[g])
            with np.errstate(all="ignore"):
                mean = np.nan_to_num(np.nanmean(flat, axis=0)) if len(flat) else np.zeros(flat.shape[1])
                std = np.nan_to_num(np.nanstd(flat, axis=0)) if len(flat) else np.ones(flat.shape[1])
            std[std < 1e-6] = 1.0
            getattr(self, f"mean_{g}").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"std_{g}").copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalised(self, inputs: Groups) -> dict[str, torch.Tensor]:
        """Each group standardised; unknown values (NaN) at the training mean (0)."""
        out = {}
        for g in self.groups:
            x = (inputs[g] - getattr(self, f"mean_{g}")) / getattr(self, f"std_{g}")
            out[g] = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def encode(self, inputs: Groups) -> torch.Tensor:
        """(B, out_dim): the window's summary."""
        raise NotImplementedError

    def forward(self, inputs: Groups) -> torch.Tensor:
        """(B, num_classes) logits of ``{group: (B, T_g, D_g)}``."""
        return self.head(self.encode(inputs))

    @property
    def model_args(self) -> dict:
        raise NotImplementedError

    def _with_relevance(self, args: dict) -> dict:
        return {**args, "relevance": True} if self.relevance is not None else args


class ContextGRU(ContextModel):
    """The groups side by side per time step (the last ``min T_g`` steps) → Linear → GRU → last state;
    with ``window_mlp``, beside it an MLP of the whole window flattened (the summary is both).

    ``window_mlp`` is off in the class (checkpoints made before it rebuild as they were) and on for
    every new model :func:`build_context_model` makes: 5-fold cross-validation over JAAD_all's
    training videos lifted ROC-AUC 0.847 → 0.870 with it (docs/benchmark.md).
    """

    def __init__(self, group_dims: Mapping[str, int], group_lengths: Mapping[str, int], hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.3, num_classes: int = 2, relevance: bool = False,
                 window_mlp: bool = False):
        super().__init__(group_dims, group_lengths, hidden_size, dropout, num_classes, relevance,
                         summary_size=hidden_size * (2 if window_mlp else 1))
        self.num_layers, self.dropout = int(num_layers), float(dropout)
        self.steps = min(self.group_lengths.values())
        width = sum(self.group_dims.values())
        self.embed = nn.Sequential(nn.Linear(width, hidden_size), nn.ReLU())
        self.gru = nn.GRU(hidden_size, hidden_size, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.window = (nn.Sequential(nn.Linear(width * self.steps, WINDOW_MLP_WIDTH), nn.ReLU(), nn.Dropout(0.3),
                                     nn.Linear(WINDOW_MLP_WIDTH, hidden_size), nn.ReLU())
                       if window_mlp else None)

    def encode(self, inputs: Groups) -> torch.Tensor:
        groups = self.normalised(inputs)
        # groups may differ in length (the box offsets drop the window's first frame): align the ends
        x = torch.cat([groups[g][:, -self.steps:] for g in self.groups], dim=2)
        _, hidden = self.gru(self.embed(x))
        if self.window is None:
            return hidden[-1]
        return torch.cat([hidden[-1], self.window(x.flatten(1))], dim=1)

    @property
    def model_args(self) -> dict:
        return self._with_relevance({"group_dims": dict(self.group_dims), "group_lengths": dict(self.group_lengths),
                                     "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                                     "dropout": self.dropout, "window_mlp": self.window is not None})


class ContextTransformer(ContextModel):
    """One token stream per group, fused by self-attention over all of them, read at a class token."""

    def __init__(self, group_dims: Mapping[str, int], group_lengths: Mapping[str, int], hidden_size: int = 64,
                 num_layers: int = 2, dropout: float = 0.3, num_classes: int = 2, heads: int = 4,
                 relevance: bool = False):
        super().__init__(group_dims, group_lengths, hidden_size, dropout, num_classes, relevance)
        if hidden_size % heads:
            raise DataError(f"The transformer's hidden size ({hidden_size}) must be a multiple of its "
                            f"{heads} attention heads; pick e.g. {heads * max(1, hidden_size // heads)}.")
        self.num_layers, self.dropout, self.heads = int(num_layers), float(dropout), int(heads)
        self.embed = nn.ModuleDict({g: nn.Linear(d, hidden_size) for g, d in self.group_dims.items()})
        self.group_embedding = nn.Parameter(torch.zeros(len(self.groups), hidden_size))
        self.position = nn.Parameter(torch.zeros(max(self.group_lengths.values()), hidden_size))
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden_size))
        for parameter in (self.group_embedding, self.position, self.cls):
            nn.init.normal_(parameter, std=0.02)
        layer = nn.TransformerEncoderLayer(hidden_size, heads, dim_feedforward=2 * hidden_size, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)

    def encode(self, inputs: Groups) -> torch.Tensor:
        groups = self.normalised(inputs)
        streams = []
        for k, g in enumerate(self.groups):
            x = groups[g]
            steps = x.shape[1]
            # positions count back from the window's end, so streams of different lengths line up
            position = self.position[self.position.shape[0] - steps:]
            streams.append(self.embed[g](x) + self.group_embedding[k] + position)
        tokens = torch.cat([self.cls.expand(len(streams[0]), -1, -1), *streams], dim=1)
        return self.norm(self.encoder(tokens)[:, 0])

    @property
    def model_args(self) -> dict:
        return self._with_relevance({"group_dims": dict(self.group_dims), "group_lengths": dict(self.group_lengths),
                                     "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                                     "dropout": self.dropout, "heads": self.heads})


MODEL_CLASSES = {"gru": ContextGRU, "transformer": ContextTransformer}
# what every new model gets beyond its class's defaults (which rebuild older checkpoints as they were)
NEW_MODEL_ARGS: dict[str, dict] = {"gru": {"window_mlp": True}, "transformer": {}}


def build_context_model(kind: str, group_dims: Mapping[str, int], group_lengths: Mapping[str, int], *,
                        hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.3,
                        relevance: bool = False) -> ContextModel:
    """A fresh context model of ``kind`` (``gru`` or ``transformer``) over these groups
    (``relevance``: with the second head the trainer's relevance target needs). A GRU gets its
    window MLP (:class:`ContextGRU`).

    Raises:
        DataError: unknown kind, or more than :data:`MAX_PARAMETERS` parameters.
    """
    if kind not in MODEL_CLASSES:
        raise DataError(f"Unknown context model {kind!r}; pick one of {', '.join(MODEL_KINDS)}.")
    model = MODEL_CLASSES[kind](group_dims, group_lengths, hidden_size=hidden_size, num_layers=num_layers,
                                dropout=dropout, relevance=relevance, **NEW_MODEL_ARGS[kind])
    count = parameter_count(model)
    if count > MAX_PARAMETERS:
        raise DataError(f"This {kind} has {count:,} parameters, over the context family's "
                        f"{MAX_PARAMETERS:,}: lower hidden_size or num_layers.")
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_tensors(groups: Mapping[str, np.ndarray], names: Sequence[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """``{group: (N, T, D) float32 tensor}`` of the named groups."""
    return {g: torch.as_tensor(np.asarray(groups[g], np.float32), device=device) for g in names}


@torch.no_grad()
def predict_proba(model: ContextModel, groups: Mapping[str, np.ndarray], *, batch_size: int = 1024,
                  device: str = "cpu") -> np.ndarray:
    """(N, 2) class probabilities of the windows in ``groups`` (``{group: (N, T, D)}``)."""
    model.eval()
    tensors = to_tensors(groups, model.groups)
    n = len(next(iter(tensors.values())))
    out = [torch.softmax(model({g: t[i:i + batch_size].to(device) for g, t in tensors.items()}), 1).cpu()
           for i in range(0, n, batch_size)]
    return torch.cat(out).numpy() if out else np.empty((0, 2), np.float32)
