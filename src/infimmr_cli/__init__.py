"""infimmr: curriculum GRPO for multimodal math reasoning (Infi-MMR), from one CPU to many GPU nodes."""

__version__ = "0.1.0"
