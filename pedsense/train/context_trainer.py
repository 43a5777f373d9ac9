"""Train a context model (``pedsense.train.context_model``) on a context build: no clips needed.

The windows are the benchmark's (the build cuts them with ``IntentOptions``, as the intent
task does); ``pedsense preprocess context`` builds their features from the annotations alone.
The trainer reads top to bottom:

    data = load_context_data(features, home)      # train + val, the feature groups resolved
    run = TrainingRun.open("context", ...)        # config.json, status, events, heartbeat
    model = build_context_model(...)              # normalisation from the training split
    best = fit_context(run, model, data, ...)     # epochs; best epoch by val balanced accuracy
    run.finish(best, selection=...)               # with a note when val is small or the epoch early

The best checkpoint is the epoch with the highest balanced accuracy on the official val split
(the benchmark's "AUC"; accuracy alone rewards the majority class on these imbalanced sets).
The windows live in memory as tensors: an epoch over JAAD_all's 8,613 training windows is a
few seconds on two CPU cores (``bench/bench_context.py``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pedsense.config import CLASS_NAMES
from pedsense.device import resolve_device, torch_threads_kept
from pedsense.errors import DataError
from pedsense.metrics import classification_metrics
from pedsense.train.checkpoints import load_weights, restore_rng, save_classifier, training_state
from pedsense.train.common import (LossCurve, TrainingRun, check_batch_size, check_finite_loss,
                                   manifest_summary)
from pedsense.train.context_model import ContextModel, build_context_model, parameter_count, to_tensors
from pedsense.train.events import EventHook, StopHook
from pedsense.train.fit import class_weights
from pedsense.train.params import AUTO_CLASS_WEIGHTING, CONTEXT

# A val split this small chooses its epoch on few pedestrians (JAAD_beh val: 242 windows, 22
# pedestrians): the run says so beside its best epoch.
SMALL_VAL_WINDOWS = 500
SMALL_VAL_PEDESTRIANS = 50


@dataclass
class ContextData:
    """The training and validation windows of a context build, with the groups to read."""

    train: Any          # ContextWindows (pedsense.data.context_format), the groups selected
    val: Any
    features: tuple[str, ...]
    sample_type: str
    manifest_path: Path

    @property
    def group_dims(self) -> dict[str, int]:
        return {g: int(self.train.groups[g].shape[2]) for g in self.features}

    @property
    def group_lengths(self) -> dict[str, int]:
        return {g: int(self.train.groups[g].shape[1]) for g in self.features}


def load_context_data(features: str | None, home: str | os.PathLike | None = None,
                      sample_type: str | None = None) -> ContextData:
    """The build's train and val windows, reduced to the feature groups asked for, checked.

    Args:
        features: comma-separated group names, or None for every group the build allows.
        sample_type: the build to read (``beh``/``all``); None: the one built (beh when both are).

    Raises:
        ContextFeatureError: a leaky, unknown or (on an ``all`` build) behaviour-only group.
        DataError: the build is missing, predates the context family, or has no train/val windows.
    """
    from pedsense.data.context_features import resolve_features
    from pedsense.data.context_format import context_manifest_path, load_context_split

    sample_type = sample_type or context_manifest_path(home).parent.name  # the one built (beh when both)
    resolve_features(features, sample_type)  # leaks are refused first, whatever the build holds
    train = load_context_split(home, "train", sample_type=sample_type).select(features)
    val = load_context_split(home, "val", sample_type=sample_type).select(features)
    if len(val) == 0:
        raise DataError("The context build has no val windows, so no epoch can be chosen (the best "
                        "checkpoint is picked on val). Rebuild it on a split with a val part: JAAD's "
                        "split files under data/raw/split_ids/ (`pedsense preprocess context "
                        f"--sample-type {sample_type}`).")
    if len(train) == 0:
        raise DataError("The context build has no training windows with known features. Rebuild it "
                        f"with more videos (`pedsense preprocess context --sample-type {sample_type}`).")
    return ContextData(train, val, tuple(train.groups), sample_type, context_manifest_path(home, sample_type))


def pedestrians(windows) -> int:
    """Distinct pedestrians among a split's windows (its ``windows`` table: video, ped_id)."""
    table = getattr(windows, "windows", None)
    if table is None or not len(table):
        return 0
    return int(table[["video", "ped_id"]].drop_duplicates().shape[0])


