"""Small exports in each source's real public schema, built in a test (nothing downloaded).

`make_<source>_export(dir) -> path` writes a few rows covering that source's quirks and returns what `--in` takes.
Column names and types follow the published files (dataset cards, the parquet schemas, and the official eval code).
Other tests (eval) reuse these builders.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from infimmr_cli.data.export_schemas import (MATHVERSE_SCHEMA, MATHVISION_SCHEMA, MATHVISTA_SCHEMA,
                                           OLYMPIAD_SCHEMA, VIRL_SCHEMA)


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def image_struct(color=(200, 30, 30), path: str | None = "img.png", fmt: str = "PNG") -> dict:
    return {"bytes": png_bytes(color, fmt=fmt), "path": path}


def _write(rows: list[dict], schema: pa.Schema, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def make_deepscaler_export(d: Path) -> Path:
    """deepscaler.json: a JSON list of {problem, answer, solution}; row 1 has an empty answer (skipped)."""
    rows = [
        {"problem": "What is $1+1$?", "answer": "2", "solution": "$1+1=\\boxed{2}$"},
        {"problem": "A row without an answer.", "answer": "", "solution": "lost"},
        {"problem": "Find $\\frac{1}{2}+\\frac{1}{4}$.", "answer": "\\frac{3}{4}", "solution": "..."},
        {"problem": "Which colour is the sky?", "answer": "blue", "solution": "..."},
    ]
    path = Path(d) / "deepscaler.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    return path


def make_math500_export(d: Path) -> Path:
    """HuggingFaceH4/MATH-500 test.jsonl."""
    rows = [
        {"problem": "Convert $(0,3)$ to polar coordinates.", "solution": "...",
         "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
         "unique_id": "test/precalculus/807.json"},
        {"problem": "What is $2+3$?", "solution": "5", "answer": "5", "subject": "Prealgebra", "level": 1,
         "unique_id": "test/prealgebra/1.json"},
    ]
    path = Path(d) / "test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_virl39k_export(d: Path, nested_images: bool = False) -> Path:
    """A ViRL39K release folder: 39Krelease.parquet + images/ (paths listed as `images/…`, relative to the folder).

    Rows: a nested \\boxed math gold; a letter gold with `Choices:` lines; a letter gold whose options are only in the
    image; a text gold; a two-image row; a row whose image file is missing (skipped). `nested_images` puts the files
    under images/images/ as unzipping images.zip inside images/ does.
    """
    d = Path(d)
    img_dir = d / "images" / "images" if nested_images else d / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for k, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9), (90, 90, 90), (180, 0, 180)]):
        Image.new("RGB", (20, 20), color).save(img_dir / f"Processed-{k}-0.jpg")
    rows = [
        {"question": "<image>\nFind $x$ if the area is 8.", "answer": "\\boxed{\\frac{\\sqrt{2}}{2}}",
         "PassRate_32BTrained": 0.5, "PassRate_7BBase": 0.25, "category": "(GradeSchool) Geometric",
         "source": "MMK12", "qid": "q-math", "image": ["images/Processed-0-0.jpg"]},
        {"question": "<image>What is the measure of angle B?\nChoices:\nA: 30°\nB: 45°\nC: 60°\nD: 90°",
         "answer": "\\boxed{C}", "PassRate_32BTrained": 1.0, "PassRate_7BBase": None,
         "category": "(GradeSchool) Geometric", "source": "R1-OneVision", "qid": "q-choice",
         "image": ["images/Processed-1-0.jpg"]},
        {"question": "<image>Which option in the figure is correct?", "answer": "\\boxed{(B)}",
         "PassRate_32BTrained": 0.75, "PassRate_7BBase": 0.5, "category": "Spatial Reasoning", "source": "M3CoT",
         "qid": "q-letter-only", "image": ["images/Processed-2-0.jpg"]},
        {"question": "<image> What is the main color of the car?", "answer": "\\boxed{red}",
         "PassRate_32BTrained": 0.9, "PassRate_7BBase": 0.8, "category": "Social Science", "source": "LLaVA-OV",
         "qid": "q-text", "image": ["images/Processed-3-0.jpg"]},
        {"question": "<image><image> How many triangles are there in both figures together?",
         "answer": "\\boxed{7}", "PassRate_32BTrained": 0.3, "PassRate_7BBase": 0.0,
         "category": "(GradeSchool) Non-Geo Math", "source": "MV-Math", "qid": "q-two",
         "image": ["images/Processed-4-0.jpg", "images/Processed-5-0.jpg"]},
        {"question": "<image>Lost image.", "answer": "\\boxed{1}", "PassRate_32BTrained": 0.1,
         "PassRate_7BBase": 0.1, "category": "Tables/Diagrams/Charts", "source": "x", "qid": "q-missing",
         "image": ["images/Processed-404-0.jpg"]},
    ]
    _write(rows, VIRL_SCHEMA, d / "39Krelease.parquet")
    return d


def make_mathverse_export(d: Path) -> Path:
    """AI4Math/MathVerse testmini.parquet: a Text Dominant multi-choice row, a `(C)` gold, a Vision Only row with an
    empty question, and a free-form row."""
    meta = {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}
    q1 = "As shown in the figure, AB is parallel to CD, angle 1 = 50°. Find angle 2.\nChoices:\nA:50°\nB:40°\nC:130°\nD:100°"
    rows = [
        {"sample_index": "1", "problem_index": "1", "problem_version": "Text Dominant", "question": q1,
         "image": image_struct((1, 2, 3), "images_version_1-4/image_1.png"), "answer": "A",
         "question_type": "multi-choice", "metadata": meta, "query_wo": "Please answer...\n" + q1,
         "query_cot": "Please first conduct reasoning...\n" + q1, "question_for_eval": q1},
        {"sample_index": "2", "problem_index": "1", "problem_version": "Text Lite",
         "question": "Find angle 2.\nChoices:\nA:50°\nB:40°\nC:130°\nD:100°",
         "image": image_struct((4, 5, 6), "images_version_1-4/image_1.png"), "answer": "(C)",
         "question_type": "multi-choice", "metadata": meta, "query_wo": "...", "query_cot": "...",
         "question_for_eval": "Find angle 2.\nChoices:\nA:50°\nB:40°\nC:130°\nD:100°"},
        {"sample_index": "5", "problem_index": "1", "problem_version": "Vision Only", "question": "",
         "image": image_struct((7, 8, 9), "images_version_6/image_1.png"), "answer": "B",
         "question_type": "multi-choice", "metadata": meta,
         "query_wo": "According to the question shown in the image, please directly answer the question.",
         "query_cot": "...", "question_for_eval": "AB ∥ CD, angle 1 = 50°. Find angle 2. Choices: A:50° B:40°"},
        {"sample_index": "6", "problem_index": "2", "problem_version": "Vision Intensive",
         "question": "Find the length of AC.", "image": image_struct((10, 11, 12), None, fmt="JPEG"),
         "answer": "2\\sqrt{3}", "question_type": "free-form", "metadata": {**meta, "subfield": "Length"},
         "query_wo": "...", "query_cot": "...", "question_for_eval": "Find the length of AC."},
    ]
    return _write(rows, MATHVERSE_SCHEMA, Path(d) / "testmini.parquet")


def make_mathvision_export(d: Path, split: str = "test") -> Path:
    """MathLLMs/MathVision `data/<split>-00000-of-00001.parquet`: a choice row (options A-E) and a free-form row."""
    rows = [
        {"id": "1", "question": "Which number is hidden behind the square?\n<image1>", "options": ["1", "2", "3", "4",
                                                                                                "5"],
         "image": "images/1.jpg", "decoded_image": image_struct((20, 20, 20), "1.jpg", fmt="JPEG"), "answer": "C",
         "solution": None, "level": 2, "subject": "arithmetic"},
        {"id": "7", "question": "<image1>\nHow many dots are there?", "options": [], "image": "images/7.jpg",
         "decoded_image": image_struct((30, 30, 30), "7.jpg"), "answer": "12", "solution": "Count them.",
         "level": 1, "subject": "counting"},
    ]
    return _write(rows, MATHVISION_SCHEMA, Path(d) / "data" / f"{split}-00000-of-00001.parquet")


def _vista_meta(category: str, task: str) -> dict:
    return {"category": category, "context": "scientific figure", "grade": "college", "img_height": 24,
            "img_width": 32, "language": "english", "skills": ["scientific reasoning"], "source": "SciBench",
            "split": "testmini", "task": task}


def make_mathvista_export(d: Path, bad_choice: bool = False) -> Path:
    """AI4Math/MathVista `data/testmini-*.parquet`: a multi_choice row whose gold is option TEXT, a float with precision
    2.0, an integer with a unit, a text answer. `bad_choice` makes the choice gold match no option."""
    rows = [
        {"pid": "3", "question": "Find the angle.", "image": "images/3.jpg", "decoded_image": image_struct((1, 1, 1)),
         "choices": ["145°", "155°", "165°", "175°"], "unit": None, "precision": None,
         "answer": "170°" if bad_choice else "155°", "question_type": "multi_choice", "answer_type": "text",
         "metadata": _vista_meta("math-targeted-vqa", "geometry problem solving"), "query": "Hint: ..."},
        {"pid": "1", "question": "By what distance d is the spring compressed?", "image": "images/1.jpg",
         "decoded_image": image_struct((2, 2, 2)), "choices": None, "unit": None, "precision": 2.0,
         "answer": "1.25", "question_type": "free_form", "answer_type": "float",
         "metadata": _vista_meta("math-targeted-vqa", "textbook question answering"), "query": "Hint: ..."},
        {"pid": "2", "question": "What is the total volume of the measuring cup?", "image": "images/2.jpg",
         "decoded_image": image_struct((3, 3, 3)), "choices": None, "unit": "g", "precision": None,
         "answer": "1000", "question_type": "free_form", "answer_type": "integer",
         "metadata": _vista_meta("general-vqa", "figure question answering"), "query": "Hint: ..."},
        {"pid": "9", "question": "Which label is on the red bar?", "image": "images/9.jpg",
         "decoded_image": image_struct((4, 4, 4)), "choices": None, "unit": None, "precision": None,
         "answer": "Peru", "question_type": "free_form", "answer_type": "text",
         "metadata": _vista_meta("general-vqa", "figure question answering"), "query": "Hint: ..."},
    ]
    return _write(rows, MATHVISTA_SCHEMA, Path(d) / "data" / "testmini-00000-of-00001.parquet")


def _olympiad_row(rid: int, question: str, final: str, multiple: bool, error: str | None, images: list,
                  unit: str | None = None, answer_type: str = "Numerical") -> dict:
    row = {"id": rid, "question": question, "solution": ["..."], "final_answer": [final], "context": None,
           "modality": "Multimodal", "difficulty": "Competition", "is_multiple_answer": multiple, "unit": unit,
           "answer_type": answer_type, "error": error, "question_type": "Open-ended", "subfield": "Geometry",
           "subject": "Math", "language": "English"}
    for k in range(1, 6):
        row[f"image_{k}"] = images[k - 1] if k <= len(images) else None
    return row


def make_olympiadbench_export(d: Path) -> Path:
    """Hothan/OlympiadBench `OE_MM_maths_en_COMP/train-*.parquet`: a single `$…$` gold with one image; a multiple
    answer gold with per-answer tolerances and two images (image_3.. null); an expression gold with no tolerance."""
    rows = [
        _olympiad_row(1606, "In the diagram <image_1>, find the area.", "$12$", False, "1e-2",
                      [image_struct((5, 5, 5))], unit="cm^2"),
        _olympiad_row(1700, "<image_1>\n<image_2>\nFind all values of $a$ and $b$.", "$3$, $\\frac{1}{2}$", True,
                      "0.1,0.01", [image_struct((6, 6, 6)), image_struct((7, 7, 7), fmt="JPEG", path=None)]),
        _olympiad_row(1801, "Find the expression <image_1>.", "$2 \\sqrt{3}$", False, None,
                      [image_struct((8, 8, 8))], answer_type="Expression"),
    ]
    return _write(rows, OLYMPIAD_SCHEMA, Path(d) / "OE_MM_maths_en_COMP" / "train-00000-of-00001.parquet")


MAKERS = {
    "deepscaler": make_deepscaler_export,
    "virl39k": make_virl39k_export,
    "math500": make_math500_export,
    "mathverse": make_mathverse_export,
    "mathvision": make_mathvision_export,
    "mathvista": make_mathvista_export,
    "olympiadbench": make_olympiadbench_export,
}
