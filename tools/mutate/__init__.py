"""Mutation testing of rxstream's synchronous layers: ``python -m tools.mutate`` (see README, Tests and development)."""
