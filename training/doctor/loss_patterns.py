"""Which cause a stuck loss curve points to: the guard's reasoning, pure numpy/python.

Each pattern is a shape of the per-epoch losses against the loss of predicting the train
mean (the "mean level"), and each names one cause and the doctor check that confirms it:

  unscaled_target  loss orders of magnitude above the mean level: the output starts near 0
                   while the target sits far away (a target not scaled)
  saturated_inputs predictions without variance (or a loss exactly constant) while some
                   inputs are unscaled: they saturate the LSTM's gates
  dead_output      the same with scaled inputs: a dead or saturated head
  frozen           no progress and the predictions have hardly moved since
                   the start: LR too low or too few steps
  oscillating      no progress and the loss jumps up and down around the mean level: LR too high
  mean_level       no progress at the mean level, steadily: the targets do not follow from
                   the inputs
  val_mean_level   training loss falls but validation never gets below its mean level: what
                   is learned does not carry over (memorizing, or targets unrelated to inputs)
  nan_lr / nan_inputs / nan_start   the loss became NaN/inf, after rising / while steady /
                   at the first step
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNSCALED = 10.0  # loss above this multiple of the mean level, epoch after epoch
LEAK_LOW = 0.01  # an epoch-1 loss below this fraction of the mean level is suspicious
NEAR_MEAN = 0.5  # "around the mean level": the recent losses all above this fraction of it
RISE = 0.10  # an epoch-to-epoch rise above this fraction is a jump, not noise
SPREAD = 0.25  # or the recent losses spanning this fraction of their minimum
STILL = 0.05  # predictions moved less than this fraction of the target's std since the start: frozen
EXPLODE = 10.0  # the batch loss rose this much above its best before the NaN: the LR
BIG_INPUT = 20.0  # an input this many units from 0 saturates tanh/sigmoid gates


@dataclass(frozen=True)
class Finding:
    """One named cause, with the numbers that point to it."""

    cause: str
    seen: str  # what the loss did, with numbers
    meaning: str  # the cause in user words
    fix: str
    checks: str  # the doctor checks that confirm it (--only)


def flat_epochs(losses: list[float], tolerance: float) -> int:
    """Epochs since the loss last set a new best by more than `tolerance` (relative).

    A fall after a spike does not reset this count, unlike comparing with the previous epoch.
    """
    best, since = math.inf, 0
    for v in losses:
        if v < best * (1 - tolerance):
            best, since = v, 0
        else:
            since += 1
            best = min(best, v)
    return since


def diagnose(losses: list[float], pred_stds: list[float], moved: list[float], *, baseline: float,
             target_mean: float, target_std: float, steps_per_epoch: int, patience: int, tolerance: float,
             val_losses: list[float] | None = None, val_baseline: float | None = None,
             big_inputs: tuple[str, ...] = ()) -> Finding | None:
    """The cause a run that should stop shows after its latest epoch, or None while it is healthy.

    Args:
        losses, val_losses: per-epoch training / validation loss so far.
        pred_stds: per epoch, the std of the predictions on the guard's fixed sample.
        moved: per epoch, RMS change of those predictions since training began / target std.
        baseline, val_baseline: loss of predicting the train mean on train / validation windows.
        big_inputs: input columns whose sampled values reach BIG_INPUT (unscaled).
    """
    if not patience or len(losses) < patience:
        return None
    recent, n = losses[-patience:], len(losses)
    if all(v > UNSCALED * baseline for v in recent):
        return Finding(
            "unscaled_target",
            f"the training loss {losses[-1]:.4g} is {losses[-1] / baseline:,.0f}x the loss of predicting the mean "
            f"({baseline:.4g}) after {n} epochs; the target in the shards has mean {target_mean:.4g}, std {target_std:.4g}",
            "the target is not scaled: the output starts near 0, far from the target, and the loss is dominated by "
            "that offset",
            "remove the target from --unscaled (keep the default standard scaler) and rerun preprocessing", "scaling")
    constant = len(losses) > patience and max(losses[-patience - 1:]) - min(losses[-patience - 1:]) <= 1e-7 * abs(
        losses[-1])
    if all(s < 1e-3 * max(target_std, 1e-12) for s in pred_stds[-patience:]) or constant:
        seen = (f"the predictions on a fixed sample have std {pred_stds[-1]:.3g} (targets {target_std:.3g}) and the "
                f"loss {'stayed at exactly' if constant else 'sits at'} {losses[-1]:.4g} for {patience} epochs")
        if big_inputs:
            return Finding("saturated_inputs", seen + f"; inputs {', '.join(big_inputs)} reach {BIG_INPUT:g}+",
                           "unscaled inputs saturate the LSTM's gates, so every window gives the same output",
                           f"scale {', '.join(big_inputs)} (drop them from --unscaled) and rerun preprocessing",
                           "scaling")
        return Finding("dead_output", seen,
                       "the output cannot move: a dead or saturated head or a layer whose units all died",
                       "use --head-activation auto --loss auto and a lower --base-lr", "head,lr")
    stale = flat_epochs(losses, tolerance)
    if stale >= patience:
        window = losses[-patience - 1:]
        rises = [b / a - 1 for a, b in zip(window, window[1:], strict=False) if a > 0]
        spread = max(window) / min(window) - 1 if min(window) > 0 else math.inf
        at_mean = min(losses) >= (1 - tolerance) * baseline
        still = bool(moved) and moved[-1] < STILL
        frozen = Finding(
            "frozen",
            f"the predictions barely moved since the start (by {moved[-1] if moved else 0:.1%} of the target's std) "
            f"and the training loss stays at {losses[-1]:.4g} (mean level {baseline:.4g}) after {n} epochs of "
            f"{steps_per_epoch} steps",
            "the learning rate is too low for the optimizer and batch (or there are too few steps) to move the "
            "weights", "raise --base-lr (the doctor's LR range test suggests one) or use a smaller "
            "--global-batch-size", "lr,batch")
        if at_mean and still:
            return frozen
        if min(window) >= NEAR_MEAN * baseline and (max(rises, default=0) > RISE or spread > SPREAD):
            return Finding(
                "oscillating",
                f"the training loss jumps up and down near the mean level ({baseline:.4g}) without a new best for "
                f"{stale} epochs: " + ", ".join(f"{v:.4g}" for v in window)
                + f" (up to {max(rises, default=0):+.0%} in one epoch; best {min(losses):.4g})",
                "the learning rate is too high: steps overshoot, so the loss cannot settle",
                "lower --base-lr (the doctor's LR range test suggests one)", "lr")
        if still:  # not jumping, and the predictions barely moved: frozen a few percent below the mean
            # level too (an untrained model with the linear skip can start there)
            return frozen
        if at_mean:
            return Finding(
                "mean_level",
                f"the training loss sits at the mean level: best {min(losses):.4g} vs {baseline:.4g} for predicting "
                f"the mean, no new best for {stale} epochs",
                "the model finds nothing in the inputs that predicts the target: the target may be unrelated to the "
                "inputs or misaligned with them",
                "check --targets/--features and the alignment of the target with its inputs", "learnability,windows")
    if val_losses and val_baseline and len(val_losses) >= patience:
        val_recent = val_losses[-patience:]
        train_moves = min(losses) < (1 - tolerance) * baseline
        val_tol = tolerance / 2
        # never below it: a validation loss that fell well below its mean level and rose back
        # is overfitting after a good epoch, which early stopping ends (restoring that epoch)
        never_below = min(val_losses) >= (1 - tolerance) * val_baseline
        if train_moves and never_below and all(v >= (1 - val_tol) * val_baseline for v in val_recent) \
                and flat_epochs(val_losses, val_tol) >= patience:
            return Finding(
                "val_mean_level",
                f"the training loss fell to {losses[-1]:.4g} ({losses[-1] / baseline:.0%} of its mean level) but the "
                f"validation loss stayed at {val_losses[-1]:.4g}, its mean level being {val_baseline:.4g}, for "
                f"{patience} epochs",
                "what the model learns on the training windows does not carry over: it memorizes them, the "
                "targets are unrelated to the inputs, or validation comes from a different regime",
                "check the target's relation to the inputs; more data or --dropout for memorizing",
                "learnability,windows")
    return None


def suspiciously_low(loss: float, baseline: float, *, what: str = "training loss after the first epoch",
                     absolute: bool = False, naive: float | None = None) -> str:
    """A warning when the training loss falls far below the mean level (a leak's signature),
    and far below `naive` too when known (the lower loss of repeating the target's last input
    value and of extending its last change: a smooth target is that close to its next value
    without any leak).

    `absolute`: a loss of |errors| (mae, pinball), which falls like the square root of a
    squared one, so the same fit shows at sqrt(LEAK_LOW) of its mean level."""
    low = math.sqrt(LEAK_LOW) if absolute else LEAK_LOW
    if naive is not None and loss >= low * naive:  # 0: the naive forecast is exact (a ramp)
        return ""
    if baseline > 0 and loss < low * baseline:
        beside = (f" and {loss / naive:.2%} of the best naive forecast's ({naive:.3g}: repeating or "
                  "extending the target's last value)") if naive else ""
        return (f"the {what} is {loss:.3g}, {loss / baseline:.2%} of the loss "
                f"of predicting the mean ({baseline:.3g}){beside}: suspiciously low; a column holding the target's "
                "future value (a leak) looks like this. Check with: seqscale-doctor --only learnability")
    return ""


def nan_finding(batch_losses: list[float], step: int, value: float, *, inputs_finite: bool) -> Finding:
    """Which came first before a NaN/inf loss: a rising loss (the LR) or a steady one (the data)."""
    if not batch_losses:
        return Finding("nan_start", f"the training loss was {value} at the first step",
                       "bad inputs (NaN/inf in the shards" + ("" if inputs_finite else ", as the guard's sample shows")
                       + ") or an LR so high the first update overflowed",
                       "check the shards' values (the doctor's scaling check) and the LR", "scaling,lr")
    best, last = min(batch_losses), batch_losses[-1]
    if last > EXPLODE * best:
        return Finding("nan_lr",
                       f"the training loss rose from {best:.4g} to {last:.4g} before it became {value} by step {step}",
                       "the learning rate is too high (the loss exploded first, then overflowed)",
                       "lower --base-lr (the doctor's LR range test suggests one)", "lr")
    return Finding("nan_inputs",
                   f"the training loss was steady ({last:.4g}, best {best:.4g}) right before it became {value} by step "
                   f"{step}" + ("" if inputs_finite else "; the guard's sample of inputs holds NaN/inf"),
                   "an input window with NaN/inf or extreme values (the loss did not rise first, so not the LR)",
                   "check the shards' values (the doctor's scaling check); rerun preprocessing with --nan-policy fail",
                   "scaling")
