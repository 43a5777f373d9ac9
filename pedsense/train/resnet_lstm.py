"""ResNet feature extractor + LSTM (sequences) and ResNet single-crop classifier (hybrid).

Both freeze the backbone's first ``frozen_children`` children (the seed: 6, i.e. conv1, bn1,
relu, maxpool, layer1, layer2). Frozen layers stay in eval mode and run without autograd, so
their BatchNorm statistics keep the pretrained values and the backward pass skips them.

Each model splits at that cut: ``features.frozen_features(images)`` is what the frozen part
computes (the same for every epoch), ``classify_frozen(frozen)`` the trainable rest. The
feature cache (``pedsense.train.feature_cache``) stores the first and trains only the second.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from pedsense.errors import ConfigError, DataError
from pedsense.train.context_model import MODEL_CLASSES as CONTEXT_MODEL_CLASSES
from pedsense.train.context_model import NEW_MODEL_ARGS as CONTEXT_NEW_MODEL_ARGS
from pedsense.train.offline import offline_reason
from pedsense.train.params import BACKBONES, CONTEXT  # declared once, with the parameters

FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}


def _backbone_factory(backbone: str):
    """(constructor, default ImageNet weights enum) of a torchvision ResNet."""
    from torchvision import models

    if backbone not in BACKBONES:
        raise ConfigError(f"Unknown backbone {backbone!r}. Use one of: {', '.join(BACKBONES)}.")
    constructor = getattr(models, backbone)
    weights_enum = models.get_model_weights(constructor)
    return constructor, weights_enum.DEFAULT


def _cached_weights_file(weights) -> Path:
    """Where torchvision keeps ``weights`` once downloaded (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_backbone(backbone: str = "resnet50", pretrained: bool = True) -> tuple[nn.Module, str]:
    """A torchvision ResNet and where its weights came from.

    Returns:
        (model, weights_source) where weights_source is ``"imagenet"``, ``"scratch"`` or
        ``"scratch (offline: <reason>)"``. Offline without cached weights, the model is randomly
        initialised and a warning says so; training still works, only slower to converge.
    """
    constructor, weights = _backbone_factory(backbone)
    if not pretrained:
        return constructor(weights=None), "scratch"
    cached = _cached_weights_file(weights).exists()
    reason = None if cached else offline_reason()
    if reason is None:
        try:
            model = constructor(weights=None)
            model.load_state_dict(weights.get_state_dict(progress=False, check_hash=False))
            return model, "imagenet"
        except Exception as exc:  # no network, proxy, truncated file: fall back, never crash
            reason = f"{type(exc).__name__}: {exc}"[:200]
    message = (f"ImageNet weights for {backbone} are not available ({reason}); training from "
               "random initialisation. Run once with network access to cache them.")
    warnings.warn(message, stacklevel=2)
    return constructor(weights=None), f"scratch (offline: {reason})"


class FrozenResNetFeatures(nn.Module):
    """ResNet without its classifier head: (N, 3, H, W) -> (N, feature_dim).

    The parameter-free children right after the cut (relu and maxpool after conv1/bn1, the
    average pool after layer4) count as frozen for :meth:`frozen_features`: they never learn,
    and the cut after the average pool is one feature vector per crop.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool = True, frozen_children: int = 6):
        super().__init__()
        resnet, self.weights_source = build_backbone(backbone, pretrained)
        children = list(resnet.children())[:-1]  # drop fc, keep avgpool
        if not 0 <= frozen_children <= len(children):
            raise ConfigError(f"frozen_children must be between 0 and {len(children)}, got {frozen_children}.")
        self.frozen = nn.Sequential(*children[:frozen_children])
        self.trainable = nn.Sequential(*children[frozen_children:])
        for parameter in self.frozen.parameters():
            parameter.requires_grad_(False)
        self.feature_dim = FEATURE_DIMS[backbone]
        self.backbone, self.frozen_children = backbone, frozen_children
        self.passthrough = 0  # leading trainable children without parameters
        for child in self.trainable:
            if any(True for _ in child.parameters()):
                break
            self.passthrough += 1

    @property
    def cut(self) -> int:
        """Children computed by :meth:`frozen_features` (``frozen_children`` + parameter-free ones)."""
        return self.frozen_children + self.passthrough

    @property
    def fully_frozen(self) -> bool:
        """True when nothing of the backbone trains (its output is one fixed vector per crop)."""
        return self.passthrough == len(self.trainable)

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> what the frozen part computes: (N, C, h, w) maps, or (N, D, 1, 1)."""
        with torch.no_grad():
            return self.trainable[:self.passthrough](self.frozen(images))

    def from_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        """:meth:`frozen_features` output -> (N, feature_dim) through the trainable layers."""
        return torch.flatten(self.trainable[self.passthrough:](frozen), 1)

    def train(self, mode: bool = True) -> "FrozenResNetFeatures":
        super().train(mode)
        self.frozen.eval()  # keep the frozen BatchNorm statistics fixed
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.from_frozen(self.frozen_features(images))


class ResNetLSTM(nn.Module):
    """ResNet feature extractor + LSTM temporal classifier.

    Forward: (batch, seq_len, 3, H, W) -> (batch, num_classes) logits, classified from the
    LSTM's last time step. With ``context`` (:func:`context_encoder_args`), ``forward(sequences,
    groups)`` also takes the window's context features ``{group: (batch, T_g, D_g)}``, whose
    encoding joins the LSTM's last state before the classifier.
    """

    def __init__(self, num_classes: int = 2, hidden_size: int = 256, num_layers: int = 1,
                 dropout: float = 0.3, *, backbone: str = "resnet50", pretrained: bool = True,
                 frozen_children: int = 6, context: dict | None = None):
        super().__init__()
        self.features = FrozenResNetFeatures(backbone, pretrained, frozen_children)
        self.weights_source = self.features.weights_source
        # nn.LSTM's own dropout only acts between stacked layers; the head dropout below always does.
        self.lstm = nn.LSTM(self.features.feature_dim, hidden_size, num_layers=num_layers,
                            batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.context = None if context is None else _context_encoder(context)
        fused = hidden_size + (self.context.out_dim if self.context is not None else 0)
        self.classifier = nn.Linear(fused, num_classes)
        self.model_args = {"num_classes": num_classes, "hidden_size": hidden_size,
                           "num_layers": num_layers, "dropout": dropout, "backbone": backbone,
                           "frozen_children": frozen_children}
        if context is not None:
            self.model_args["context"] = dict(context)

    @property
    def context_groups(self) -> tuple[str, ...]:
        """The context feature groups the model reads (empty: crops alone, the seed's model)."""
        return self.context.groups if self.context is not None else ()

    def forward(self, sequences: torch.Tensor, context: dict | None = None) -> torch.Tensor:
        batch, seq_len = sequences.shape[:2]
        frozen = self.features.frozen_features(sequences.reshape(batch * seq_len, *sequences.shape[2:]))
        return self.classify_frozen(frozen.reshape(batch, seq_len, *frozen.shape[1:]), context)

    def classify_frozen(self, frozen: torch.Tensor, context: dict | None = None) -> torch.Tensor:
        """(batch, seq_len, *frozen shape) frozen features of each frame -> (batch, num_classes)."""
        batch, seq_len = frozen.shape[:2]
        features = self.features.from_frozen(frozen.reshape(batch * seq_len, *frozen.shape[2:]))
        return self.classify_features(features.reshape(batch, seq_len, -1), context)

    def classify_features(self, features: torch.Tensor, context: dict | None = None) -> torch.Tensor:
        """(batch, seq_len, feature_dim) CNN features of each frame -> (batch, num_classes)."""
        outputs, _ = self.lstm(features)
        state = outputs[:, -1]
        if self.context is not None:
            if context is None:
                raise DataError(f"This ResNet-LSTM fuses context features ({', '.join(self.context_groups)}): "
                                "give each window's features with its crops.")
            state = torch.cat([state, self.context.encode(context).to(state.dtype)], dim=1)
        return self.classifier(self.dropout(state))


def context_encoder_args(groups: dict, dropout: float) -> dict:
    """The fused context encoder of these ``{group: (N, T, D)}`` features: the context family's
    default model and size (its ``Spec``), the ResNet-LSTM's dropout."""
    return {"kind": CONTEXT["model"].default,
            "group_dims": {g: int(a.shape[2]) for g, a in groups.items()},
            "group_lengths": {g: int(a.shape[1]) for g, a in groups.items()},
            "hidden_size": CONTEXT["hidden_size"].default, "num_layers": CONTEXT["num_layers"].default,
            "dropout": float(dropout), **CONTEXT_NEW_MODEL_ARGS[CONTEXT["model"].default]}


def _context_encoder(args: dict) -> nn.Module:
    args = dict(args)
    encoder = CONTEXT_MODEL_CLASSES[args.pop("kind")](**args)
    encoder.head.requires_grad_(False)  # fused, only its encoding is read: its own head never trains
    return encoder


class ResNetClassifier(nn.Module):
    """ResNet single-crop intent classifier (the hybrid's stage 2).

    Forward: (batch, 3, H, W) -> (batch, num_classes) logits.
    """

    def __init__(self, num_classes: int = 2, dropout: float = 0.3, *, backbone: str = "resnet50",
                 pretrained: bool = True, frozen_children: int = 6):
        super().__init__()
        self.features = FrozenResNetFeatures(backbone, pretrained, frozen_children)
        self.weights_source = self.features.weights_source
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.features.feature_dim, num_classes)
        self.model_args = {"num_classes": num_classes, "dropout": dropout, "backbone": backbone,
                           "frozen_children": frozen_children}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify_frozen(self.features.frozen_features(images))

    def classify_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        """(batch, *frozen shape) frozen features of each crop -> (batch, num_classes)."""
        return self.classifier(self.dropout(self.features.from_frozen(frozen)))
