"""Classical EP baselines."""
