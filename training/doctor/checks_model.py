"""Doctor checks that train a small model: capacity, head, learning rate range, batch size.

Each builds a fresh model from the run's own ModelConfig on a sample of windows, so the
verdict is about the configuration the user will train.
"""

from __future__ import annotations

import math
from dataclasses import replace

from training.doctor.verdict import FAIL, PASS, WARN, Verdict
from training.lr_plan import LRPlan, scale_lr
from training.plots import safe_plot


def _model(manifest, cfg, seed=0):
    from training.model import build_model

    return build_model(manifest, cfg.model, seed=seed)


def _loss(manifest, cfg):
    from training.model import make_loss, resolve_head

    return make_loss(resolve_head(manifest, cfg.model))


# ------------------------------------------------------------------ 3. capacity


def check_capacity(manifest, cfg, sample, steps: int = 300) -> Verdict:
    import tensorflow as tf

    from training.config import TrainConfig
    from training.guard import mean_prediction

    cfg1 = replace(cfg, model=replace(cfg.model, dropout=0.0))
    model = _model(manifest, cfg1, seed=cfg.train.seed)
    loss_fn = _loss(manifest, cfg1)
    # one batch of the size base_lr is tuned for, with Adam at the default base LR: a check of
    # the model's capacity, whatever LR the run asks for (the lr check judges that one)
    lr = TrainConfig().base_lr
    model.compile(optimizer=tf.keras.optimizers.Adam(lr), loss=loss_fn)
    batch = cfg.train.reference_batch
    x, y = sample["x"][:batch], sample["y"][:batch]
    first = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, batch_size=batch, epochs=steps, verbose=0)
    last = float(model.evaluate(x, y, verbose=0))
    # judged against the lower of the untrained loss and the batch's mean level (the loss of
    # predicting its mean): an anchored model (--anchor) starts near persistence's loss, which
    # can be far below the mean level, a level model near the mean level
    level = float(loss_fn(y, mean_prediction(manifest, y, len(y), cfg.model.quantiles)))
    start = min(first, level)
    drop = 1 - last / start if start > 0 else 0.0
    # 90% lower for a squared loss; an absolute one (mae, the pinball loss of --quantiles) falls like
    # its square root, so the same memorization shows as 1 - sqrt(0.1) = 68% lower
    needed = 1 - math.sqrt(0.1) if cfg.model.quantiles or cfg.model.loss == "mae" else 0.9
    below = f"the batch's mean level {level:.4g}" if level <= first else "the start"
    evidence = (f"one batch of {len(x)} windows, {steps} Adam steps at LR {lr:g}: "
                f"loss {first:.4g} -> {last:.4g}, {drop * 100:.0f}% below {below} (needs {needed * 100:.0f}%)")
    if not math.isfinite(last) or drop < needed:
        from training.doctor.checks_data import step_look_back

        L, reach = manifest.window.look_back, step_look_back(manifest)
        first = (f"the look-back {L} does not reach a season back from the last input ({reach} rows at the data's "
                 f"step): windows that end "
                 f"alike cannot be told apart, so raise --look-back to {reach} first; if it still fails, "
                 if reach and reach > L else "")
        return Verdict("capacity", FAIL, evidence,
                       f"the model cannot even memorize one batch: {first}add units/layers (--units), check that "
                       "targets belong to their inputs (check 'windows'), and that the head fits (check 'head')")
    return Verdict("capacity", PASS, evidence)


# ------------------------------------------------------------------ 4. head


def check_head(manifest, cfg, sample) -> Verdict:
    import numpy as np

    from training.model import HeadError, resolve_anchor, resolve_head

    y = np.asarray(sample["y"]).reshape(-1)
    try:
        head = resolve_head(manifest, cfg.model)
        anchor = resolve_anchor(manifest, cfg.model)
    except HeadError as e:
        return Verdict("head", FAIL, f"target range [{y.min():.3g}, {y.max():.3g}] ({manifest.task}): {e}",
                       "use --head-activation auto --loss auto: linear+MSE for regression, sigmoid+binary "
                       "cross-entropy for 0/1 labels, softmax+sparse categorical cross-entropy for classes")
    if manifest.task == "binary" and not set(np.unique(y)) <= {0.0, 1.0}:
        return Verdict("head", FAIL, f"binary labels take values {sorted(set(np.unique(y)))[:5]}",
                       "labels must be 0 or 1")
    return Verdict("head", PASS, f"{head.activation} output with {head.loss} for a {manifest.task} target in "
                                 f"[{y.min():.3g}, {y.max():.3g}] (as stored in the shards), "
                                 f"{ANCHOR_WORDS[anchor]} (--anchor {anchor})")


