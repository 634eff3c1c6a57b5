"""Advice: the wizard's decision tree and the published reference tables."""
