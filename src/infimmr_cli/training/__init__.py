"""GRPO training: pure math (grpo.py), phase views, and the loop's helpers."""
