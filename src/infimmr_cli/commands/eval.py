"""`infimmr eval`: generate on the paper's benchmarks, score with the training reward AND the benchmark's official
rule (evaluation/official.py), count k/N overall and per subset under each.

Per bench, under OUT/<bench>/:
- records.jsonl     the bench as records (prepared here from the export, unless --records gave them)
- predictions.jsonl one line per item, appended and flushed as produced (`.partial` until every item is in), so a
                    killed eval resumes where it stopped; `correct` is the reward rule's verdict, `official` the
                    official rule's (null: needs the benchmark's LLM judge)
- run.json          the predictions' provenance record (settings: model, sampling, system prompt, reward, engine); a
                    resume with other settings is refused rather than mixing two runs in one file
OUT/results.json holds every bench evaluated into OUT (merged across runs), with results.json.provenance.json.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Sequence

from rich.console import Console

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record, RecordError
from infimmr_cli.files import partial_path

DEFAULT_MAX_NEW_TOKENS = 2048
# Longest prompt (tokens after image expansion) sent to the model; a longer one is scored 0 and listed, never generated:
# a 1 MB question would otherwise ask the engine for a terabyte. 16384 holds the largest image Qwen2.5-VL accepts.
DEFAULT_MAX_PROMPT_LEN = 16384
HF_BATCH, VLLM_BATCH = 8, 256


# ---------------------------------------------------------------- records of a bench


def bench_records(bench, out_dir: Path, data_dir: Path | None, records_file: Path | None,
                  quiet: bool = True) -> tuple[list[Record], Path]:
    """The bench's records and the file they came from: --records as given, else prepared from the export under the
    data folder into OUT/<bench>/records.jsonl (reused while its provenance names this export, unchanged)."""
    from infimmr_cli.data.records import read_records

    if records_file is not None:
        path = Path(records_file)
    else:
        if data_dir is None:
            raise UsageError(f"--data-dir: needed to find the {bench.name} export (or set INFIMMR_DATA, or pass "
                             f"--records)")
        from infimmr_cli.provenance import is_current

        export = bench.find_export(data_dir)
        path = out_dir / bench.name / "records.jsonl"
        if not is_current(path, "prepare", {"source": bench.reader}, {"input": export}):
            from infimmr_cli.commands.prepare import run as prepare

            prepare(bench.reader, export, path, quiet=quiet)
    recs = read_records(path)
    wrong = [r for r in recs if r.source.split("/")[0] != bench.reader]
    if wrong:
        raise RecordError(f"{path}: source: record {wrong[0].id!r} is from {wrong[0].source!r}, not {bench.reader}; "
                          f"is this the right file for --bench {bench.name}?")
    return recs, path


# ---------------------------------------------------------------- predictions files


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """id -> prediction line, for a predictions JSONL (ours or another tool's: `id` and `completion` are required).

    A torn last line (a kill mid-write) is dropped; any other bad line names file:line: field.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--predictions: {path}: file not found")
    from infimmr_cli.data.completions import iter_completions

    out: dict[str, dict[str, Any]] = {}
    for where, line in iter_completions(path, tolerate_torn_tail=True):
        if line["id"] in out:
            raise RecordError(f"{where}: id: {line['id']!r} appears twice in this file")
        out[line["id"]] = line
    return out


def prediction_line(rec: Record, completion: str, score: dict[str, Any], finish_reason: str | None = None,
                    n_tokens: int | None = None, official: bool | None = None, error: str | None = None
                    ) -> dict[str, Any]:
    from infimmr_cli.evaluation.tally import is_correct
    from infimmr_cli.data.prompt import question_text

    line = {"id": rec.id, "prompt": question_text(rec), "completion": completion, "extracted": score.get("extracted"),
            "gold": rec.answer, "format": score.get("format"), "accuracy": score.get("accuracy"),
            "overall": score.get("overall"), "correct": is_correct(score), "official": official,
            "finish_reason": finish_reason, "completion_tokens": n_tokens}
    if error:  # the item was never generated (unreadable image, prompt too long): it counts, as wrong
        line["error"] = error
    return line


def official_verdicts(completions: list[str], records: list[Record], workers: int | None, timeout: float
                      ) -> list[bool | None]:
    """The benchmark's official verdict per item (True / False / None = needs an LLM judge), in the same killable
    worker pool as the reward: an item past `timeout` or whose worker fails counts as not right (False)."""
    from infimmr_cli.evaluation.official import official_score
    from infimmr_cli.rewards.scoring import score_batch

    outs = score_batch(completions, records, reward=official_score, workers=workers, timeout=timeout)
    return [o.get("official", False) for o in outs]


def skipped_line(rec: Record, error: str) -> dict[str, Any]:
    """The prediction of an item the model never saw: empty completion, every reward 0."""
    return prediction_line(rec, "", {"format": 0.0, "accuracy": 0.0, "overall": 0.0}, "skipped", 0, official=False,
                           error=error)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------- provenance


def check_origin(run_json: Path, origin: dict[str, Any],
                 keys=("model", "commit", "sampling", "system_prompt", "reward", "max_prompt_len")) -> None:
    """Refuse to append to predictions another model or other settings made: one predictions file, one run."""
    from infimmr_cli.provenance import read_provenance

    rec = read_provenance(run_json)
    if rec is None:
        return
    before = rec["settings"]
    for key in keys:
        if key in before and before[key] != origin[key]:
            raise UsageError(f"{run_json}: {key}: the predictions here were made with {before[key]!r}, this run uses "
                             f"{origin[key]!r}; use another --out or delete {run_json.parent}")


# ---------------------------------------------------------------- the command


def run(benches: Sequence[str], out: str | Path, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """`_run` holding OUT for the whole run (one eval per OUT at a time); no --records or --predictions file is one
    this run writes (rescoring OUT/<bench>/predictions.jsonl in place is allowed: it is read whole first)."""
    from infimmr_cli.files import claim_outputs, same_file

    out = Path(out)
    written = [out / "results.json", *(out / b / f for b in benches for f in ("predictions.jsonl", "run.json"))]
    preds = [p for b, p in zip(benches, kwargs.get("predictions") or [])
             if not same_file(p, out / b / "predictions.jsonl")]
    with claim_outputs("eval", {"--records": list(kwargs.get("records") or []), "--predictions": preds},
                       {"--out": written}, lock=[out]):
        return _run(benches, out, **kwargs)


def _run(benches: Sequence[str], out: str | Path, model: str | Path | None = None, data_dir: str | Path | None = None,
        records: Sequence[str | Path] | None = None, predictions: Sequence[str | Path] | None = None,
        engine: Any = "auto", batch_size: int | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0, limit: int | None = None,
        dtype: str = "auto", workers: int | None = None, reward: str = "default", score_timeout: float = 5.0,
        processor: Any = None, quiet: bool = False,
        max_prompt_len: int = DEFAULT_MAX_PROMPT_LEN, revision: str | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate `model` on each bench (or rescore `predictions`), write OUT/<bench>/… and OUT/results.json.

    records / predictions: one file per bench, in --bench order. `engine` is "auto"|"hf"|"vllm" or an object with
    `generate` (tests, or a caller holding an engine already; then `processor` sizes the images). Returns the
    results.json entries of these benches.
    """
    from infimmr_cli.evaluation.benches import get_bench
    from infimmr_cli.evaluation.report import merge_results, print_bench

    specs = [get_bench(b) for b in benches]
    if not specs:
        raise UsageError("--bench: give at least one benchmark")
    if len(set(benches)) != len(benches):
        raise UsageError("--bench: a benchmark is listed twice")
    records, predictions = list(records or []), list(predictions or [])
    for flag, files in (("--records", records), ("--predictions", predictions)):
        if files and len(files) != len(specs):
            raise UsageError(f"{flag}: {len(files)} files for {len(specs)} --bench values; give one per bench, "
                             f"in the same order")
    if not predictions and model is None:
        raise UsageError("--model: needed to generate (or pass --predictions to rescore without a model)")
    origin = {"revision": revision, "commit": None}
    if not predictions and isinstance(engine, str):
        from infimmr_cli.modeling import check_model_dir, model_dir_of, model_revision, resolve_model

        if Path(model).is_dir():  # a train-phase run folder means its final model, as train-phase --init takes it
            model = model_dir_of(model)
        # a hub id comes from the HF cache (fetched there when online); fail before preparing any bench
        model_dir = check_model_dir(resolve_model(model, revision))
        origin = model_revision(model_dir, revision)
    elif revision and not predictions:
        raise UsageError("--revision: applies to a --model hub id; a model given as an engine object has none")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit: {limit} must be at least 1")
    if max_prompt_len < 1:
        raise UsageError(f"--max-prompt-len: {max_prompt_len} must be at least 1")
    if data_dir is None and os.environ.get("INFIMMR_DATA"):
        data_dir = os.environ["INFIMMR_DATA"]
    if data_dir is None and not records:  # before OUT is made: a failed start leaves no empty folder behind
        raise UsageError(f"--data-dir: needed to find the {specs[0].name} export (or set INFIMMR_DATA, or pass "
                         f"--records)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir) if data_dir is not None else None
    console = Console(quiet=quiet)

    loaded = []
    for i, spec in enumerate(specs):
        recs, src = bench_records(spec, out, data_dir, Path(records[i]) if records else None, quiet=True)
        if not recs:  # an empty input is not an error: say so, and evaluate the other benches
            console.print(f"{spec.name}: 0 records in {src}; nothing to evaluate", highlight=False)
            continue
        loaded.append((spec, recs[:limit] if limit else recs, recs, src))
    rescoring = bool(predictions)
    if rescoring:
        kept = {s.name for s, *_ in loaded}
        predictions = [p for p, spec in zip(predictions, specs) if spec.name in kept]

    from infimmr_cli.evaluation.report import RESULTS, bench_line, read_results, same_entry

    before = read_results(out / RESULTS)["benchmarks"]  # what a rerun that has nothing to do would print again
    entries: dict[str, dict[str, Any]] = {}
    idle = set()  # benches this rerun had nothing to do for
    if rescoring:
        for (spec, recs, every, src), pfile in zip(loaded, predictions):
            console.print(f"eval: {spec.name} ({len(recs)} items) rescoring {pfile}", highlight=False, markup=False,
                          soft_wrap=True)
            entries[spec.name] = _rescore(spec, recs, every, src, Path(pfile), out, reward, workers, score_timeout,
                                          console)
            print_bench(console, entries[spec.name])
    else:
        gen = _Generator(model, engine, processor, batch_size, dtype,
                         _sampling(temperature, top_p, top_k, max_new_tokens, seed), origin)
        for spec, recs, every, src in loaded:
            entry, worked = _generate(spec, recs, len(every), src, out, gen, reward, workers, score_timeout,
                                      console, max_prompt_len)
            entries[spec.name] = entry
            if not worked and same_entry(before.get(spec.name), entry):  # a rerun: one line, not the table again
                console.print(bench_line(entry, f"nothing to do; results in {out / RESULTS}"), highlight=False,
                              markup=False, soft_wrap=True)
                idle.add(spec.name)
                continue
            if not worked:  # nothing generated, but other counts (e.g. a smaller --limit): say what they are of
                _header(console, spec.name, len(recs), len(recs), gen.description)
            print_bench(console, entry)
    results = merge_results(out, entries)
    _results_provenance(results, model, engine, origin)
    if not entries or idle != set(entries):  # each idle line names results.json already
        console.print(f"results: {results}", highlight=False, markup=False, soft_wrap=True)
    return entries


def describe_model(model: str | Path | None) -> str:
    """The model as a header names it: its path, and where it is a train-phase output which run and which model."""
    import re

    from infimmr_cli.provenance import read_provenance

    if model is None:
        return "no model"
    path = Path(str(model))
    step = re.fullmatch(r"step-0*(\d+)", path.name)
    run_dir = None
    if path.name == "final":
        run_dir, which = path.parent, "final model"
    elif step and path.parent.name == "checkpoints":
        run_dir, which = path.parent.parent, f"checkpoint at step {step.group(1)}"
    if run_dir is None or not (run_dir / "run_config.json").is_file():
        return str(model)
    rec = read_provenance(run_dir / "run_config.json") or {}
    phase = (rec.get("settings") or {}).get("phase")
    return f"{model} (train-phase run {run_dir}{f', phase {phase}' if phase else ''}, {which})"


def _header(console: Console, bench: str, n: int, done: int, model: str) -> None:
    console.print(f"eval: {bench} ({n} items, {done} already done) with {model}", highlight=False, markup=False,
                  soft_wrap=True)


def _results_provenance(results: Path, model, engine, origin: dict[str, Any] | None = None) -> None:
    """results.json holds benches of several runs: its record names every bench's predictions file."""
    from infimmr_cli.evaluation.report import read_results
    from infimmr_cli.provenance import write_provenance

    benches = sorted(read_results(results)["benchmarks"])
    preds = {b: results.parent / b / "predictions.jsonl" for b in benches}
    write_provenance(results, "eval", {"benches": benches, "model": None if model is None else str(model),
                                       "engine": engine if isinstance(engine, str) else type(engine).__name__,
                                       **(origin or {})},
                     {f"predictions[{b}]": p for b, p in preds.items() if p.is_file()})


def _sampling(temperature, top_p, top_k, max_new_tokens, seed):
    from infimmr_cli.rollout.base import SamplingSettings

    if max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens: {max_new_tokens} must be at least 1")
    return SamplingSettings(n=1, temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                            seed=seed)


class _Generator:
    """Opens the engine on first use only: an eval whose predictions are all in never loads the model."""

    def __init__(self, model, engine, processor, batch_size, dtype, sampling, hub=None):
        self.model, self.engine, self.processor = model, engine, processor
        self.hub = hub or {"revision": None, "commit": None}  # the model's revision and commit (a hub id)
        self.batch_size, self.dtype, self.sampling = batch_size, dtype, sampling
        self.engine_name = engine if isinstance(engine, str) else type(engine).__name__
        self.description = describe_model(model)

    @property
    def model_label(self) -> str:
        path = Path(str(self.model))
        return str(path.resolve()) if path.exists() else str(self.model)

    def open(self):
        if isinstance(self.engine, str):
            from infimmr_cli.rollout import open_engine

            self.engine, self.processor = open_engine(self.model, engine=self.engine, revision=self.hub["revision"],
                                                      batch_size=self.batch_size or HF_BATCH, dtype=self.dtype)
            self.engine_name = type(self.engine).__name__
        if self.batch_size is None:  # vLLM schedules its own batches: hand it many prompts at once
            self.batch_size = VLLM_BATCH if "vllm" in self.engine_name.lower() else HF_BATCH
        return self.engine

    def origin(self) -> dict[str, Any]:
        from infimmr_cli.data.prompt import SYSTEM_PROMPT

        return {"model": self.model_label, "sampling": asdict(self.sampling), "system_prompt": SYSTEM_PROMPT,
                "commit": self.hub["commit"]}


def _origin_fields(run_json: Path) -> dict[str, Any]:
    from infimmr_cli.provenance import read_provenance

    rec = read_provenance(run_json)
    return dict(rec["settings"]) if rec else {}


def _generate(spec, recs: list[Record], total: int, src: Path, out: Path, gen: _Generator, reward: str,
              workers: int | None, timeout: float, console: Console,
              max_prompt_len: int = DEFAULT_MAX_PROMPT_LEN) -> tuple[dict[str, Any], bool]:
    """(the bench's results.json entry, whether this run generated anything)."""
    from infimmr_cli.progress import StageProgress
    from infimmr_cli.evaluation.tally import is_correct
    from infimmr_cli.data.images import ImageError
    from infimmr_cli.data.records import ResumableWriter
    from infimmr_cli.provenance import write_provenance
    from infimmr_cli.rewards.scoring import score_batch
    from infimmr_cli.rollout.requests import build_request

    bench_dir = out / spec.name
    pred_path, run_json = bench_dir / "predictions.jsonl", bench_dir / "run.json"
    origin = {**gen.origin(), "reward": reward, "max_prompt_len": max_prompt_len}
    check_origin(run_json, origin)
    wanted = {r.id for r in recs}
    worked = False
    if pred_path.is_file():
        if partial_path(pred_path).exists():
            raise UsageError(f"{bench_dir}: holds both predictions.jsonl and its .partial; delete one")
        if not wanted <= set(read_predictions(pred_path)):
            os.replace(pred_path, partial_path(pred_path))  # more items asked for than done: resume appending
    if not pred_path.is_file():
        with ResumableWriter(pred_path) as writer:
            todo = [r for r in recs if r.id not in writer.done_ids]
            if todo:
                worked = True
                _header(console, spec.name, len(recs), len(recs) - len(todo), gen.description)
                engine = gen.open()
                write_provenance(pred_path, "eval", {**origin, "engine": gen.engine_name}, {"records": src},
                                 path=run_json)
                with StageProgress(console, spec.name, len(recs), completed=len(recs) - len(todo),
                                   verb="generated", transient=True) as progress:
                    right = 0
                    for chunk in _chunks(todo, gen.batch_size):
                        lines, ready, requests = {}, [], []
                        for r in chunk:  # a bad item costs that item: it is written as a 0-scored line
                            try:
                                requests.append(build_request(r, gen.processor, max_prompt_len))
                                ready.append(r)
                            except ImageError as exc:
                                lines[r.id] = skipped_line(r, str(exc))
                        outs = engine.generate(requests, gen.sampling) if requests else []
                        texts = [o[0].text for o in outs]
                        scores = (score_batch(texts, ready, reward=reward, workers=workers, timeout=timeout)
                                  if ready else [])
                        verdicts = official_verdicts(texts, ready, workers, timeout) if ready else []
                        for r, o, s, v in zip(ready, outs, scores, verdicts):
                            lines[r.id] = prediction_line(r, o[0].text, s, o[0].finish_reason, len(o[0].token_ids),
                                                          v)
                        writer.write([lines[r.id] for r in chunk])
                        right += sum(is_correct(s) for s in scores)
                        progress.advance(len(chunk), f"{right} right")
            writer.finish()
    return _report(spec, recs, total, pred_path, _origin_fields(run_json), workers, timeout), worked


def _rescore(spec, recs: list[Record], every: list[Record], src: Path, pfile: Path, out: Path, reward: str,
             workers: int | None, timeout: float, console: Console) -> dict[str, Any]:
    """Score predictions made elsewhere (or earlier) against the bench records, joined on id; no model."""
    from infimmr_cli.data.records import write_records
    from infimmr_cli.provenance import write_provenance
    from infimmr_cli.rewards.scoring import score_batch

    preds = read_predictions(pfile)
    known = {r.id for r in every}
    unknown = [pid for pid in preds if pid not in known]
    if unknown:
        raise RecordError(f"{pfile}: id: {unknown[0]!r} ({len(unknown)} in all) is not among the {len(every)} "
                          f"{spec.name} records of {src}")
    scored = [r for r in recs if r.id in preds]
    if not scored:
        raise UsageError(f"--predictions: {pfile}: no prediction for any {spec.name} record")
    origin = _origin_fields(pfile.with_name("run.json"))  # where those predictions came from, when known
    started = time.perf_counter()
    completions = [preds[r.id]["completion"] for r in scored]
    scores = score_batch(completions, scored, reward=reward, workers=workers, timeout=timeout)
    verdicts = official_verdicts(completions, scored, workers, timeout)
    seconds = time.perf_counter() - started
    lines = [prediction_line(r, preds[r.id]["completion"], s, preds[r.id].get("finish_reason"),
                             preds[r.id].get("completion_tokens"), v, preds[r.id].get("error"))
             for r, s, v in zip(scored, scores, verdicts)]
    bench_dir = out / spec.name
    write_records(bench_dir / "predictions.jsonl", lines)
    origin = {**origin, "reward": reward, "rescored_from": str(pfile.resolve())}
    write_provenance(bench_dir / "predictions.jsonl", "eval", origin, {"records": src, "predictions": pfile},
                     results={"scored": len(scored), "rescore_seconds": round(seconds, 3)},
                     path=bench_dir / "run.json")
    if len(scored) < len(recs):
        console.print(f"[yellow]{spec.name}: predictions cover {len(scored)} of {len(recs)} records; N = "
                      f"{len(scored)}[/]")
    return _report(spec, scored, len(every), bench_dir / "predictions.jsonl", origin, workers, timeout)


def _report(spec, recs: list[Record], total: int, pred_path: Path, origin: dict[str, Any], workers: int | None = None,
            timeout: float = 5.0) -> dict[str, Any]:
    """Count from the predictions file (what a reader can check), over this run's records. Lines written before the
    official column existed (no "official" key) get their verdicts computed here."""
    from infimmr_cli.evaluation.report import bench_entry
    from infimmr_cli.evaluation.tally import tally

    preds = read_predictions(pred_path)
    missing = [r.id for r in recs if r.id not in preds]
    if missing:
        raise RecordError(f"{pred_path}: id: no prediction for {missing[0]!r} ({len(missing)} missing)")
    lines = [preds[r.id] for r in recs]
    old = [i for i, line in enumerate(lines) if "official" not in line]
    official = [line.get("official") for line in lines]
    if old:
        done = official_verdicts([lines[i]["completion"] for i in old], [recs[i] for i in old], workers, timeout)
        for i, v in zip(old, done):
            official[i] = v
    counts = tally(recs, lines, spec.subsets, spec.order, official=official)
    rel = os.path.relpath(pred_path, pred_path.parent.parent)
    keep = {k: origin[k] for k in ("model", "commit", "engine", "sampling", "reward", "rescored_from", "max_prompt_len")
            if k in origin}
    from infimmr_cli.data.item_errors import warnings_path, write_warnings

    problems = [(r.id, str(preds[r.id]["error"])) for r in recs if preds[r.id].get("error")]
    write_warnings(pred_path, "eval", problems)
    if problems:  # counted in N as wrong answers; named so that a reader knows the model never saw them
        keep["not_generated"] = {"count": len(problems),
                                 "warnings": os.path.relpath(warnings_path(pred_path), pred_path.parent.parent)}
    return bench_entry(spec.name, recs[0].source if recs else spec.reader, counts, total, spec.items, rel, keep)
