"""`make demo`: seqscale end to end on real data (UCI household power consumption)."""
