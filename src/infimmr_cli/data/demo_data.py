"""Synthetic raw exports for the CPU demo: the same files a user downloads, in the same schemas, at toy size.

The demo runs `prepare` on these exactly as on the real DeepScaleR, ViRL39K and benchmark exports, so every stage after it
takes the real code path. Every item is the toy task of `demo_tasks`, a sum of two small numbers: written out for the
text phase and MATH-500, drawn as a two-bar chart for the image phases and the other benchmarks, so the warmed-up tiny
model has something to learn in each phase. One training item copies a MATH-500 question so that `decontam` has a real
leak to find; otherwise each benchmark asks in its own words (`demo_tasks.TEXT_WORDINGS`, `IMAGE_WORDINGS`), because the
exact rule (numbers removed) rightly flags any two questions that differ only in their numbers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from infimmr_cli.data.demo_tasks import (
    IMAGE_SIZE,
    IMAGE_WORDINGS,
    TEXT_WORDINGS,
    Sum,
    draw_sum,
)
from infimmr_cli.data.export_schemas import (
    MATHVERSE_SCHEMA,
    MATHVISION_SCHEMA,
    MATHVISTA_SCHEMA,
    OLYMPIAD_SCHEMA,
    VIRL_SCHEMA,
)

MATHVERSE_VERSIONS = ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only"]


def _text_question(rng: random.Random, wordings: list[str]) -> tuple[str, str]:
    item = draw_sum(rng)
    return rng.choice(wordings).format(item.expression), str(item.value)


def _options(item: Sum, n: int) -> tuple[list[str], int]:
    """n consecutive candidate values that include the sum, and the sum's index among them."""
    start = max(2, min(item.value - n // 2, 8 - n + 1))
    return [str(v) for v in range(start, start + n)], item.value - start


def _image_struct(png: bytes, name: str) -> dict:
    return {"bytes": png, "path": name}


def _write_parquet(rows: list[dict], schema: pa.Schema, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_deepscaler(path: Path, n: int, rng: random.Random, leak: str | None = None) -> Path:
    rows = []
    for _ in range(n):
        q, a = _text_question(rng, TEXT_WORDINGS["train"])
        rows.append({"problem": q, "answer": a, "solution": f"The result is $\\boxed{{{a}}}$."})
    if leak:
        rows.append({"problem": leak, "answer": "0", "solution": "copied from a benchmark"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    return path


def write_virl39k(folder: Path, n: int, rng: random.Random) -> Path:
    """Half free-form, half multiple choice over candidate values (ViRL39K has both)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        item = draw_sum(rng)
        name = f"images/Processed-demo-{i}-0.png"
        (folder / name).write_bytes(item.png())
        question = rng.choice(IMAGE_WORDINGS["train"])
        if i % 2 == 0:
            answer = str(item.value)
        else:
            options, k = _options(item, 3)
            question += "\nChoices:\n" + "\n".join(f"{'ABC'[j]}: {o}" for j, o in enumerate(options))
            answer = "ABC"[k]
        rows.append({"question": "<image>" + question, "answer": f"\\boxed{{{answer}}}", "PassRate_32BTrained": 0.5,
                     "PassRate_7BBase": 0.25, "category": "(GradeSchool) Non-Geo Math", "source": "demo",
                     "qid": f"demo-{i}", "image": [name]})
    _write_parquet(rows, VIRL_SCHEMA, folder / "39Krelease.parquet")
    return folder


def write_math500(path: Path, n: int, rng: random.Random) -> list[str]:
    rows = []
    for i in range(n):
        q, a = _text_question(rng, TEXT_WORDINGS["math500"])
        rows.append({"problem": q, "solution": a, "answer": a, "subject": rng.choice(["Prealgebra", "Algebra"]),
                     "level": 1 + i % 3, "unique_id": f"test/demo/{i}.json"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["problem"] for r in rows]


def write_mathverse(path: Path, n_problems: int, rng: random.Random) -> Path:
    meta = {"split": "testmini", "source": "demo", "subject": "Arithmetic", "subfield": "Bar charts"}
    rows = []
    for p in range(n_problems):
        item = draw_sum(rng)
        question = IMAGE_WORDINGS["mathverse"][0]
        if p % 2 == 0:
            answer, qtype = str(item.value), "free-form"
        else:
            options, k = _options(item, 4)
            question += "\nChoices:\n" + "\n".join(f"{'ABCD'[j]}:{o}" for j, o in enumerate(options))
            answer, qtype = "ABCD"[k], "multi-choice"
        for v, version in enumerate(MATHVERSE_VERSIONS):
            shown = "" if version == "Vision Only" else question
            rows.append({"sample_index": str(p * 5 + v + 1), "problem_index": str(p + 1), "problem_version": version,
                         "question": shown, "image": _image_struct(item.png(), f"images/{p}.png"), "answer": answer,
                         "question_type": qtype, "metadata": meta, "query_wo": question, "query_cot": question,
                         "question_for_eval": question})
    return _write_parquet(rows, MATHVERSE_SCHEMA, path)


def write_mathvision(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = draw_sum(rng)
        options, k = _options(item, 5) if i % 2 else ([], -1)
        rows.append({"id": str(i + 1), "question": "<image1>\n" + IMAGE_WORDINGS["mathvision"][0],
                     "options": options, "image": f"images/{i}.png",
                     "decoded_image": _image_struct(item.png(), f"{i}.png"),
                     "answer": "ABCDE"[k] if options else str(item.value),
                     "solution": None, "level": 1 + i % 2, "subject": rng.choice(["counting", "arithmetic"])})
    return _write_parquet(rows, MATHVISION_SCHEMA, path)


def write_mathvista(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = draw_sum(rng)
        meta = {"category": "math-targeted-vqa" if i % 2 else "general-vqa", "context": "bar chart",
                "grade": "elementary school", "img_height": IMAGE_SIZE, "img_width": IMAGE_SIZE,
                "language": "english", "skills": ["arithmetic reasoning"], "source": "demo", "split": "testmini",
                "task": "figure question answering"}
        question = IMAGE_WORDINGS["mathvista"][0]
        if i % 2:
            row = {"question": question, "choices": _options(item, 3)[0], "answer": str(item.value),
                   "question_type": "multi_choice", "answer_type": "text", "precision": None}
        else:
            row = {"question": question, "choices": None, "answer": str(item.value),
                   "question_type": "free_form", "answer_type": "integer", "precision": None}
        rows.append({"pid": str(i + 1), "image": f"images/{i}.png",
                     "decoded_image": _image_struct(item.png(), f"{i}.png"), "unit": None,
                     "metadata": meta, "query": row["question"], **row})
    return _write_parquet(rows, MATHVISTA_SCHEMA, path)


def write_olympiadbench(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = draw_sum(rng)
        row = {"id": 100 + i, "question": "<image_1>\n" + IMAGE_WORDINGS["olympiadbench"][0], "solution": ["add"],
               "final_answer": [f"${item.value}$"], "context": None, "modality": "Multimodal",
               "difficulty": "Competition", "is_multiple_answer": False, "unit": None, "answer_type": "Numerical",
               "error": None, "question_type": "Open-ended", "subfield": "Combinatorics", "subject": "Math",
               "language": "English"}
        for k in range(1, 6):
            row[f"image_{k}"] = _image_struct(item.png(), None) if k == 1 else None
        rows.append(row)
    return _write_parquet(rows, OLYMPIAD_SCHEMA, path)


def write_demo_exports(out: str | Path, n_text: int = 24, n_image: int = 24, n_bench: int = 6,
                       seed: int = 0) -> dict[str, Path]:
    """Write every raw export the CPU curriculum needs under `out`; return where each one is."""
    out = Path(out)
    rng = random.Random(seed)
    bench = out / "bench"
    math500_questions = write_math500(bench / "math500" / "test.jsonl", n_bench, rng)
    paths = {
        "deepscaler": write_deepscaler(out / "deepscaler" / "deepscaler.json", n_text, rng,
                                       leak=math500_questions[0]),
        "virl39k": write_virl39k(out / "virl39k", n_image, rng),
        "math500": bench / "math500" / "test.jsonl",
        "mathverse": write_mathverse(bench / "mathverse" / "testmini.parquet", max(2, n_bench // 3), rng),
        "mathvision": write_mathvision(bench / "mathvision" / "data" / "test-00000-of-00001.parquet", n_bench, rng),
        "mathvista": write_mathvista(bench / "mathvista" / "data" / "testmini-00000-of-00001.parquet", n_bench, rng),
        "olympiadbench": write_olympiadbench(
            bench / "olympiadbench" / "OE_MM_maths_en_COMP" / "train-00000-of-00001.parquet", n_bench, rng),
        "bench": bench,
    }
    return paths
