"""Forecast evaluation: metrics as mergeable accumulators, numpy only (no Beam, no TensorFlow).

Fed batch by batch by the trainer (`training/evaluate.py`) and, wrapped in a thin CombineFn,
by seqscale-predict's score mode, so neither holds a split in memory and both report alike.
"""
