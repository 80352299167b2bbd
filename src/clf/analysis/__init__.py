"""What a trained run's attention heads do: one text's heatmap, and per-head statistics over a split."""
