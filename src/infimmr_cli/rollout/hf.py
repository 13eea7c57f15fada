"""Rollouts with transformers `generate`: the CPU engine and the GPU fallback where vLLM is absent."""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from infimmr_cli.rollout.base import Completion, Request, SamplingSettings


class HFEngine:
    """Generates with `model` itself. Built on the policy being trained (`shares_policy`), it sees new weights at once
    and needs no push (`load_weights` is a no-op)."""

    def __init__(self, model, processor, batch_size: int = 8, generate_kwargs: dict | None = None,
                 shares_policy: bool = False):
        self.model = model
        self.needs_weight_push = not shares_policy
        # e.g. {"synced_gpus": True} under ZeRO-3, where every rank must run the same number of forward passes
        self.generate_kwargs = dict(generate_kwargs or {})
        self.processor = processor
        self.batch_size = batch_size
        tok = processor.tokenizer
        self.stop_ids = {i for i in (tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id, tok.pad_token_id)
                         if i is not None and i >= 0}

    def render(self, request: Request) -> str:
        return self.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)

    def _batch_inputs(self, requests: Sequence[Request]):
        texts = [self.render(r) for r in requests]
        images = [im for r in requests for im in r.images]
        kwargs = dict(text=texts, return_tensors="pt", padding=True, padding_side="left")
        if images:
            kwargs["images"] = images
        return self.processor(**kwargs)

    def _completion(self, ids: list[int]) -> Completion:
        out, finish = [], "length"
        for t in ids:
            if t in self.stop_ids:
                finish = "stop"
                break
            out.append(t)
        text = self.processor.tokenizer.decode(out, skip_special_tokens=True)
        return Completion(text=text, token_ids=out, finish_reason=finish)

    @torch.no_grad()
    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[Completion]]:
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        results: list[list[Completion]] = []
        try:
            for start in range(0, len(requests), self.batch_size):
                chunk = requests[start:start + self.batch_size]
                inputs = self._batch_inputs(chunk).to(device)
                gen_kwargs = dict(max_new_tokens=sampling.max_new_tokens, num_return_sequences=sampling.n,
                                  pad_token_id=self.processor.tokenizer.pad_token_id,
                                  eos_token_id=sorted(self.stop_ids), repetition_penalty=sampling.repetition_penalty,
                                  **self.generate_kwargs)
                if sampling.greedy:
                    gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                else:
                    gen_kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                                      top_k=sampling.top_k or None)
                out = self.model.generate(**inputs, **gen_kwargs)
                new = out[:, inputs["input_ids"].shape[1]:].tolist()
                for i in range(len(chunk)):
                    results.append([self._completion(new[i * sampling.n + j]) for j in range(sampling.n)])
        finally:
            self.model.train(was_training)
        return results

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        if self.needs_weight_push:  # our own copy: take the policy's weights (plain HF names)
            self.model.load_state_dict(dict(named_tensors), strict=False)

    def sleep(self) -> None:
        return None

    def wake_up(self) -> None:
        return None
