"""rxstream's benchmarks: every figure a ratio against a baseline run side by side in the same process."""
