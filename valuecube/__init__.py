"""valuecube: the command-line shell over features, models, training and serving."""

__version__ = "0.1.0"
