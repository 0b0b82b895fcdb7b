"""``distill``: a smaller student trained from the trial's trained model (the teacher).

The student is the teacher's network (MLP or CNN) with ``width`` of its units and channels
(or ``units``, and ``layers`` hidden layers), and the same input preparation. It trains for
``epochs`` on the training rows with the usual loss of Hinton et al. (2015):

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

(for regression: ``alpha`` * MSE to the teacher's predictions + (1 - alpha) * MSE to the targets,
in standard units). An over-confident teacher gives soft targets that are almost one-hot and
teach little beyond the labels; ``teacher_smoothing`` first fine-tunes a copy of the teacher
with that label smoothing for ``teacher_epochs`` (Müller et al., 2019, on when smoothing helps
and hurts distillation: measure it, the benchmark does).

The loop is written here rather than reusing the trainer's ``Fitter``: its loss sees outputs
and labels only, distillation needs the teacher's outputs for the same rows. The teacher's
outputs are computed once (eval mode: deterministic), not per batch.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from automl.plugin import Compressor, Trainer, TrialError
from automl_compress.params import DistillParams, parse
from automl_compress.torch_tools import finetune, torch_trainer

__all__ = ["DistillCompressor", "student_settings"]


def student_settings(settings: Any, p: DistillParams) -> Any:
    """The teacher's settings with the student's sizes."""
    units = p.units if p.units is not None else max(1, round(settings.units * p.width))
    return settings.model_copy(update={
        "units": units,
        "channels": max(1, round(settings.channels * p.width)),
        "layers": settings.layers if p.layers is None else p.layers,
    })


class DistillCompressor(Compressor):
    """Replaces the trial's network by a smaller student distilled from it."""

    def compress_model(self, trainer: Trainer) -> None:
        import torch
        from automl_torch.loop import predict
        from automl_torch.networks import build_model
        from torch.nn import functional as F

        p: DistillParams = parse(DistillParams, self.params)
        t = torch_trainer(trainer, "distill")
        if not p.enabled:
            return
        if t.settings.network not in ("mlp", "cnn"):
            raise TrialError(f"distill builds students of mlp and cnn networks; this trial's network is {t.settings.network!r}")
        classify = t.classes_ is not None
        teacher = t.net_.eval()
        if p.teacher_smoothing > 0 and classify:
            teacher = copy.deepcopy(teacher)
            finetune(t, teacher, p.teacher_epochs, 0.1, label_smoothing=p.teacher_smoothing)
        train = t.arrays("train")
        device = t.device_
        X = torch.as_tensor(train.X, device=device)
        y = torch.as_tensor(train.y, device=device)
        soft = predict(teacher, train.X, device).to(device)
        torch.manual_seed(t.context.seed + 104729)
        student = build_model(
            student_settings(t.settings, p), n_features=train.X.shape[1],
            n_outputs=len(t.classes_) if t.classes_ is not None else 1,
            mean=t.stats_[0], std=t.stats_[1], target=t.target_,
        ).to(device)
        batch = max(1, int(t.settings.batch_size))
        steps = p.epochs * math.ceil(len(X) / batch)
        optimizer = torch.optim.AdamW(student.parameters(), lr=p.lr, weight_decay=t.settings.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
        generator = torch.Generator().manual_seed(t.context.seed)
        std = t.target_[1] if t.target_ and t.target_[1] > 1e-12 else 1.0
        T = p.temperature
        student.train()
        for epoch in range(1, p.epochs + 1):
            total, seen = 0.0, 0
            for idx in torch.randperm(len(X), generator=generator).to(device).split(batch):
                out = student(X[idx])
                if classify:
                    kd = F.kl_div(F.log_softmax(out / T, dim=1), F.softmax(soft[idx] / T, dim=1), reduction="batchmean")
                    loss = p.alpha * T * T * kd + (1 - p.alpha) * F.cross_entropy(out, y[idx])
                else:
                    loss = p.alpha * F.mse_loss(out / std, soft[idx] / std) + (1 - p.alpha) * F.mse_loss(out / std, y[idx] / std)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            if not math.isfinite(total):
                raise TrialError(
                    f"the distillation loss became {total / max(seen, 1)} in epoch {epoch} (distill.lr={p.lr:g}, "
                    f"temperature={T:g}): lower distill.lr"
                )
        t.net_ = student.eval()