# -- the seed-style function ------------------------------------------------------------------
def train_context(name=None, epochs=8, batch_size=128, learning_rate=1e-3, device=None, *,
                  on_event: EventHook = None, should_stop: StopHook = None,
                  run_dir: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
                  resume: bool = False, init_weights: str | os.PathLike | None = None,
                  model: str = "gru", features: str | None = None, sample_type: str | None = None,
                  hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.5,
                  weight_decay: float = 0.1, class_weighting: str = "auto",
                  label_smoothing: float = 0.0, seed: int = 42,
                  relevance_weight: float = 0.0) -> Path:
    """Train a context model on the context build (``pedsense preprocess context``).

    Args:
        model: ``gru`` (default) or ``transformer``.
        features: comma-separated feature groups (``box,vehicle,traffic``); None: every group
            the build's sample type allows (``pedsense.data.context_features.resolve_features``).
        class_weighting: ``sqrt`` (the square root of inverse class frequency in the loss),
            ``balanced`` (inverse class frequency), ``none``, or ``auto`` (the recipe: the one
            ``params.AUTO_CLASS_WEIGHTING`` gives the build's sample type; config.json records it).
        sample_type: the context build to read, ``beh`` or ``all`` (None: the one built).
        relevance_weight: weight of a second target on ``all`` builds, "JAAD annotated this
            pedestrian's behaviour", learned by a second head from the same inputs (never an
            input; predictions come from the crossing head). 0: off.
        resume: continue ``run_dir`` from its ``last.pt`` (``pedsense.train.resume.resume_run``).
        init_weights: a context checkpoint of the same architecture to start from.

    Returns:
        The run folder ``models/context/<name>_<YYYYmmdd_HHMMSS>/`` (or ``run_dir``).
    """
    params = CONTEXT.check(CONTEXT.bind(locals()))
    device = resolve_device(params["device"])
    data = load_context_data(params["features"], home, params["sample_type"])
    batch_size = check_batch_size(params["batch_size"], len(data.train.labels), "training windows")
    run = TrainingRun.open("context", name, run_dir=run_dir, home=home, on_event=on_event,
                           should_stop=should_stop, resume=resume, init_weights=init_weights,
                           datasets=(data.manifest_path,))
    resume_from = run.checkpoint("last.pt") if resume else None  # refused here, before anything is written
    with run.guarded():
        torch.manual_seed(params["seed"])
        np.random.seed(params["seed"])
        relevance = relevance_used(params, data.sample_type)
        net = build_context_model(params["model"], data.group_dims, data.group_lengths,
                                  hidden_size=params["hidden_size"], num_layers=params["num_layers"],
                                  dropout=params["dropout"], relevance=relevance > 0)
        net.fit_normalisation(data.train.groups)
        if init_weights is not None:
            load_weights(net, init_weights)
        net.to(device)
        run.start({
            "parameters": CONTEXT.record(params), "class_weighting": weighting_used(params, data.sample_type),
            "relevance_weight": relevance,  # what the loss used (0 on beh builds)
            "task": "intent", "intent_options": _intent(data.train),
            "sample_type": data.sample_type, "features": list(data.features),
            "feature_columns": {g: list(data.train.columns[g]) for g in data.features},
            "class_names": list(CLASS_NAMES), "device": device, "weights_source": "none (trained from scratch)",
            "model_args": net.model_args, "parameter_count": parameter_count(net),
            "dataset": {"train": len(data.train.labels), "val": len(data.val.labels),
                        "train_class_counts": _counts(data.train.labels),
                        "val_class_counts": _counts(data.val.labels),
                        "val_pedestrians": pedestrians(data.val),
                        "dropped_unknown": {"train": data.train.dropped_unknown, "val": data.val.dropped_unknown},
                        "manifest": manifest_summary(data.manifest_path)},
        })
        if params["relevance_weight"] and not relevance:
            run.log(f"relevance_weight {params['relevance_weight']:g} is ignored on a {data.sample_type} build: "
                    "every window there is a behaviour pedestrian, so the target would be constant")
        with torch_threads_kept():
            # a model this small gains nothing from intra-op threads, and on a busy machine their
            # spinning makes an epoch ~40x slower (2.4 s vs 97 s for 135 GRU steps, load 14)
            torch.set_num_threads(1)
            best = fit_context(run, net, data, params, batch_size, device, resume_from=resume_from)
        selection = selection_record(best, params["epochs"], len(data.val.labels), pedestrians(data.val))
        for note in (selection.get("note"), data.train.unknown_note(), data.val.unknown_note()):
            if note:
                run.log(note)
        return run.finish(best, best_checkpoint="best.pt", selection=selection)


