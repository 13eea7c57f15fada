"""Raw public exports -> records (DESIGN §2, §6): one reader per source, one registry.

A reader is `read_<source>(path, ctx) -> Iterator[Record]`. It reads the export in its real public schema, yields
records whose image paths are relative to `ctx.out_dir` (the output file's folder, `root=ctx.out_dir`), counts the rows
it skips in `ctx.skipped`, and raises RecordError naming `file:row N: field: problem` on a row it cannot read.

Images: parquet exports carry HF image structs `{bytes, path}`; they are written to `<out_dir>/images/<source>/<id>.<ext>`.
ViRL39K ships image files; they are referenced in place when the output folder contains them, else hard-linked (or, across
file systems, copied) to `<out_dir>/images/virl39k/`, so records never point outside their folder. An image path that
resolves (links followed) outside the export's folder is an error; two rows never write or link the same image file.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from infimmr_cli.data import gold
from infimmr_cli.data.records import Record, RecordError
from infimmr_cli.files import FileSafetyError, inside

VISION_ONLY_QUESTION = "Solve the problem shown in the image."


@dataclass
class PrepareContext:
    """What a reader needs besides its input: where images go, and counters for the summary."""

    out_dir: Path
    skipped: Counter = field(default_factory=Counter)
    images_written: int = 0
    images_linked: int = 0
    rows_seen: int = 0
    on_total: Callable[[int], None] = lambda n: None
    on_row: Callable[[], None] = lambda: None
    _owners: dict[str, tuple[Path | None, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir).resolve()

    def save_image(self, struct: Any, source: str, name: str, where: str) -> str:
        """Write an HF image struct `{bytes, path}` beside the output; returns its path relative to `out_dir`."""
        if not isinstance(struct, dict) or not struct.get("bytes"):
            raise RecordError(f"{where}: expected an image struct with bytes, got {type(struct).__name__}")
        data = struct["bytes"]
        ext = _image_ext(data, struct.get("path"))
        rel = Path("images") / source / f"{_safe(name)}{ext}"
        self._claim(rel, None, where)
        dest = self.out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._inside(rel, where)  # an `images/` link planted in the output folder must not send the write elsewhere
        if not (dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data):
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.unlink(missing_ok=True)  # never write through a link left under this name
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        self.images_written += 1
        return rel.as_posix()

    def place_file(self, src: Path, source: str, rel_name: str, where: str = "") -> str:
        """An image file that already exists (the reader checked it lies in the export's folder): reference it in place
        if it lies under `out_dir`, else hard-link it there (a copy across file systems: a symlink would point outside
        the dataset, which every later stage refuses)."""
        src = src.resolve()
        try:
            return src.relative_to(self.out_dir).as_posix()
        except ValueError:
            pass
        rel = Path("images") / source / rel_name
        self._claim(rel, src, f"{where}: image")
        dest = self.out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._inside(rel, f"{where}: image")
        if not (dest.is_file() and os.path.samefile(dest, src)):
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)  # no copy, survives the source folder moving
            except OSError:
                shutil.copyfile(src, tmp)  # another file system
            os.replace(tmp, dest)  # a file left by an earlier export under this name is replaced, never reused
        self.images_linked += 1
        return rel.as_posix()

    def _claim(self, rel: Path, src: Path | None, where: str) -> None:
        """Two rows never share an image file name unless it is the same source file: a duplicate id must not
        overwrite the image of the record before it. `where` names the row and the field."""
        prev = self._owners.setdefault(rel.as_posix(), (src, where))
        if prev != (src, where) and (src is None or prev[0] != src):
            raise RecordError(f"{where}: {rel.as_posix()} is already the image of {prev[1]}; a duplicate id (or "
                              f"image name) in the export, refusing to overwrite it")

    def _inside(self, rel: Path, where: str) -> None:
        try:
            inside(self.out_dir, rel, where, "written to")
        except FileSafetyError as exc:
            raise RecordError(str(exc)) from None


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", str(name))


def _image_ext(data: bytes, path: str | None) -> str:
    suffix = Path(path).suffix.lower() if path else ""
    if suffix in {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}:
        return suffix
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "png").lower()
    except OSError:
        return ".png"
    return {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, f".{fmt}")


# ---------------------------------------------------------------- input files


def _parquet_files(path: Path, prefer: str | None = None) -> list[Path]:
    """The parquet file given, or those in a folder (recursively); `prefer` narrows by a name part (e.g. testmini)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts))
    if prefer:
        narrowed = [p for p in files if prefer in p.name]
        files = narrowed or files
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet file in this folder")
    return files


