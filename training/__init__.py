"""seqscale training: the multi-worker stacked-LSTM trainer (reads preprocessing's manifest)."""
