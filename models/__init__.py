"""Close-probability and next-stage models, their baselines and their evaluation."""