ANCHOR_WORDS = {"none": "forecasting its level", "last": "forecasting the change from its last value",
                "relative": "forecasting the change from its last value, the window read relative to it",
                "scaled": "forecasting the change from its last value in the window's own scale"}


# ------------------------------------------------------------------ 5. learning rate


def lr_range_test(manifest, cfg, sample, *, steps: int = 100, eval_size: int = 256):
    """(lrs, evaluation losses, mean level) of an exponential LR sweep with the run's optimizer.

    Each step trains on the next batch of the sample (reference batch size) and then
    measures the loss on one fixed evaluation batch held out of training, so the curve
    reflects the LR, not which batch came up. The sweep stops once it has diverged.
    """
    import numpy as np
    import tensorflow as tf

    from evaluation.quantiles import mean_head
    from training.doctor.lr_range import SWEEP_RANGE, diverged, ema
    from training.guard import mean_prediction
    from training.train import make_optimizer

    model = _model(manifest, replace(cfg, model=replace(cfg.model, dropout=0.0)), seed=cfg.train.seed)
    lo, hi = SWEEP_RANGE[cfg.train.optimizer]
    opt = make_optimizer(cfg, lo, levels_apart=mean_head(cfg.model.quantiles))  # a mean head's clipping too
    loss_fn = _loss(manifest, cfg)
    batch = cfg.train.reference_batch
    x, y = np.asarray(sample["x"]), np.asarray(sample["y"])
    eval_size = min(eval_size, len(x) // 4)
    xe, ye = tf.constant(x[-eval_size:]), tf.constant(y[-eval_size:])
    xt, yt = x[:-eval_size], y[:-eval_size]
    order = np.random.default_rng(cfg.train.seed).permutation(len(xt))
    level = float(loss_fn(ye, mean_prediction(manifest, yt, eval_size, cfg.model.quantiles)))  # the train mean (or quantiles)

    @tf.function
    def train_step(xb, yb, lr):
        opt.learning_rate.assign(lr)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables,
                                strict=True))

    @tf.function
    def eval_loss():
        return loss_fn(ye, model(xe, training=False))

    lrs = lo * (hi / lo) ** (np.arange(steps) / (steps - 1))
    losses = [float(eval_loss())]  # the start, before any step
    for i, lr in enumerate(lrs[1:]):
        j = (i * batch) % max(1, len(xt) - batch + 1)
        idx = order[j : j + batch]
        train_step(tf.constant(xt[idx]), tf.constant(yt[idx]), tf.constant(lr, tf.float32))
        losses.append(float(eval_loss()))
        if diverged(ema(np.array(losses))):
            break
    return lrs[: len(losses)], np.array(losses), level


def check_lr(manifest, cfg, sample, plan: LRPlan, plot_path: str | None = None) -> Verdict:
    """The LR range test at the reference batch, judged against the configured LR at that batch."""
    from training.doctor.lr_range import SWEEP_RANGE, judge, read_sweep

    lrs, losses, level = lr_range_test(manifest, cfg, sample)
    sweep = read_sweep(lrs, losses, level)
    peak_lr, global_batch, ref, rule = plan.peak_lr, plan.global_batch, plan.reference_batch, plan.rule
    at_ref = plan.base_lr  # the sweep runs at the reference batch, where the run's LR is base_lr
    suggested = scale_lr(sweep.suggested, global_batch, ref, rule)  # rescaled like the run's own LR
    if plot_path:
        safe_plot(_plot_lr, plot_path, sweep.lrs, sweep.smooth, at_ref, sweep.suggested, level, plot_path)
    lo, hi = SWEEP_RANGE[cfg.train.optimizer]
    status, reason = judge(sweep, at_ref)
    evidence = (f"{cfg.train.optimizer} LR sweep {lo:g}..{hi:g} at batch {ref} (loss on a fixed held-out batch, EMA): "
                f"start {sweep.start:.3g}, mean level {level:.3g}, lowest {sweep.low:.3g} at LR {sweep.lr_min:.2g}"
                + (f", diverged from {sweep.lr_diverged:.2g}" if sweep.lr_diverged is not None else "")
                + f"; configured base LR {at_ref:.2g} (peak {peak_lr:.2g} at global batch {global_batch}, {rule} rule)")
    if status == "too_high":
        return Verdict("lr", FAIL, f"{evidence} -- far too high: {reason}",
                       f"lower --base-lr to about {sweep.suggested:.2g} (peak {suggested:.2g} at global batch "
                       f"{global_batch}; keep --lr-scaling for the batch)")
    if status == "too_low":
        return Verdict("lr", FAIL, f"{evidence} -- far too low: {reason}; training will crawl",
                       f"raise --base-lr to about {sweep.suggested:.2g} (peak {suggested:.2g} at global batch "
                       f"{global_batch})")
    if status == "inconclusive":
        return Verdict("lr", WARN, f"{evidence} -- inconclusive: {reason}",
                       "the LR cannot be judged while the loss does not fall at any LR: see 'learnability' and "
                       "'capacity' first")
    return Verdict("lr", PASS, f"{evidence}: {reason}; keep it")


