"""A record as an engine request in eval's view (images, no caption): the one builder eval and training's validation
share, so the validation curve is measured the way `infimmr eval` measures."""

from __future__ import annotations

from infimmr_cli.data.records import Record
from infimmr_cli.rollout.base import Request


def build_request(rec: Record, processor, max_prompt_len: int) -> Request:
    """The engine request for one record; ImageError when an image cannot be read or the prompt is over the limit.

    The length is counted from the image headers before any image is decoded (training.batching.prompt_length, as
    train-phase counts it); a processor without a tokenizer (a test's fake engine) skips the count.
    """
    from infimmr_cli.data.images import ImageError, image_size, load_record_images
    from infimmr_cli.data.prompt import build_messages

    messages = build_messages(rec)
    if getattr(processor, "tokenizer", None) is not None:
        from infimmr_cli.training.batching import prompt_length

        sizes = [image_size(p) for p in rec.image_paths()]
        try:
            n = prompt_length(processor, messages, sizes)
        except ImageError:
            raise
        except ValueError as exc:  # the resize rule refuses the image (aspect ratio over 200)
            raise ImageError(f"{', '.join(map(str, rec.image_paths()))}: {exc}") from None
        if n > max_prompt_len:
            raise ImageError(f"prompt is {n} tokens, over --max-prompt-len {max_prompt_len}")
    return Request(messages, load_record_images(rec, processor))


def text_only_request(rec: Record) -> Request:
    """What stands in for a record whose request could not be built: its text alone (the answer is scored 0)."""
    from infimmr_cli.data.prompt import build_messages

    return Request(build_messages(rec, with_images=False))
