"""Raw public exports -> records (DESIGN §2, §6): one reader per source, one registry.

A reader is `read_<source>(path, ctx) -> Iterator[Record]`. It reads the export in its real public schema, yields
records whose image paths are relative to `ctx.out_dir` (the output file's folder, `root=ctx.out_dir`), counts the rows
it skips in `ctx.skipped`, and raises RecordError naming `file:row N: field: problem` on a row it cannot read.

The five benchmarks (mathvista, mathvision, mathverse, olympiadbench, math500) read two layouts each: the Hugging Face
parquet export and the JSON/JSONL files the benchmark's GitHub repository publishes (field names in each reader).
For them one odd row never aborts a file (issue 10 §1): a defect with one right reading is repaired and counted in
`ctx.repairs` by kind; a row still unreadable is KEPT with `answer=""`, `answer_type="string"` (nothing scores on it)
and `meta.unscorable` = the reason; every such row, and every repair that changes what the model or grader sees, is
listed in `ctx.warnings` ({id, where, kind, reason}), which `prepare` writes to `<out>.warnings.jsonl`. N stays the
published N: nothing is skipped. Only a file that cannot be read at all (not JSON, a parquet column missing) aborts.

Meta keys the official graders read (`record.meta`; every bench record also has `raw_answer`, the published gold):
- mathvista: question_type (`multi_choice`|`free_form`), answer_type (`integer`|`float`|`text`|`list`), precision
  (int or None), unit, choices (the published option list, duplicates kept), query (official prompt, when published).
- mathvision: options (published list; `<image2>`-style entries when the options are pictures), split, gold_unit.
- mathverse: question_type (`multi-choice`|`free-form`), problem_version, question_for_eval, gold_unit.
- olympiadbench: multiple_answers (= is_multiple_answer), tolerance (list[float] or None), error (raw), unit,
  final_answer (raw list), answer_type.
- choice items of any bench: answer_letters (list, when several letters are all required: answer `C, D`),
  choices_in_image (options drawn in the image; choices are bare letters), equivalent_letters (duplicated options
  left in a question's own text: any of these letters is right; the answer is the first).

Images: parquet exports carry HF image structs `{bytes, path}`; they are written to
`<out_dir>/images/<source>/<id>.<ext>`.
Image files (ViRL39K, the GitHub layouts' `images/...` paths) are referenced in place when the output folder contains
them, else hard-linked (or, across file systems, copied) to `<out_dir>/images/<source>/`, so records never point
outside their folder. For the benchmarks, an image file that is absent, or a path leaving the data folder, is a warning
(the record is kept without it, `meta.missing_images`); ViRL39K (training data) refuses a path that resolves (links
followed) outside the export's folder and skips a missing image. Two rows never write or link the same image file.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from infimmr_cli.data import gold
from infimmr_cli.data.records import Record, RecordError, jsonl_lines, parse_json, read_json_file, read_text
from infimmr_cli.files import FileSafetyError, inside, writing

VISION_ONLY_QUESTION = "Solve the problem shown in the image."


class UnsafeOutput(RecordError):
    """The output folder itself is unsafe (a planted link would send a write elsewhere): every row would hit it, so
    prepare stops instead of keeping rows unscorable."""


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
    repairs: Counter = field(default_factory=Counter)
    warnings: list = field(default_factory=list)
    images_missing: int = 0
    _owners: dict[str, tuple[Path | None, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir).resolve()

    def repaired(self, kind: str) -> None:
        self.repairs[kind] += 1

    def warn(self, rid: str, where: str, kind: str, reason: str) -> None:
        """One line of `<out>.warnings.jsonl`: a row kept with a defect, or a repair worth a look."""
        self.warnings.append({"id": rid, "where": where, "kind": kind, "reason": reason})

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
            with writing(dest):  # a full disk names the image it could not write
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
            raise UnsafeOutput(str(exc)) from None


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
    except Exception:  # unreadable or a decompression bomb: stored as given; the stages that decode it report it
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

    pfs = []
    for f in files:
        try:
            pfs.append(pq.ParquetFile(f))
        except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError: a truncated or non-parquet file
            raise RecordError(f"{f}: <file>: not a readable parquet file ({exc})") from None
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


# ---------------------------------------------------------------- both layouts of a benchmark


@dataclass
class RawRow:
    """One published row: `where` names it (file:row N or file:line N), `base` is the folder its image paths start
    from, `row` is the decoded object (None when the line was not JSON: `bad` says why)."""

    where: str
    row: dict | None
    base: Path
    file: Path
    index: int
    bad: str | None = None


def _pick(path: Path, parquet_prefer: str | None, names: tuple[str, ...]) -> tuple[str, list[Path]]:
    """('parquet', files) or ('json', [file]) for a file or folder; in a folder parquet wins, then the first of
    `names` (relative paths, e.g. `data/testmini.json`) that exists."""
    path = Path(path)
    if path.is_file():
        return ("parquet" if path.suffix == ".parquet" else "json"), [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if any(p.suffix == ".parquet" for p in path.rglob("*.parquet")):
        return "parquet", _parquet_files(path, prefer=parquet_prefer)
    for name in names:
        if (path / name).is_file():
            return "json", [path / name]
    raise FileNotFoundError(f"{path}: no .parquet file and none of {', '.join(names)} in this folder")


def _json_rows(file: Path, ctx: PrepareContext, key_field: str | None = None) -> Iterator[RawRow]:
    """Rows of a `.jsonl` file (a line that is not a JSON object comes back with `bad`) or of a `.json` file holding
    a list of objects, or an object of objects keyed by id (MathVista's testmini.json: the key fills `key_field`)."""
    base = file.parent
    if file.suffix == ".jsonl":
        lines = jsonl_lines(read_text(file))  # not UTF-8: one error naming file:line
        ctx.on_total(sum(1 for ln in lines if ln.strip()))
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            ctx.rows_seen += 1
            ctx.on_row()
            where = f"{file}:{lineno}"
            try:
                obj = parse_json(line, where)  # bad JSON, or a lone surrogate no writer could encode
            except RecordError as exc:
                yield RawRow(where, None, base, file, lineno, str(exc).split(": ", 2)[-1])
                continue
            if not isinstance(obj, dict):
                yield RawRow(where, None, base, file, lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield RawRow(where, obj, base, file, lineno)
        return
    data = read_json_file(file)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        items = [({key_field: k, **v} if key_field and key_field not in v else v) for k, v in data.items()]
    elif isinstance(data, list):
        items = data
    else:
        raise RecordError(f"{file}: <file>: expected a JSON list of rows or an object of rows keyed by id")
    ctx.on_total(len(items))
    for i, obj in enumerate(items):
        ctx.rows_seen += 1
        ctx.on_row()
        where = f"{file}:item {i}"
        if not isinstance(obj, dict):
            yield RawRow(where, None, base, file, i, f"expected an object, got {type(obj).__name__}")
            continue
        yield RawRow(where, obj, base, file, i)


def _parquet_as_raw(files: list[Path], ctx: PrepareContext, cols: tuple[str, ...]) -> Iterator[RawRow]:
    for i, (where, row) in enumerate(_parquet_rows(files, ctx, cols)):
        file = Path(where.rsplit(":row ", 1)[0])
        yield RawRow(where, row, file.parent, file, i)


def _bench_rows(path: Path, ctx: PrepareContext, columns: tuple[str, ...], parquet_prefer: str | None,
                names: tuple[str, ...], key_field: str | None = None) -> Iterator[RawRow]:
    kind, files = _pick(path, parquet_prefer, names)
    if kind == "json":
        yield from _json_rows(files[0], ctx, key_field)
        return
    yield from _parquet_as_raw(files, ctx, columns)


def _reason(exc: Exception, where: str) -> str:
    """The error text without its `file:row N: ` prefix (the warning names the place separately)."""
    text = str(exc)
    return text[len(where) + 2:] if text.startswith(where + ": ") else text


def _guarded(rows: Iterator[RawRow], ctx: PrepareContext, source: str, id_keys: tuple[str, ...],
             convert: Callable[[RawRow], Record]) -> Iterator[Record]:
    """convert(row) for every row; a row it cannot read is kept as an unscorable record and warned about."""
    for raw in rows:
        try:
            if raw.bad is not None:
                raise RecordError(f"{raw.where}: <row>: {raw.bad}")
            yield convert(raw)
        except UnsafeOutput:
            raise
        except (RecordError, ValueError, TypeError, KeyError) as exc:
            reason = _reason(exc, raw.where) if isinstance(exc, RecordError) else f"{type(exc).__name__}: {exc}"
            yield _unscorable(raw, ctx, source, id_keys, reason)


def _unscorable(raw: RawRow, ctx: PrepareContext, source: str, id_keys: tuple[str, ...], reason: str) -> Record:
    row = raw.row or {}
    place = raw.where.rsplit(":", 1)[1].strip()  # `row 5`, `item 5`, or a JSONL line number
    place = f"line-{place}" if place.isdigit() else place.replace(" ", "-")
    rid = next((str(row[k]) for k in id_keys if row.get(k) not in (None, "")), f"{raw.file.stem}-{place}")
    q = row.get("question", row.get("problem"))
    question = gold.strip_image_placeholders(q) if isinstance(q, str) else ""
    answer = row.get("answer", row.get("final_answer"))
    ctx.warn(rid, raw.where, "unscorable", reason)
    ctx.repairs["kept unscorable"] += 1
    return Record(id=rid, source=source, question=question or VISION_ONLY_QUESTION, answer="", answer_type="string",
                  meta={"unscorable": reason, "raw_answer": answer if isinstance(answer, (str, list)) else None},
                  root=ctx.out_dir)


def _image_name(rel: str) -> str:
    parts = list(Path(rel).parts)
    if len(parts) > 1 and parts[0] == "images":
        parts = parts[1:]
    return _safe("_".join(parts))


def _image_file(ctx: PrepareContext, raw: RawRow, rel: Any, source: str, rid: str, meta: dict) -> str | None:
    """A published image path (`images/12.jpg`), looked up beside the data file, one folder up (MATH-V keeps
    `data/` and `images/` side by side) and in `images/`; absent or unsafe: a warning, the record keeps no image."""
    rel = str(rel or "").strip()
    if not rel:
        return None
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        ctx.warn(rid, raw.where, "image path unsafe", f"{rel!r} leaves the data folder; not used")
        meta.setdefault("missing_images", []).append(rel)
        return None
    for root in (raw.base, raw.base.parent, raw.base / "images"):
        if (root / p).is_file():
            return ctx.place_file(root / p, source, _image_name(rel))
    ctx.images_missing += 1
    ctx.warn(rid, raw.where, "image missing", f"{rel}: no such file beside {raw.file.name} or one folder up")
    meta.setdefault("missing_images", []).append(rel)
    return None


def _struct_or_path(ctx: PrepareContext, raw: RawRow, struct_key: str, path_key: str, source: str, rid: str,
                    meta: dict) -> list[str]:
    """The row's one image: an HF struct with bytes (parquet) or a path (GitHub layout)."""
    struct = raw.row.get(struct_key)
    if isinstance(struct, dict) and struct.get("bytes"):
        return _saved(ctx, raw, struct, source, rid, struct_key, meta)
    path = raw.row.get(path_key)
    if isinstance(path, dict):  # MathVerse's parquet `image` column is itself the struct
        path = path.get("path") if not path.get("bytes") else None
    got = _image_file(ctx, raw, path, source, rid, meta) if isinstance(path, str) else None
    return [got] if got else []


def _saved(ctx: PrepareContext, raw: RawRow, struct: Any, source: str, rid: str, key: str, meta: dict) -> list[str]:
    """[path] of an HF image struct written beside the output; a struct without bytes is a warning, not an abort."""
    name = rid if key in ("image", "decoded_image") else f"{rid}_{key.rsplit('_', 1)[-1]}"
    try:
        return [ctx.save_image(struct, source, name, f"{raw.where}: {key}")]
    except UnsafeOutput:
        raise
    except RecordError as exc:
        ctx.images_missing += 1
        ctx.warn(rid, raw.where, "image missing", _reason(exc, raw.where))
        meta.setdefault("missing_images", []).append(key)
        return []


def _free_gold(ctx: PrepareContext, raw_answer: str, where: str, meta: dict, units: bool = True) -> str:
    """A free-form gold: JSON-escape damage repaired, boxes and outer `$` removed, a trailing `{unit}` split off."""
    g = gold.repair_escapes(raw_answer).strip()  # before strip(): a form feed is whitespace to str.strip
    if g != raw_answer.strip():
        ctx.repaired("json escape")
    g = _unbox(g, where)
    if units:
        g, unit = gold.split_unit_braces(g)
        if unit:
            ctx.repaired("unit in braces")
            meta["gold_unit"] = unit
    if not g:
        raise RecordError(f"{where}: answer: empty")
    return g


def _choice(ctx: PrepareContext, raw_answer: str, options: list[str], where: str, meta: dict,
            gold_is_text: bool = False) -> tuple[str, str, list[str]]:
    """(answer, answer_type, choices) for a multiple-choice row (gold.resolve_choice), repairs counted."""
    g = gold.repair_escapes(raw_answer)
    try:
        answer, choices, repairs = gold.resolve_choice(g, options, gold_is_text=gold_is_text)
    except ValueError as exc:
        raise RecordError(f"{where}: answer: {exc}") from None
    for kind in repairs:
        ctx.repaired(kind)
    if "," in answer:  # several letters, all required: scored as the exact list
        meta["answer_letters"] = answer.split(", ")
        return answer, "string", choices
    return answer, "choice", choices


# ---------------------------------------------------------------- readers


def _deepscaler_items(path: Path) -> tuple[Path, list]:
    """The rows of a DeepScaleR export in any of the forms it is shared in: the release's `deepscaler.json` (one JSON
    list), a JSONL file (one object a line) or a parquet file; a folder means its `deepscaler.json`."""
    if path.is_dir():
        if not (path / "deepscaler.json").is_file():
            raise RecordError(f"{path}: no deepscaler.json in this folder; --in takes the release's deepscaler.json "
                              f"(agentica-org/DeepScaleR-Preview-Dataset), a JSONL or a parquet file, or its folder")
        path = path / "deepscaler.json"
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return path, pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise RecordError(f"{path}: <file>: not a readable parquet file ({exc})") from None
    if path.suffix == ".jsonl":
        return path, [parse_json(line, f"{path}:{n}") for n, line in enumerate(jsonl_lines(read_text(path)), start=1)
                      if line.strip()]
    items = read_json_file(path)
    if not isinstance(items, list):
        raise RecordError(f"{path}: <file>: expected one JSON list of objects (deepscaler.json), got "
                          f"{type(items).__name__}; a JSONL file must end in .jsonl")
    return path, items


def read_deepscaler(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """agentica-org/DeepScaleR-Preview-Dataset `deepscaler.json`: one JSON list of {problem, answer, solution}.

    id `deepscaler-<index in the list>` (skipped rows keep their index, so ids are stable); rows with an empty answer
    are skipped and counted. meta: solution.
    """
    path, items = _deepscaler_items(Path(path))
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
    """MATH-500 `test.jsonl` (HuggingFaceH4/MATH-500; the same file as openai/prm800k `math_splits/test.jsonl`):
    problem, solution, answer, subject, level, unique_id. id = unique_id.

    A row with an empty answer or an unreadable line is kept unscorable and warned about.
    meta: subject, level, solution, raw_answer.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "test.jsonl"

    def convert(raw: RawRow) -> Record:
        row, where = raw.row, raw.where
        uid = _field(row, "unique_id", where)
        published = _field(row, "answer", where)
        meta = {"subject": row.get("subject"), "level": row.get("level"), "solution": row.get("solution"),
                "raw_answer": published}
        answer = _free_gold(ctx, published, where, meta, units=False)
        return Record(id=uid, source="math500", question=_field(row, "problem", where).strip(), answer=answer,
                      answer_type=gold.gold_answer_type(answer), meta=meta, root=ctx.out_dir)

    yield from _guarded(_json_rows(path, ctx), ctx, "math500", ("unique_id",), convert)


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
    """MathVerse testmini (3,940 rows = 788 problems x 5 versions) or its Text Only set (788 rows).

    Layouts: AI4Math/MathVerse `testmini.parquet` (image is an HF struct), or ZrrSkywalker/MathVerse
    `data/testmini.json` / `data/testmini_text_only.json` (a JSON list; image is a path such as
    `images_version_1-4/image_685.png`, or empty for Text Only). Fields: sample_index, problem_index,
    problem_version, question, image, answer, question_type (`multi-choice` | `free-form`), metadata {split, source,
    subject, subfield}, query_wo, query_cot, question_for_eval (parquet only). id = sample_index; source
    `mathverse/testmini`, or `mathverse/testmini_text_only` for Text Only rows (their sample_index restarts at 1).
    Multi-choice golds: a letter (`(C)` normalised); the option's text (`090^\\circ T`, `False`) -> its letter; several
    letters (`C\\nD`) -> answer `C, D` (string, all required, meta.answer_letters). Options come from the question
    text (`Choices:\\nA:…`), or, for rows that print them in the image, bare letters (meta.choices_in_image); such a
    row whose gold is an option's text takes the letter from the options another version of the problem prints.
    A row with an empty question (Vision Only) gets VISION_ONLY_QUESTION. Free-form golds as published, boxes, outer
    `$` and a trailing `{unit}` removed.
    meta: problem_index, problem_version, question_type, question_for_eval, metadata fields, raw_answer, and as needed
    choices_in_image, answer_letters, equivalent_letters, gold_unit, missing_images.
    """
    cols = ("sample_index", "problem_version", "question", "answer", "question_type")  # image: optional (Text Only)
    names = ("testmini.json", "data/testmini.json", "testmini_text_only.json", "data/testmini_text_only.json")

    def convert(raw: RawRow) -> Record:
        row, where = raw.row, raw.where
        sid = str(_field(row, "sample_index", where, (str, int)))
        raw_q = _field(row, "question", where)
        question = gold.strip_image_placeholders(raw_q) or VISION_ONLY_QUESTION
        published = str(_field(row, "answer", where, (str, int, float)))
        qtype = _field(row, "question_type", where)
        version = row.get("problem_version")
        meta: dict[str, Any] = {"problem_index": str(row.get("problem_index")), "problem_version": version,
                                "question_type": qtype, "question_for_eval": row.get("question_for_eval"),
                                "raw_answer": published}
        meta.update({k: v for k, v in (row.get("metadata") or {}).items() if k not in meta})
        choices = None
        if qtype == "multi-choice":
            sibling = sibling_options.get(meta["problem_index"])
            answer, atype, choices = _mathverse_choice(ctx, published.strip(), raw_q, where, sid, meta, sibling)
        elif qtype == "free-form":
            answer = _free_gold(ctx, published, where, meta)
            atype = gold.gold_answer_type(answer)
        else:
            raise RecordError(f"{where}: question_type: {qtype!r} is not multi-choice or free-form")
        split = "testmini_text_only" if version == "Text Only" else "testmini"
        images = [] if version == "Text Only" else _struct_or_path(ctx, raw, "image", "image", "mathverse", sid, meta)
        if version != "Text Only" and not images and "missing_images" not in meta:
            ctx.warn(sid, where, "image missing", "no image in this row")
        return Record(id=sid, source=f"mathverse/{split}", question=question, answer=answer, answer_type=atype,
                      choices=choices, images=images, meta=meta, root=ctx.out_dir)

    kind, files = _pick(Path(path), "testmini", names)
    sibling_options = _mathverse_options_by_problem(kind, files)
    rows = _parquet_as_raw(files, ctx, cols) if kind == "parquet" else _json_rows(files[0], ctx)
    yield from _guarded(rows, ctx, "mathverse/testmini", ("sample_index",), convert)


def _mathverse_options_by_problem(kind: str, files: list[Path]) -> dict[str, list[str]]:
    """problem_index -> the options one of its versions prints in its question. A Vision Only row shows its options
    only in the image; when its gold is an option's TEXT (`090^\\circ T`), a sibling version's list gives the letter."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        rows = []
        for f in files:
            if {"problem_index", "question"} <= set(pq.ParquetFile(f).schema_arrow.names):
                rows += pq.read_table(f, columns=["problem_index", "question"]).to_pylist()
    else:
        try:
            rows = read_json_file(files[0])
        except RecordError:
            return {}  # the reader names the error
    out: dict[str, list[str]] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("question"), str):
            pid = str(row.get("problem_index"))
            if pid not in out and (opts := gold.parse_choices(row["question"])):
                out[pid] = opts
    return out


def _mathverse_choice(ctx: PrepareContext, g: str, raw_q: str, where: str, rid: str, meta: dict,
                      sibling: list[str] | None = None) -> tuple[str, str, list[str]]:
    parsed = gold.parse_choices(raw_q)
    if parsed:
        unique, mapping = gold.dedupe_options(parsed)
        if len(unique) == len(parsed):
            return _choice(ctx, g, parsed, where, meta)
        # The options are printed in the question: merging them would renumber what the model reads. Keep them all
        # and name every letter of the gold option (meta.equivalent_letters).
        answer, atype, _ = _choice(ctx, g, parsed, where, meta)
        letters = [old for old, new in mapping.items() if new == answer] if atype == "choice" else []
        if len(letters) > 1:  # the gold option itself is repeated
            answer = letters[0]
            meta["equivalent_letters"] = letters
            ctx.warn(rid, where, "duplicate options", f"options {letters} repeat in the question text; any is right")
        elif atype == "choice":
            answer = letters[0]
        else:  # several letters, named in merged numbering: back to the question's own letters
            firsts = {new: old for old, new in reversed(list(mapping.items()))}
            meta["answer_letters"] = [firsts[x] for x in meta["answer_letters"]]
            answer = ", ".join(meta["answer_letters"])
        return answer, atype, parsed
    letter = gold.normalise_letter(g)
    several = gold.several_letters(g)
    if letter is None and not several and sibling:
        try:
            answer, _, _ = gold.resolve_choice(g, sibling)
        except ValueError:
            answer = ""
        if answer and "," not in answer:  # its letter in the sibling's list (merged copies are not renumbered here)
            letter = gold.option_text_letter(g, sibling) or answer
            ctx.repaired("option text -> letter (another version's options)")
            meta["choices_in_image"] = True
            return letter, "choice", gold.letter_choices(letter, at_least=len(sibling))
    if letter is None and not several:
        raise RecordError(f"{where}: answer: multi-choice gold {g!r} is not a letter and the question lists no options")
    meta["choices_in_image"] = True
    return _choice(ctx, g, gold.letter_choices(letter or max(several)), where, meta)


def _image_options_question(question: str, n: int) -> str:
    letters = ", ".join(gold.LETTERS[:n])
    return f"{question.rstrip()}\nChoices: {letters} (the options are the pictures labelled in the image)"


def read_mathvision(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """MATH-Vision, split `test` (3,040) or `testmini` (304), read from the file name.

    Layouts: MathLLMs/MathVision parquet (decoded_image is an HF struct), or mathllm/MATH-V `data/test.jsonl` /
    `data/testmini.jsonl` (image is a path `images/<id>.jpg`, looked up beside `data/` as the repository keeps it).
    Fields: id, question (with `<image1>` placeholders), options (list, empty for free-form), image, answer, solution,
    level, subject. `choice` when options is non-empty (gold a letter A-E; the options are appended to the question as
    `Choices:\\n(A) …`); options that are pictures (`<image2>` …) -> a choice over bare letters
    (meta.choices_in_image).
    A question that is only an image tag gets VISION_ONLY_QUESTION. Free-form golds: `\\f` eaten by a JSON escape
    (`\\x0crac`) -> `\\frac`; boxes and outer `$` removed; a trailing `{degrees}` unit -> meta.gold_unit. id = id.
    meta: subject, level, split, solution, options, raw_answer, and as needed choices_in_image, gold_unit,
    missing_images.
    """
    path = Path(path)
    kind, files = _pick(path, None, ("test.jsonl", "data/test.jsonl", "testmini.jsonl", "data/testmini.jsonl"))
    if kind == "parquet":
        files = _parquet_files(path)
    splits = {"testmini" if "testmini" in f.name else "test" for f in files}
    if len(splits) > 1:
        raise RecordError(f"{path}: holds both test and testmini parquet files; pass one file with --in")
    split = splits.pop()
    if kind == "json" and path.is_dir() and split == "test" and any(
            (path / n).is_file() for n in ("testmini.jsonl", "data/testmini.jsonl")):
        ctx.warn("", str(path), "split chosen", f"both splits here; read {files[0]} (pass testmini.jsonl for 304)")
    cols = ("id", "question", "options", "decoded_image", "answer", "level", "subject")

    def convert(raw: RawRow) -> Record:
        row, where = raw.row, raw.where
        rid = str(_field(row, "id", where, (str, int)))
        question = gold.strip_image_placeholders(_field(row, "question", where))
        if not question:
            question = VISION_ONLY_QUESTION
            ctx.repaired("image-only question")
        published = str(_field(row, "answer", where, (str, int, float)))
        options = [str(o) for o in (row.get("options") or [])]
        meta = {"subject": row.get("subject"), "level": row.get("level"), "split": split,
                "solution": row.get("solution"), "options": options, "raw_answer": published}
        choices = None
        if options and any(gold.is_image_tag(o) for o in options):
            answer, atype, choices = _choice(ctx, published.strip(), list(gold.LETTERS[: len(options)]), where, meta)
            question = _image_options_question(question, len(options))
            meta["choices_in_image"] = True
            ctx.repaired("image options")
        elif options:
            answer, atype, choices = _choice(ctx, published.strip(), options, where, meta)
            question = gold.with_choices(question, choices)
        else:
            answer = _free_gold(ctx, published, where, meta)
            atype = gold.gold_answer_type(answer)
        images = _struct_or_path(ctx, raw, "decoded_image", "image", "mathvision", rid, meta)
        return Record(id=rid, source=f"mathvision/{split}", question=question, answer=answer, answer_type=atype,
                      choices=choices, images=images, meta=meta, root=ctx.out_dir)

    rows = (_parquet_as_raw(files, ctx, cols) if kind == "parquet" else _json_rows(files[0], ctx))
    yield from _guarded(rows, ctx, f"mathvision/{split}", ("id",), convert)


def read_mathvista(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """MathVista testmini (1,000 rows).

    Layouts: AI4Math/MathVista `data/testmini-*.parquet` (decoded_image an HF struct, a `query` column), or
    lupantech/MathVista `data/testmini.json` (an object keyed by pid; image a path `images/<pid>.jpg` under `data/`;
    the official prompts in `data/query.json` beside it, read when present). Fields: pid, question, image, choices
    (list or null), unit, precision (float or null), answer, question_type (`multi_choice` | `free_form`),
    answer_type (`integer` | `float` | `text` | `list`), metadata {category, context, grade, img_height, img_width,
    language, skills, source, split, task}. A multi_choice gold is the option TEXT: it becomes its letter, and the
    options are appended to the question. Repeated options (`['9', '12', '18', '18']`) are merged, so the gold is one
    letter whichever copy it named. Free-form integer/float golds are `math`; text and list follow math-verify.
    id = pid. meta: precision (int or None), unit, answer_type, question_type, choices (as published), query,
    raw_answer, metadata fields.
    """
    cols = ("pid", "question", "decoded_image", "choices", "answer", "question_type", "answer_type")
    names = ("testmini.json", "data/testmini.json")
    kind, files = _pick(Path(path), "testmini", names)
    queries: dict = {}
    if kind == "json" and (files[0].parent / "query.json").is_file():
        try:
            queries = read_json_file(files[0].parent / "query.json")
        except RecordError:
            ctx.warn("", str(files[0].parent / "query.json"), "query.json unreadable", "not valid JSON; ignored")

    def convert(raw: RawRow) -> Record:
        row, where = raw.row, raw.where
        pid = str(_field(row, "pid", where, (str, int)))
        question = _field(row, "question", where).strip()
        published = str(_field(row, "answer", where, (str, int, float)))
        qtype, src_atype = _field(row, "question_type", where), row.get("answer_type")
        precision = _num(row.get("precision"))
        raw_choices = row.get("choices")
        meta: dict[str, Any] = {"precision": None if precision is None else int(precision), "unit": row.get("unit"),
                                "answer_type": src_atype, "question_type": qtype, "choices": raw_choices,
                                "raw_answer": published}
        query = row.get("query") if "query" in row else queries.get(pid)
        if query is not None:
            meta["query"] = query
        meta.update({k: v for k, v in (row.get("metadata") or {}).items() if k not in meta})
        choices = None
        if qtype == "multi_choice":
            options = [str(c) for c in (raw_choices or [])]
            if not options:
                raise RecordError(f"{where}: choices: a multi_choice item without options")
            answer, atype, choices = _choice(ctx, published, options, where, meta, gold_is_text=True)
            question = gold.with_choices(question, choices)
        elif qtype == "free_form":
            answer = gold.repair_escapes(published).strip()
            if not answer:
                raise RecordError(f"{where}: answer: empty")
            atype = "math" if src_atype in ("integer", "float") else gold.gold_answer_type(answer)
        else:
            raise RecordError(f"{where}: question_type: {qtype!r} is not multi_choice or free_form")
        images = _struct_or_path(ctx, raw, "decoded_image", "image", "mathvista", pid, meta)
        return Record(id=pid, source="mathvista/testmini", question=question, answer=answer, answer_type=atype,
                      choices=choices, images=images, meta=meta, root=ctx.out_dir)

    rows = _parquet_as_raw(files, ctx, cols) if kind == "parquet" else _json_rows(files[0], ctx, key_field="pid")
    yield from _guarded(rows, ctx, "mathvista/testmini", ("pid",), convert)


_OLYMPIAD_SUBSET = re.compile(r"(?:OE|TP)_(?:MM|TO)_[a-z]+_[a-z]+_[A-Z]+")
_IMG_TAG = re.compile(r"<img_(\d+)>")


def _olympiad_tag_images(ctx: PrepareContext, raw: RawRow, text: str, rid: str, meta: dict) -> list[str]:
    """The GitHub layout names images by tags `<img_3362>` in the text; the files are `images/img_3362.<ext>`."""
    out = []
    for num in dict.fromkeys(_IMG_TAG.findall(text)):
        found = None
        for root in (raw.base / "images", raw.base.parent / "images", raw.base):
            hits = sorted(root.glob(f"img_{num}.*")) if root.is_dir() else []
            if hits:
                found = ctx.place_file(hits[0], "olympiadbench", hits[0].name)
                break
        if found:
            out.append(found)
        else:
            ctx.images_missing += 1
            ctx.warn(rid, raw.where, "image missing", f"img_{num}: no images/img_{num}.* beside {raw.file.name}")
            meta.setdefault("missing_images", []).append(f"img_{num}")
    return out


def read_olympiadbench(path: Path, ctx: PrepareContext) -> Iterator[Record]:
    """OlympiadBench, subset OE_MM_maths_en_COMP (150 rows) or any other OE subset file.

    Layouts: Hothan/OlympiadBench parquet (image_1..image_5 HF structs, some null; `<image_k>` placeholders), or the
    GitHub release's JSON (OpenBMB/OlympiadBench data.zip: `OE_MM_maths_en_COMP.json`, a list; images named by tags
    `<img_3362>` in the text, files `images/img_3362.<ext>`). Fields: id, question, solution, final_answer (a list
    of one string; with is_multiple_answer it joins the answers with commas), context, is_multiple_answer, unit,
    answer_type, error (tolerance string or null), subfield (+ modality, difficulty, question_type, subject, language
    in parquet). `$…$` around each gold is removed. id = id; source `olympiadbench/<subset>` from the file path.
    An `error` that is not a number is a warning (the row is kept with no tolerance).
    meta: multiple_answers (= is_multiple_answer), tolerance (list[float] or None, parsed from error), error (raw),
    unit, final_answer (raw list), raw_answer, answer_type, question_type, subfield, subject, language.
    """
    cols = ("id", "question", "final_answer", "is_multiple_answer", "error")
    names = ("OE_MM_maths_en_COMP.json", "data/OE_MM_maths_en_COMP.json", "OE_MM_maths_en_COMP.jsonl")

    def convert(raw: RawRow) -> Record:
        row, where = raw.row, raw.where
        rid = str(_field(row, "id", where, (str, int)))
        subset = _OLYMPIAD_SUBSET.search(str(raw.file))
        final = row.get("final_answer")
        if isinstance(final, str):
            final = [final]
        if not isinstance(final, list) or not final or not all(isinstance(f, str) for f in final):
            raise RecordError(f"{where}: final_answer: expected a list of strings, got {final!r:.80}")
        answer = gold.repair_escapes(", ".join(gold.strip_dollars(f) for f in final))
        if not answer:
            raise RecordError(f"{where}: final_answer: empty")
        try:
            tolerance = gold.parse_tolerance(row.get("error"))
        except ValueError as exc:
            tolerance = None
            ctx.warn(rid, where, "tolerance unreadable", f"error: {exc}; scored without a tolerance")
        question = gold.strip_image_placeholders(_field(row, "question", where))
        context = row.get("context")
        if isinstance(context, str) and context.strip():
            question = gold.strip_image_placeholders(context) + "\n" + question
        meta = {"multiple_answers": bool(row.get("is_multiple_answer")) or len(final) > 1, "tolerance": tolerance,
                "error": row.get("error"), "unit": row.get("unit"), "final_answer": final, "raw_answer": final[0],
                "answer_type": row.get("answer_type"), "question_type": row.get("question_type"),
                "subfield": row.get("subfield"), "subject": row.get("subject"), "language": row.get("language")}
        if any(f"image_{k}" in row for k in range(1, 6)):
            images = [p for k in range(1, 6) if row.get(f"image_{k}") is not None
                      for p in _saved(ctx, raw, row[f"image_{k}"], "olympiadbench", rid, f"image_{k}", meta)]
        else:
            images = _olympiad_tag_images(ctx, raw, f"{context or ''}\n{row['question']}", rid, meta)
        return Record(id=rid, source=f"olympiadbench/{subset.group(0) if subset else 'OE_MM_maths_en_COMP'}",
                      question=question or VISION_ONLY_QUESTION, answer=answer,
                      answer_type=gold.gold_answer_type(answer), images=images, meta=meta, root=ctx.out_dir)

    rows = _bench_rows(Path(path), ctx, cols, None, names)
    yield from _guarded(rows, ctx, "olympiadbench/OE_MM_maths_en_COMP", ("id",), convert)


SOURCES: dict[str, Callable[[Path, PrepareContext], Iterator[Record]]] = {
    "deepscaler": read_deepscaler,
    "virl39k": read_virl39k,
    "math500": read_math500,
    "mathverse": read_mathverse,
    "mathvision": read_mathvision,
    "mathvista": read_mathvista,
    "olympiadbench": read_olympiadbench,
}
