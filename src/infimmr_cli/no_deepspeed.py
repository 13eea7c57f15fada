"""Keep DeepSpeed out of the processes that do not train with it.

transformers and accelerate look DeepSpeed up whenever it is installed. accelerate's `extract_model_from_parallel`,
which transformers' `save_pretrained` calls through `unwrap_model`, imports it only to test
`isinstance(model, DeepSpeedEngine)`; importing DeepSpeed probes the machine's accelerators and, finding no GPU, logs
"Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it." So `tiny-model`,
`export` and `eval` printed that line (and paid ~1 s for the import) without ever using DeepSpeed.

A `None` entry in `sys.modules` is Python's own mark for "this module is unavailable": `importlib.util.find_spec`
answers None, so both libraries' `is_deepspeed_available()` say False and nothing imports it (every DeepSpeed path in
transformers, accelerate and peft sits behind that check or behind a ZeRO-3 config, which these processes never have).
Unlike DS_ACCELERATOR=cpu, this leaves DeepSpeed's own choice of accelerator alone in the runs that do use it.

Only in a process the `infimmr` entry point owns, which ends with its command: a test suite or a Python caller that
runs a command in-process may still want DeepSpeed afterwards.
"""

from __future__ import annotations

import sys

# The commands that may train with DeepSpeed; train-phase hides it itself once its config says it will not.
USES_DEEPSPEED = frozenset({"train-phase"})
_cli_process = False


def hide_deepspeed() -> bool:
    """Make DeepSpeed unavailable to this process, unless something imported it already; True if hidden now."""
    if "deepspeed" in sys.modules:
        return False
    sys.modules["deepspeed"] = None  # type: ignore[assignment]
    return True


def for_command(argv: list[str]) -> None:
    """The entry point's call, before any command runs: hide DeepSpeed from a command that never uses it."""
    global _cli_process
    _cli_process = True
    command = next((a for a in argv if not a.startswith("-")), None)  # infimmr has no top-level option with a value
    if command not in USES_DEEPSPEED:
        hide_deepspeed()


def not_needed() -> None:
    """train-phase on plain torch: hide DeepSpeed, if this is the CLI's own process."""
    if _cli_process:
        hide_deepspeed()
