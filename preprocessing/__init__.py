"""seqscale preprocessing: the Beam job that turns time-series tables into windowed TFRecords.

Importing the package imports neither Beam nor TensorFlow, so the trainer can use
the `contract` package (the data contract) without pulling in the Beam job.
"""