def _parquet_rows(files: list[Path], ctx: PrepareContext, columns: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """(where, row) for every row, rows as plain dicts (images stay {bytes, path}); checks the columns first."""
    import pyarrow.parquet as pq

    pfs = [pq.ParquetFile(f) for f in files]
    ctx.on_total(sum(pf.metadata.num_rows for pf in pfs))
    for f, pf in zip(files, pfs):
        names = set(pf.schema_arrow.names)
        missing = [c for c in columns if c not in names]
        if missing:
            raise RecordError(f"{f}: {', '.join(missing)}: column missing (found: {', '.join(sorted(names))})")
        i = 0
        for batch in pf.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                ctx.rows_seen += 1
                ctx.on_row()
                yield f"{f}:row {i}", row
                i += 1


def _field(row: dict, key: str, where: str, kind: type | tuple = str) -> Any:
    val = row.get(key)
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RecordError(f"{where}: {key}: expected {names}, got {type(val).__name__} {val!r:.60}")
    return val


def _num(val: Any) -> float | None:
    """A float column value; NaN (pandas' null) becomes None."""
    if val is None:
        return None
    val = float(val)
    return None if math.isnan(val) else val


def _unbox(text: str, where: str, key: str = "answer") -> str:
    try:
        return gold.unwrap_boxed(text)
    except ValueError as exc:
        raise RecordError(f"{where}: {key}: {exc}") from None


# ---------------------------------------------------------------- readers


def read_deepscaler(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """agentica-org/DeepScaleR-Preview-Dataset `deepscaler.json`: one JSON list of {problem, answer, solution}.

    id `deepscaler-<index in the list>` (skipped rows keep their index, so ids are stable); rows with an empty answer
    are skipped and counted. meta: solution.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "deepscaler.json"
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}:{exc.lineno}: <file>: not valid JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise RecordError(f"{path}: <file>: expected one JSON list of objects, got {type(items).__name__}")
    ctx.on_total(len(items))
    for i, row in enumerate(items):
        ctx.rows_seen += 1
        ctx.on_row()
        where = f"{path}:item {i}"
        if not isinstance(row, dict):
            raise RecordError(f"{where}: <item>: expected an object, got {type(row).__name__}")
        problem = _field(row, "problem", where)
        answer = row.get("answer")
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            ctx.skipped["empty answer"] += 1
            continue
        answer = _unbox(_field(row, "answer", where), where)
        yield Record(id=f"deepscaler-{i}", source="deepscaler", question=problem.strip(), answer=answer,
                     answer_type=gold.gold_answer_type(answer), meta={"solution": row.get("solution")},
                     root=ctx.out_dir)


def read_math500(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """HuggingFaceH4/MATH-500 `test.jsonl`: problem, solution, answer, subject, level, unique_id. id = unique_id.

    meta: subject, level, solution.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    ctx.on_total(len(lines))
    for lineno, line in enumerate(lines, start=1):
        ctx.rows_seen += 1
        ctx.on_row()
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{where}: <line>: not valid JSON ({exc.msg} at column {exc.colno})") from None
        uid = _field(row, "unique_id", where)
        answer = _field(row, "answer", where).strip()
        if not answer:
            ctx.skipped["empty answer"] += 1
            continue
        yield Record(id=uid, source="math500", question=_field(row, "problem", where).strip(), answer=answer,
                     answer_type=gold.gold_answer_type(answer),
                     meta={"subject": row.get("subject"), "level": row.get("level"), "solution": row.get("solution")},
                     root=ctx.out_dir)


def _virl_image(root: Path, rel: str, where: str = "") -> Path | None:
    """ViRL39K lists `images/Processed-….jpg` relative to the release folder; unzipping images.zip inside `images/`
    nests them one level deeper (`images/images/…`), so look there too. A path that resolves (links followed) outside
    the release folder is an error, never a file to link into the dataset."""
    for sub in (rel, Path("images") / rel):
        try:
            cand = inside(root, sub, where, "image")
        except FileSafetyError as exc:
            raise RecordError(str(exc)) from None
        if cand.is_file():
            return cand
    return None


def read_virl39k(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """TIGER-Lab/ViRL39K: a folder with `39Krelease.parquet` and `images/`.

    Columns: qid, question, answer (`\\boxed{…}`), image (list of `images/…` paths), category, source,
    PassRate_32BTrained, PassRate_7BBase. id = qid. A single letter gold with options listed in the question is
    `choice`; a letter A-K with no options in the text (they are in the image) is `choice` over bare letters
    (meta.choices_in_image); otherwise math-verify decides math or string. Rows whose image file is absent are skipped.
    meta: category, source, PassRate_32BTrained, PassRate_7BBase (when present), choices_in_image (when true).
    """
    path = Path(path)
    root = path if path.is_dir() else path.parent
    files = [root / "39Krelease.parquet"] if path.is_dir() else [path]
    cols = ("qid", "question", "answer", "image")
    for where, row in _parquet_rows(files, ctx, cols):
        qid = str(row.get("qid") or "")
        if not qid:
            raise RecordError(f"{where}: qid: missing")
        raw_q = _field(row, "question", where)
        answer = _unbox(_field(row, "answer", where), where)
        if not answer:
            ctx.skipped["empty answer"] += 1
            continue
        rels = row.get("image") or []
        if isinstance(rels, str):
            rels = [rels]
        images = []
        for rel in rels:
            src = _virl_image(root, str(rel), where)
            if src is None:
                images = None
                break
            images.append(ctx.place_file(src, "virl39k", Path(str(rel)).name, where))
        if images is None:
            ctx.skipped["image file missing"] += 1
            continue
        question = gold.strip_image_placeholders(raw_q)
        meta: dict[str, Any] = {"category": row.get("category"), "source": row.get("source")}
        for key in ("PassRate_32BTrained", "PassRate_7BBase"):
            if key in row:
                meta[key] = _num(row[key])
        choices = None
        # A lone capital A-K (also `(C)`) is an option letter, as ViRL39K's own verifier treats it.
        letter = gold.normalise_letter(answer) if re.fullmatch(r"\(?[A-K]\)?[.:]?", answer) else None
        if letter is not None:
            choices = gold.parse_choices(question)
            if not choices or letter not in gold.LETTERS[: len(choices)]:
                choices = gold.letter_choices(letter)
                meta["choices_in_image"] = True
            answer, atype = letter, "choice"
        else:
            atype = gold.gold_answer_type(answer)
        yield Record(id=qid, source="virl39k", question=question, answer=answer, answer_type=atype, choices=choices,
                     images=images, meta=meta, root=ctx.out_dir)


def read_mathverse(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """AI4Math/MathVerse `testmini.parquet` (3,940 rows = 788 problems x 5 versions).

    Columns: sample_index, problem_index, problem_version, question, image {bytes, path}, answer, question_type
    (`multi-choice` | `free-form`), metadata {split, source, subject, subfield}, query_wo, query_cot, question_for_eval.
    Multi-choice gold is a letter (a few written `(C)`: normalised); options come from the question text
    (`Choices:\\nA:…`), or, for Vision Only rows that print them in the image, bare letters (meta.choices_in_image).
    A Vision Only row with an empty `question` gets VISION_ONLY_QUESTION (the model sees the problem in the image;
    question_for_eval is for judges and stays in meta). id = sample_index.
    meta: problem_index, problem_version, question_type, question_for_eval, metadata fields, choices_in_image.
    """
    cols = ("sample_index", "problem_version", "question", "image", "answer", "question_type")
    for where, row in _parquet_rows(_parquet_files(path, prefer="testmini"), ctx, cols):
        sid = str(row["sample_index"])
        raw_q = _field(row, "question", where)
        question = gold.strip_image_placeholders(raw_q) or VISION_ONLY_QUESTION
        answer = str(_field(row, "answer", where)).strip()
        qtype = _field(row, "question_type", where)
        meta: dict[str, Any] = {"problem_index": str(row.get("problem_index")),
                                "problem_version": row["problem_version"], "question_type": qtype,
                                "question_for_eval": row.get("question_for_eval")}
        meta.update({k: v for k, v in (row.get("metadata") or {}).items() if k not in meta})
        choices = None
        if qtype == "multi-choice":
            letter = gold.normalise_letter(answer)
            if letter is None:
                raise RecordError(f"{where}: answer: multi-choice gold {answer!r} is not an option letter")
            choices = gold.parse_choices(raw_q)
            if not choices or letter not in gold.LETTERS[: len(choices)]:
                choices = gold.letter_choices(letter)
                meta["choices_in_image"] = True
            answer, atype = letter, "choice"
        elif qtype == "free-form":
            atype = gold.gold_answer_type(answer)
        else:
            raise RecordError(f"{where}: question_type: {qtype!r} is not multi-choice or free-form")
        image = ctx.save_image(row["image"], "mathverse", sid, f"{where}: image")
        yield Record(id=sid, source="mathverse/testmini", question=question, answer=answer, answer_type=atype,
                     choices=choices, images=[image], meta=meta, root=ctx.out_dir)


def read_mathvision(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """MathLLMs/MathVision parquet, split `test` (3,040) or `testmini` (304), read from the file name.

    Columns: id, question (with `<image1>` placeholders), options (list, empty for free-form), image (path string),
    decoded_image {bytes, path}, answer, solution, level, subject. `choice` when options is non-empty (gold a letter
    A-E; the options are appended to the question as `Choices:\\n(A) …`). id = id.
    meta: subject, level, split, solution.
    """
    files = _parquet_files(path)
    splits = {"testmini" if "testmini" in f.name else "test" for f in files}
    if len(splits) > 1:
        raise RecordError(f"{path}: holds both test and testmini parquet files; pass one file with --in")
    split = splits.pop()
    cols = ("id", "question", "options", "decoded_image", "answer", "level", "subject")
    for where, row in _parquet_rows(files, ctx, cols):
        rid = str(row["id"])
        question = gold.strip_image_placeholders(_field(row, "question", where))
        answer = str(_field(row, "answer", where)).strip()
        options = [str(o) for o in (row.get("options") or [])]
        choices = None
        if options:
            letter = gold.normalise_letter(answer)
            if letter is None or letter not in gold.LETTERS[: len(options)]:
                raise RecordError(f"{where}: answer: {answer!r} is not a letter among the {len(options)} options")
            question, choices, answer, atype = gold.with_choices(question, options), options, letter, "choice"
        else:
            atype = gold.gold_answer_type(answer)
        image = ctx.save_image(row["decoded_image"], "mathvision", rid, f"{where}: decoded_image")
        meta = {"subject": row.get("subject"), "level": row.get("level"), "split": split,
                "solution": row.get("solution")}
        yield Record(id=rid, source=f"mathvision/{split}", question=question, answer=answer, answer_type=atype,
                     choices=choices, images=[image], meta=meta, root=ctx.out_dir)


def _option_letter(gold_text: str, choices: list[str]) -> str | None:
    """The letter of the option whose text is the gold: exact, then trimmed, then case-folded."""
    for norm in (lambda s: s, str.strip, lambda s: " ".join(s.split()).casefold()):
        hits = [i for i, c in enumerate(choices) if norm(c) == norm(gold_text)]
        if len(hits) == 1:
            return gold.LETTERS[hits[0]]
    return None


def read_mathvista(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """AI4Math/MathVista testmini parquet (1,000 rows).

    Columns: pid, question, image (path), decoded_image {bytes, path}, choices (list or null), unit, precision (float or
    null), answer, question_type (`multi_choice` | `free_form`), answer_type (`integer` | `float` | `text` | `list`),
    metadata {category, context, grade, img_height, img_width, language, skills, source, split, task}, query.
    A multi_choice gold is the option TEXT: it becomes its letter (an error when no option matches), and the options
    are appended to the question. Free-form integer/float golds are `math`; text and list follow math-verify.
    id = pid. meta: precision (int or None), unit, answer_type, question_type, metadata fields.
    """
    cols = ("pid", "question", "decoded_image", "choices", "answer", "question_type", "answer_type")
    for where, row in _parquet_rows(_parquet_files(path, prefer="testmini"), ctx, cols):
        pid = str(row["pid"])
        question = _field(row, "question", where).strip()
        answer = str(_field(row, "answer", where)).strip()
        qtype, src_atype = row["question_type"], row["answer_type"]
        precision = _num(row.get("precision"))
        meta: dict[str, Any] = {"precision": None if precision is None else int(precision), "unit": row.get("unit"),
                                "answer_type": src_atype, "question_type": qtype}
        meta.update({k: v for k, v in (row.get("metadata") or {}).items() if k not in meta})
        choices = None
        if qtype == "multi_choice":
            choices = [str(c) for c in (row.get("choices") or [])]
            if not choices:
                raise RecordError(f"{where}: choices: a multi_choice item without options")
            letter = _option_letter(answer, choices)
            if letter is None:
                raise RecordError(f"{where}: answer: {answer!r} matches none of the options {choices}")
            question, answer, atype = gold.with_choices(question, choices), letter, "choice"
        elif qtype == "free_form":
            atype = "math" if src_atype in ("integer", "float") else gold.gold_answer_type(answer)
        else:
            raise RecordError(f"{where}: question_type: {qtype!r} is not multi_choice or free_form")
        image = ctx.save_image(row["decoded_image"], "mathvista", pid, f"{where}: decoded_image")
        yield Record(id=pid, source="mathvista/testmini", question=question, answer=answer, answer_type=atype,
                     choices=choices, images=[image], meta=meta, root=ctx.out_dir)


def read_olympiadbench(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """Hothan/OlympiadBench subset OE_MM_maths_en_COMP (150 rows).

    Columns: id, question (with `<image_k>` placeholders), solution, final_answer (one-element list; with
    is_multiple_answer its string joins the answers with commas), context, image_1..image_5 (image structs, some null),
    modality, difficulty, is_multiple_answer, unit, answer_type, error (tolerance string or null), question_type,
    subfield, subject, language. `$…$` around each gold is removed. id = id.
    meta: multiple_answers (bool), tolerance (list[float] or None, parsed from error), error (raw), unit,
    final_answer (raw list), answer_type, question_type, subfield, subject, language.
    """
    cols = ("id", "question", "final_answer", "is_multiple_answer", "error")
    for where, row in _parquet_rows(_parquet_files(path), ctx, cols):
        rid = str(row["id"])
        final = row.get("final_answer")
        if not isinstance(final, list) or len(final) != 1 or not isinstance(final[0], str):
            raise RecordError(f"{where}: final_answer: expected a one-element list of strings, got {final!r:.80}")
        answer = gold.strip_dollars(final[0])
        if not answer:
            ctx.skipped["empty answer"] += 1
            continue
        try:
            tolerance = gold.parse_tolerance(row.get("error"))
        except ValueError as exc:
            raise RecordError(f"{where}: error: {exc}") from None
        question = gold.strip_image_placeholders(_field(row, "question", where))
        context = row.get("context")
        if isinstance(context, str) and context.strip():
            question = gold.strip_image_placeholders(context) + "\n" + question
        images = [ctx.save_image(row[f"image_{k}"], "olympiadbench", f"{rid}_{k}", f"{where}: image_{k}")
                  for k in range(1, 6) if row.get(f"image_{k}") is not None]
        meta = {"multiple_answers": bool(row.get("is_multiple_answer")), "tolerance": tolerance,
                "error": row.get("error"), "unit": row.get("unit"), "final_answer": final,
                "answer_type": row.get("answer_type"), "question_type": row.get("question_type"),
                "subfield": row.get("subfield"), "subject": row.get("subject"), "language": row.get("language")}
        yield Record(id=rid, source="olympiadbench/OE_MM_maths_en_COMP", question=question, answer=answer,
                     answer_type=gold.gold_answer_type(answer), images=images, meta=meta, root=ctx.out_dir)


SOURCES: dict[str, Callable[[Path, PrepareContext], Iterator[Record]]] = {
    "deepscaler": read_deepscaler,
    "virl39k": read_virl39k,
    "math500": read_math500,
    "mathverse": read_mathverse,
    "mathvision": read_mathvision,
    "mathvista": read_mathvista,
    "olympiadbench": read_olympiadbench,
}
