"""clf: attention-based document classifiers, trained resumably on a laptop or on Slurm."""

__version__ = "0.1.0"