def weighting_used(params: Mapping[str, Any], sample_type: str) -> str:
    """The loss's class weighting: ``class_weighting``, or for ``auto`` the sample type's recipe."""
    chosen = params["class_weighting"]
    return AUTO_CLASS_WEIGHTING[sample_type] if chosen == "auto" else chosen


def relevance_used(params: Mapping[str, Any], sample_type: str) -> float:
    """The relevance target's weight: ``relevance_weight`` on ``all`` builds; 0 on ``beh`` ones,
    where every window is a behaviour pedestrian and the target would be constant."""
    return float(params.get("relevance_weight") or 0.0) if sample_type == "all" else 0.0


def _intent(windows) -> Any:
    return windows.intent.as_dict()


def _counts(labels) -> list[int]:
    labels = np.asarray(labels, np.int64)
    return [int((labels == c).sum()) for c in range(len(CLASS_NAMES))]


def selection_record(best: Mapping[str, Any], epochs: int, val_windows: int, val_pedestrians: int) -> dict:
    """How the best epoch was chosen, with a note when that choice rests on little evidence:
    a small val split, or an early epoch (chosen before the schedule had done much)."""
    record = {"metric": "val_auc_binary", "epoch": best.get("epoch"), "val_windows": val_windows,
              "val_pedestrians": val_pedestrians}
    reasons = []
    if val_windows < SMALL_VAL_WINDOWS or val_pedestrians < SMALL_VAL_PEDESTRIANS:
        reasons.append(f"val holds only {val_windows} windows from {val_pedestrians} pedestrians")
    if best.get("epoch") is not None and epochs >= 5 and best["epoch"] <= max(1, epochs // 5):
        reasons.append(f"the best epoch is early ({best['epoch']} of {epochs})")
    if reasons:
        record["note"] = (f"Epoch {best.get('epoch')} was chosen by val balanced accuracy, but "
                          + " and ".join(reasons) + ": its val numbers are noisy; judge the run on "
                          "test, over several seeds.")
    return record


# -- the loop ------------------------------------------------------------------------------------
def fit_context(run: TrainingRun, model: ContextModel, data: ContextData, params: Mapping[str, Any],
                batch_size: int, device: str, *, resume_from: dict | None = None) -> dict:
    """Train ``model`` for ``params["epochs"]``; ``last.pt`` every epoch, ``best.pt`` when val
    balanced accuracy improves. Returns the best epoch's metrics."""
    train_x = to_tensors(data.train.groups, data.features, device)
    train_y = torch.as_tensor(np.asarray(data.train.labels, np.int64), device=device)
    weights = {"balanced": class_weights(_counts(data.train.labels)),
               "sqrt": class_weights(_counts(data.train.labels)).sqrt()}.get(weighting_used(params, data.sample_type))
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device),
                                    label_smoothing=params["label_smoothing"])
    relevance = relevance_used(params, data.sample_type) if model.relevance is not None else 0.0
    train_r = torch.as_tensor(data.train.behavioural(), device=device) if relevance else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params["epochs"])
    n, epochs = len(train_y), params["epochs"]
    steps = math.ceil(n / batch_size)
    curve = LossCurve(run, "train", epochs * steps)
    start, best, rng = 1, {}, None
    state = (resume_from or {}).get("training")
    if state:
        model.load_state_dict(resume_from["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        curve.load_state(state.get("loss_curve"))
        start, best, rng = int(state["epoch"]) + 1, dict(state.get("best") or {}), state["rng"]
    if run.resuming:
        run.rewind("train", start - 1)
    run.stage("train", epochs)
    if rng is not None:
        restore_rng(rng)
    save = _saver(run, model, data)
    for epoch in range(start, epochs + 1):
        started, lr = time.time(), optimizer.param_groups[0]["lr"]
        model.train()
        order = torch.randperm(n).to(device)
        loss_sum, correct = 0.0, 0
        for k in range(steps):
            index = order[k * batch_size:(k + 1) * batch_size]
            labels = train_y[index]
            summary = model.encode({g: x[index] for g, x in train_x.items()})
            logits = model.head(summary)
            loss = criterion(logits, labels)
            if relevance:  # the second target shapes the shared summary; predictions never read it
                loss = loss + relevance * F.binary_cross_entropy_with_logits(
                    model.relevance(summary)[:, 0], train_r[index])
            check_finite_loss(loss.item(), epoch=epoch, batch=k + 1, stage="train", lr=lr,
                              kept=run.path / "last.pt")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            curve.update(loss.item())
            curve.step(epoch, (epoch - 1) * steps + k + 1, lr)
            if run.batch_end(epoch, k + 1, steps) and k + 1 < steps:
                run.log(f"epoch {epoch} stopped before its last batch; last.pt keeps epoch {epoch - 1}")
                if not best:  # a stopped run still has weights to look at
                    save("best.pt", epoch, {"partial_epoch": epoch})
                return best
        scheduler.step()
        val = evaluate_windows(model, data.val, data.features, criterion, device)
        row = {"epoch": epoch, "train_loss": loss_sum / n, "val_loss": val["loss"], "train_acc": correct / n,
               "val_acc": val["accuracy"], "val_auc_binary": val["auc_binary"], "val_roc_auc": val["roc_auc"],
               "val_f1": val["f1"], "lr": lr, "seconds": round(time.time() - started, 3)}
        run.epoch_end(epoch, epochs, row)  # the row first: a failed save loses none
        metrics = {k: row[k] for k in ("val_auc_binary", "val_acc", "val_loss", "val_roc_auc", "val_f1", "train_acc")}
        metrics["epoch"] = epoch
        improved = not best or (metrics["val_auc_binary"] or 0.0) > (best.get("val_auc_binary") or 0.0)
        best = metrics if improved else best
        save("last.pt", epoch, metrics, training_state(epoch=epoch, stage="train", optimizer=optimizer,
                                                      scheduler=scheduler, scaler=None, best=best,
                                                      loss_curve=curve.state()))
        if improved:
            save("best.pt", epoch, metrics)
        if run.stop_now():
            break
    return best


@torch.no_grad()
def evaluate_windows(model: ContextModel, windows, features, criterion: nn.Module, device: str) -> dict:
    """Loss and ``pedsense.metrics.classification_metrics`` of ``model`` on a split's windows."""
    model.eval()
    x = to_tensors(windows.groups, features, device)
    y = torch.as_tensor(np.asarray(windows.labels, np.int64), device=device)
    logits = torch.cat([model({g: t[i:i + 2048] for g, t in x.items()}) for i in range(0, len(y), 2048)])
    p = torch.softmax(logits, 1)[:, 1].cpu().numpy()
    return {"loss": float(criterion(logits, y)), **classification_metrics(y.cpu().numpy(), p)}


def _saver(run: TrainingRun, model: ContextModel, data: ContextData):
    extra = {"features": list(data.features), "sample_type": data.sample_type}

    def save(file_name: str, epoch: int, metrics: dict, training: dict | None = None) -> Path:
        return save_classifier(run.path / file_name, model, class_names=CLASS_NAMES, crop_size=None,
                               epoch=epoch, metrics=metrics, sequence_length=max(data.group_lengths.values()),
                               training=training, extra=extra)
    return save
