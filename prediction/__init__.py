"""seqscale-predict: batch forecasting with a trained export, as a Beam job (the runners of preprocessing)."""
