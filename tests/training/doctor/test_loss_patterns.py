"""The guard's reasoning on per-epoch curves recorded from real runs on the household power data
(tests/training/test_guard.py runs them for real): each stuck curve names its cause, healthy
curves name none."""

import pytest

from training.doctor.loss_patterns import diagnose, flat_epochs, nan_finding, suspiciously_low

COMMON = dict(target_mean=0.0, target_std=1.0, steps_per_epoch=72, patience=3, tolerance=0.05)


def cause(losses, *, baseline=1.027, stds=None, moved=None, **kw):
    stds = stds or [0.5] * len(losses)
    moved = moved or [0.5] * len(losses)
    f = diagnose(losses, stds, moved, baseline=baseline, **{**COMMON, **kw})
    return f.cause if f else None


def test_a_fall_after_a_spike_does_not_reset_the_count():
    assert flat_epochs([1.0, 0.99, 1.3, 1.0, 0.99], 0.05) == 4
    assert flat_epochs([1.0, 0.9, 0.8, 0.7], 0.05) == 0


def test_each_stuck_curve_names_its_cause():
    # Adam at LR 1.0: the loss jumps by 45% and never beats its first epoch
    assert cause([0.664, 0.963, 0.901, 0.789]) == "oscillating"
    # Adam at LR 1e-6: the predictions moved 0.4% of the target's std in four epochs
    assert cause([1.287, 1.276, 1.273, 1.302], moved=[0.001, 0.002, 0.003, 0.004]) == "frozen"
    # the same a few percent below the mean level (an untrained model with the linear skip starts
    # there; measured on household power, seed 1): still frozen, not "validation stays at its mean"
    assert cause([0.9475, 0.9524, 0.9498, 0.9627], moved=[0.001, 0.002, 0.003, 0.004], baseline=1.013,
                 val_losses=[0.6498, 0.6489, 0.6479, 0.6470], val_baseline=0.6521) == "frozen"
    # the target shuffled against its inputs: falls to the mean level (predictions moved) and stays
    assert cause([1.104, 1.046, 1.009, 1.023, 1.031], baseline=1.022) == "mean_level"
    # Voltage unscaled: the LSTM saturates, predictions have no variance
    f = diagnose([3.986, 2.187, 1.409], [1e-4, 6e-5, 4.7e-5], [0.3] * 3, baseline=1.03, big_inputs=("Voltage",),
                 **COMMON)
    assert f.cause == "saturated_inputs" and "Voltage" in f.fix and f.checks == "scaling"
    assert cause([3.986, 2.187, 1.409], stds=[1e-4, 6e-5, 4.7e-5]) == "dead_output"
    # the target left unscaled near 20000: the loss is 10^4-10^5 x the mean level
    f = diagnose([4.1e8, 3.9e8, 3.8e8], [0.5] * 3, [1.0] * 3, baseline=1.1e4, **{**COMMON, "target_mean": 2e4,
                                                                                   "target_std": 105.0})
    assert f.cause == "unscaled_target" and "34,545x" in f.seen and "mean 2e+04" in f.seen
    # training learns, validation stays at its mean level
    assert cause([0.9, 0.7, 0.5, 0.4], val_losses=[1.01, 1.0, 1.02, 1.01], val_baseline=1.0) == "val_mean_level"


@pytest.mark.parametrize("losses,val", [
    ([1.11, 0.956, 0.922, 0.901, 0.908, 0.884, 0.896, 0.883, 0.888, 0.872],  # a hard target (noise 2x the signal)
     [0.979, 0.949, 0.948, 0.947, 0.948, 0.948, 0.948, 0.949, 0.947, 0.949]),
    ([0.62, 0.41, 0.37, 0.355, 0.35, 0.349, 0.348, 0.351, 0.347, 0.348],  # converged well below the mean
     [0.45, 0.36, 0.34, 0.335, 0.336, 0.337, 0.334, 0.338, 0.335, 0.336]),
    ([1.164, 0.587, 0.379, 0.279, 0.195, 0.14, 0.106],  # still falling fast
     [0.405, 0.294, 0.211, 0.149, 0.101, 0.065, 0.042]),
])
def test_healthy_curves_name_nothing(losses, val):
    for n in range(1, len(losses) + 1):
        assert cause(losses[:n], val_losses=val[:n], val_baseline=1.0) is None, n


def test_overfitting_after_a_good_epoch_is_left_to_early_stopping():
    """A run on the 7-day protocol's daily totals (seed 6, validation moved back 26 weeks): the
    validation loss fell to 67% of its mean level at epoch 8, then rose back to it as training went
    on. The guard called that "does not carry over" at epoch 17 and failed the run (exit 3, no
    export) instead of letting early stopping restore epoch 8."""
    losses = [0.9097, 0.7967, 0.6903, 0.5683, 0.5616, 0.485, 0.4697, 0.4345, 0.4175, 0.3781, 0.3693, 0.3422,
              0.3374, 0.2892, 0.2861, 0.2707, 0.2737]
    val = [0.6483, 0.54, 0.476, 0.3728, 0.3713, 0.3538, 0.3611, 0.3461, 0.375, 0.397, 0.4159, 0.4172, 0.423,
           0.4556, 0.5409, 0.5398, 0.5069]
    for n in range(1, len(losses) + 1):
        assert cause(losses[:n], baseline=0.944, val_losses=val[:n], val_baseline=0.5173) is None, n
    # the same training curve with a validation loss that never left its mean level still names it
    flat = [0.52, 0.515, 0.518, 0.514, 0.516, 0.52, 0.519, 0.517, 0.521, 0.52, 0.518, 0.519, 0.52, 0.522, 0.521,
            0.52, 0.519]
    assert cause(losses, baseline=0.944, val_losses=flat, val_baseline=0.5173) == "val_mean_level"


def test_nan_says_which_came_first():
    assert nan_finding([0.5, 0.6, 2.0, 40.0], 5, float("nan"), inputs_finite=True).cause == "nan_lr"
    steady = nan_finding([0.5, 0.48, 0.47], 4, float("inf"), inputs_finite=False)
    assert steady.cause == "nan_inputs" and "sample of inputs holds NaN/inf" in steady.seen
    assert nan_finding([], 1, float("nan"), inputs_finite=True).cause == "nan_start"


def test_a_first_epoch_far_below_the_mean_level_is_a_leak_warning():
    assert "suspiciously low" in suspiciously_low(0.004, 1.0) and not suspiciously_low(0.3, 1.0)