def _plot_lr(lrs, losses, peak, suggested, level, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lrs, losses, marker=".")
    ax.axvline(peak, color="tab:red", linestyle="--", label=f"configured LR {peak:.2g}")
    ax.axvline(suggested, color="tab:green", linestyle=":", label=f"suggested {suggested:.2g}")
    ax.axhline(level, color="tab:gray", linestyle="-.", label=f"predicting the train mean {level:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss on a fixed held-out batch (EMA)")
    ax.set_title("LR range test")
    ax.legend()
    save_figure(fig, path)


# ------------------------------------------------------------------ 6. batch size


def gradient_noise_scale(manifest, cfg, sample, small: int = 16, big: int = 256, repeats: int = 4) -> float:
    """B_simple = tr(Sigma) / |G|^2 from gradient norms at two batch sizes (McCandlish et al., 2018)."""
    import numpy as np
    import tensorflow as tf

    model = _model(manifest, replace(cfg, model=replace(cfg.model, dropout=0.0)), seed=cfg.train.seed)
    loss_fn = _loss(manifest, cfg)

    def sq_norm(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.constant(yb), model(tf.constant(xb), training=False))
        grads = tape.gradient(loss, model.trainable_variables)
        return float(sum(tf.reduce_sum(g * g) for g in grads if g is not None))

    rng = np.random.default_rng(0)
    g_small = np.mean([sq_norm(*(a[idx] for a in (sample["x"], sample["y"])))
                       for idx in (rng.choice(len(sample["x"]), small, replace=False) for _ in range(repeats * 4))])
    g_big = np.mean([sq_norm(*(a[idx] for a in (sample["x"], sample["y"])))
                     for idx in (rng.choice(len(sample["x"]), min(big, len(sample["x"])), replace=False)
                                 for _ in range(repeats))])
    return noise_scale(float(g_small), float(g_big), small, big)


def noise_scale(g_small: float, g_big: float, small: int, big: int) -> float:
    """B_simple from the mean squared gradient norms at two batch sizes. Both estimates (|G|^2 and
    tr(Sigma)) are differences of noisy means: a negative tr(Sigma) (the big batch's norm came
    out larger) leaves the scale unmeasured, nan; a vanishing |G|^2 makes it unbounded, inf."""
    g2 = (big * g_big - small * g_small) / (big - small)
    trace = (g_small - g_big) / (1 / small - 1 / big)
    if not trace > 0:
        return math.nan
    return float(trace / g2) if g2 > 0 else math.inf


def check_batch(manifest, cfg, sample, global_batch: int) -> Verdict:
    steps = manifest.windows("train") // global_batch
    noise = gradient_noise_scale(manifest, cfg, sample)
    if math.isnan(noise):
        said = "gradient noise scale at initialization not measurable (the sampled gradient norms were too noisy)"
    elif math.isinf(noise):
        said = "gradient noise scale at initialization unbounded (the mean gradient vanished)"
    else:
        said = f"gradient noise scale at initialization ~{noise:.0f}"
    evidence = (f"global batch {global_batch}: {steps} steps per epoch over {manifest.windows('train'):,} train "
                f"windows; {said}")
    if steps < 10:
        return Verdict("batch", FAIL, evidence + " -- too few steps per epoch to learn or to early-stop sensibly",
                       f"use a global batch of at most {max(1, manifest.windows('train') // 50)} (--global-batch-size) "
                       "or more data")
    if math.isfinite(noise) and global_batch > 20 * max(noise, 1):
        return Verdict("batch", WARN, evidence + " -- the batch is far above the noise scale: bigger batches "
                       "add little per step", f"a global batch near {max(8, int(noise)):d}-{max(16, int(4 * noise)):d} "
                       "uses the data better; more replicas then need a larger dataset")
    if math.isfinite(noise) and global_batch < noise / 20:
        return Verdict("batch", WARN, evidence + " -- the batch is far below the noise scale: gradients are "
                       "mostly noise", f"raise the global batch toward {int(noise)}")
    return Verdict("batch", PASS, evidence)
