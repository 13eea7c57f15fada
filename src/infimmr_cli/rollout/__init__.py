"""Generation engines behind one small interface: HF `generate` (CPU, fallback) and colocated vLLM (GPU)."""

from infimmr_cli.rollout.base import Completion, Request, RolloutEngine, SamplingSettings

__all__ = ["Completion", "Request", "RolloutEngine", "SamplingSettings"]
