"""Sweep results: find runs, read what they wrote, group them into tables and plots.

Nothing here imports torch; ``clf aggregate`` reads JSON, YAML and TensorBoard event files only.
"""
