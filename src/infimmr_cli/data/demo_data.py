"""Synthetic raw exports for the CPU demo: the same files a user downloads, in the same schemas, at toy size.

The demo runs `prepare` on these exactly as on the real DeepScaleR, ViRL39K and benchmark exports, so every stage after it
takes the real code path. Items have known answers: arithmetic for the text phase; counting and colour questions over
drawn shapes for the image phases and the benchmarks. One training item copies a MATH-500 question so that `decontam`
has a real leak to find; otherwise benchmark wording differs from training wording, because the
exact rule (numbers removed) rightly flags any two questions that differ only in their numbers.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from infimmr_cli.data.export_schemas import (MATHVERSE_SCHEMA, MATHVISION_SCHEMA, MATHVISTA_SCHEMA, OLYMPIAD_SCHEMA,
                                        VIRL_SCHEMA)

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220)}
COLOUR_NAMES = list(COLOURS)
MATHVERSE_VERSIONS = ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only"]


@dataclass(frozen=True)
class ShapeItem:
    """One drawn picture and the facts a question can ask about it."""

    count: int
    colour: str

    def png(self, size: int = 112, seed: int = 0) -> bytes:
        rng = random.Random(seed)
        im = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(im)
        side = size // 6
        cells = [(x, y) for x in range(0, size - side, side + 4) for y in range(0, size - side, side + 4)]
        for x, y in rng.sample(cells, self.count):
            draw.rectangle([x, y, x + side, y + side], fill=COLOURS[self.colour])
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()


def _shape(rng: random.Random) -> ShapeItem:
    return ShapeItem(count=rng.randint(1, 6), colour=rng.choice(COLOUR_NAMES))


def _colour_question(item: ShapeItem, sep: str = ": ", stem: str = "What colour are the squares?") -> tuple[str, str]:
    """A choice question listed in the question text, and its gold letter."""
    options = "\n".join(f"{'ABC'[i]}{sep}{c}" for i, c in enumerate(COLOUR_NAMES))
    return f"{stem}\nChoices:\n{options}", "ABC"[COLOUR_NAMES.index(item.colour)]


def _arithmetic(rng: random.Random, stem: str = "What is ${}$?") -> tuple[str, str]:
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    op = rng.choice(["+", "-", "times"])
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return stem.format(f"{a} {op if op != 'times' else chr(92) + 'times'} {b}"), str(value)


def _image_struct(png: bytes, name: str) -> dict:
    return {"bytes": png, "path": name}


def _write_parquet(rows: list[dict], schema: pa.Schema, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_deepscaler(path: Path, n: int, rng: random.Random, leak: str | None = None) -> Path:
    rows = []
    for _ in range(n):
        q, a = _arithmetic(rng)
        rows.append({"problem": q, "answer": a, "solution": f"The result is $\\boxed{{{a}}}$."})
    if leak:
        rows.append({"problem": leak, "answer": "0", "solution": "copied from a benchmark"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    return path


def write_virl39k(folder: Path, n: int, rng: random.Random) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        item = _shape(rng)
        name = f"images/Processed-demo-{i}-0.png"
        (folder / name).write_bytes(item.png(seed=i))
        if i % 2 == 0:
            question, answer = "<image>How many squares are in the image?", str(item.count)
        else:
            question, answer = _colour_question(item)
            question = "<image>" + question
        rows.append({"question": question, "answer": f"\\boxed{{{answer}}}", "PassRate_32BTrained": 0.5,
                     "PassRate_7BBase": 0.25, "category": "(GradeSchool) Non-Geo Math", "source": "demo",
                     "qid": f"demo-{i}", "image": [name]})
    _write_parquet(rows, VIRL_SCHEMA, folder / "39Krelease.parquet")
    return folder


def write_math500(path: Path, n: int, rng: random.Random) -> list[str]:
    rows = []
    for i in range(n):
        q, a = _arithmetic(rng, stem="Evaluate ${}$.")
        rows.append({"problem": q, "solution": a, "answer": a, "subject": rng.choice(["Prealgebra", "Algebra"]),
                     "level": 1 + i % 3, "unique_id": f"test/demo/{i}.json"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["problem"] for r in rows]


def write_mathverse(path: Path, n_problems: int, rng: random.Random) -> Path:
    meta = {"split": "testmini", "source": "demo", "subject": "Counting", "subfield": "Squares"}
    rows = []
    for p in range(n_problems):
        item = _shape(rng)
        png = item.png(seed=1000 + p)
        for v, version in enumerate(MATHVERSE_VERSIONS):
            if p % 2 == 0:
                question, answer, qtype = "Count the squares shown in the figure.", str(item.count), "free-form"
            else:
                question, answer, qtype = (*_colour_question(item, ":", "Which colour fills the squares?"),
                                           "multi-choice")
            shown = "" if version == "Vision Only" else question
            rows.append({"sample_index": str(p * 5 + v + 1), "problem_index": str(p + 1), "problem_version": version,
                         "question": shown, "image": _image_struct(png, f"images/{p}.png"), "answer": answer,
                         "question_type": qtype, "metadata": meta, "query_wo": question, "query_cot": question,
                         "question_for_eval": question})
    return _write_parquet(rows, MATHVERSE_SCHEMA, path)


def write_mathvision(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = _shape(rng)
        choice = i % 2 == 1
        rows.append({"id": str(i + 1), "question": "<image1>\nHow many squares are there?",
                     "options": [str(k) for k in range(1, 6)] if choice and item.count <= 5 else [],
                     "image": f"images/{i}.png", "decoded_image": _image_struct(item.png(seed=2000 + i), f"{i}.png"),
                     "answer": "ABCDE"[item.count - 1] if choice and item.count <= 5 else str(item.count),
                     "solution": None, "level": 1 + i % 2, "subject": rng.choice(["counting", "arithmetic"])})
    return _write_parquet(rows, MATHVISION_SCHEMA, path)


def write_mathvista(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = _shape(rng)
        meta = {"category": "math-targeted-vqa" if i % 2 else "general-vqa", "context": "synthetic scene",
                "grade": "elementary school", "img_height": 112, "img_width": 112, "language": "english",
                "skills": ["arithmetic reasoning"], "source": "demo", "split": "testmini",
                "task": "figure question answering"}
        if i % 2:
            row = {"question": "Which colour are the shapes?", "choices": COLOUR_NAMES, "answer": item.colour,
                   "question_type": "multi_choice", "answer_type": "text", "precision": None}
        else:
            row = {"question": "How many filled squares can be seen?", "choices": None, "answer": str(item.count),
                   "question_type": "free_form", "answer_type": "integer", "precision": None}
        rows.append({"pid": str(i + 1), "image": f"images/{i}.png",
                     "decoded_image": _image_struct(item.png(seed=3000 + i), f"{i}.png"), "unit": None,
                     "metadata": meta, "query": row["question"], **row})
    return _write_parquet(rows, MATHVISTA_SCHEMA, path)


def write_olympiadbench(path: Path, n: int, rng: random.Random) -> Path:
    rows = []
    for i in range(n):
        item = _shape(rng)
        row = {"id": 100 + i, "question": "<image_1>\nDetermine the number of squares in the diagram.", "solution": ["count"],
               "final_answer": [f"${item.count}$"], "context": None, "modality": "Multimodal",
               "difficulty": "Competition", "is_multiple_answer": False, "unit": None, "answer_type": "Numerical",
               "error": None, "question_type": "Open-ended", "subfield": "Combinatorics", "subject": "Math",
               "language": "English"}
        for k in range(1, 6):
            row[f"image_{k}"] = _image_struct(item.png(seed=4000 + i), None) if k == 1 else None
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
