"""The record contract (DESIGN §2): one JSON object a line, validated on read, written atomically.

Image paths in a file are relative to that file's folder. A record remembers the folder it was read from (`root`), so a
stage that writes into another folder rebases the paths instead of breaking them.
"""

from __future__ import annotations

import json
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from infimmr_cli.files import FileSafetyError, atomic_file, inside, partial_path, writing

ANSWER_TYPES = ("math", "choice", "string")
LETTERS = string.ascii_uppercase
KNOWN_KEYS = ("id", "source", "question", "answer", "answer_type", "choices", "images", "image_type", "caption", "meta")


class RecordError(ValueError):
    """A record that breaks the contract; the message reads `file:line: field: what is wrong`."""


@dataclass
class Record:
    id: str
    source: str
    question: str
    answer: str
    answer_type: str
    choices: list[str] | None = None
    images: list[str] = field(default_factory=list)
    image_type: str | None = None
    caption: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # Keys a later stage or another tool added; kept so that nothing is lost on a rewrite.
    extra: dict[str, Any] = field(default_factory=dict)
    # The folder image paths are relative to (not serialised).
    root: Path | None = field(default=None, compare=False, repr=False)
    # Whether image paths may leave `root` (the user's --allow-outside-images; not serialised).
    allow_outside: bool = field(default=False, compare=False, repr=False)

    @property
    def has_images(self) -> bool:
        return bool(self.images)

    def image_paths(self) -> list[Path]:
        """Absolute image paths, resolved (links followed) against the folder this record was read from; a path that
        lands outside that folder raises RecordError unless the record was read with `allow_outside`."""
        base = self.root or Path.cwd()
        if self.allow_outside:
            return [(base / p).resolve() for p in self.images]
        try:
            return [inside(base, p, f"record {self.id!r}", f"images[{i}]") for i, p in enumerate(self.images)]
        except FileSafetyError as exc:
            raise RecordError(str(exc)) from None

    def choice_letters(self) -> str:
        return LETTERS[: len(self.choices or [])]

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """The JSON object; with `root`, image paths are rebased to be relative to that folder."""
        images = list(self.images)
        if root is not None and self.root is not None and Path(root).resolve() != Path(self.root).resolve():
            images = [os.path.relpath(p, Path(root).resolve()) for p in self.image_paths()]
        out = {
            "id": self.id,
            "source": self.source,
            "question": self.question,
            "answer": self.answer,
            "answer_type": self.answer_type,
            "choices": self.choices,
            "images": images,
            "image_type": self.image_type,
            "caption": self.caption,
            "meta": self.meta,
        }
        out.update(self.extra)
        return out

    def replace(self, **changes: Any) -> "Record":
        """A copy with some fields changed (records are never edited in place)."""
        data = {**self.__dict__, **changes}
        data["meta"] = dict(data["meta"])
        return Record(**data)


def _check(cond: bool, where: str, fld: str, problem: str) -> None:
    if not cond:
        raise RecordError(f"{where}: {fld}: {problem}")


# ---------------------------------------------------------------- text that every writer can write back
# JSON may spell a lone UTF-16 surrogate (`"\ud800"`); Python decodes it into a str that no UTF-8 writer accepts, so
# it would pass validation and crash the stage's writer after the expensive work. Such text is refused on read.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _surrogate_field(obj: Any, path: str = "") -> str | None:
    """The field (`question`, `meta.note`, `choices[2]`) of the first string holding a lone surrogate, else None."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return path or "<value>"
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            found = _surrogate_field(k, sub) or _surrogate_field(v, sub)
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _surrogate_field(v, f"{path}[{i}]")
            if found:
                return found
    return None


def parse_json(text: str, where: str, what: str = "<line>") -> Any:
    """json.loads with our errors: bad JSON and strings no writer can encode (lone surrogates) name `where`."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        # `file:line:column` as compilers write it (editors jump there): json counts lines at "\n" and columns in
        # characters from 1, as editors do. A whole file names its line; one JSONL line's `where` already does.
        place = f"{where}:{exc.lineno}:{exc.colno}" if what == "<file>" else f"{where}:{exc.colno}"
        msg = exc.msg.removesuffix(" at")  # "Unterminated string starting at": the column is where it starts
        raise RecordError(f"{place}: {what}: not valid JSON ({msg})") from None
    if _SURROGATE_ESCAPE.search(text):
        bad = _surrogate_field(obj)
        if bad:
            raise RecordError(f"{where}: {bad}: holds a lone UTF-16 surrogate (an escape like \\ud800 with no pair); "
                              "not text any output can hold")
    return obj


def decode_utf8(data: bytes, where: str) -> str:
    """Bytes -> str, strictly UTF-8; otherwise RecordError naming `where` and, for a whole file, the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = _char_column(data[data.rfind(b"\n", 0, exc.start) + 1: exc.start], line)
        raise RecordError(f"{where}:{line}:{col}: <line>: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _char_column(before: bytes, line: int) -> int:
    """The 1-based column, in characters as editors count them, of the byte after `before` (the valid UTF-8 bytes
    that precede it on its line); a BOM opening line 1 is not a column."""
    text = before.decode("utf-8")
    return len(text.removeprefix("\ufeff") if line == 1 else text) + 1


def read_text(path: str | Path) -> str:
    """A whole text file, strictly UTF-8 (RecordError naming file:line otherwise); a leading BOM is dropped."""
    return decode_utf8(Path(path).read_bytes(), str(path)).removeprefix("\ufeff")


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text as JSON and editors count them: split at "\\n" only, a "\\r" before it dropped.
    str.splitlines() also splits at U+2028, U+0085 and other characters a JSON string may hold raw (we write text
    unescaped), which cuts a valid line in two and shifts every later line number."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def read_json_file(path: str | Path) -> Any:
    """A whole JSON file: not UTF-8, not JSON or holding a lone surrogate -> RecordError naming the file and line."""
    return parse_json(read_text(path), str(path), "<file>")


def record_from_dict(obj: Any, where: str = "<record>", root: Path | None = None, check_images: bool = True,
                     allow_outside: bool = False) -> Record:
    """Validate one decoded JSON object and build a Record; errors name `where` (file:line) and the field."""
    _check(isinstance(obj, dict), where, "<line>", f"expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "source", "question", "answer", "answer_type"):
        _check(key in obj, where, key, "missing")
    rid = normalise_id(obj["id"])
    _check(isinstance(rid, str) and rid != "", where, "id", f"expected a non-empty string, got {obj['id']!r}")
    for key in ("source", "question", "answer"):
        _check(isinstance(obj[key], str), where, key, f"expected a string, got {type(obj[key]).__name__}")
    atype = obj["answer_type"]
    _check(atype in ANSWER_TYPES, where, "answer_type", f"{atype!r} is not one of {', '.join(ANSWER_TYPES)}")

    choices = obj.get("choices")
    if choices is not None:
        _check(isinstance(choices, list) and all(isinstance(c, str) for c in choices), where, "choices",
               "expected a list of strings or null")
        _check(len(choices) <= len(LETTERS), where, "choices", f"{len(choices)} options; at most {len(LETTERS)}")
    if atype == "choice":
        _check(bool(choices), where, "choices", "a choice item needs a non-empty list of options")
        letters = LETTERS[: len(choices)]
        _check(len(obj["answer"]) == 1 and obj["answer"] in letters, where, "answer",
               f"{obj['answer']!r} is not a letter among the {len(choices)} choices ({letters[0]}-{letters[-1]})")

    images = obj.get("images") or []
    _check(isinstance(images, list) and all(isinstance(p, str) and p for p in images), where, "images",
           "expected a list of relative paths")
    for i, p in enumerate(images):
        full = (root or Path.cwd()) / p
        if not allow_outside:
            _check(not os.path.isabs(p), where, f"images[{i}]", f"{p!r} is absolute; paths are relative to the file")
            _check(".." not in Path(p).parts, where, f"images[{i}]", f"{p!r} leaves the data folder")
            try:  # a link inside the folder can still point anywhere: resolve it
                full = inside(root or Path.cwd(), p, where, f"images[{i}]")
            except FileSafetyError as exc:
                raise RecordError(f"{exc}; pass --allow-outside-images if you mean it") from None
        if check_images:
            _check(full.is_file(), where, f"images[{i}]", f"{p!r} does not exist (looked for {full})")

    for key in ("image_type", "caption"):
        val = obj.get(key)
        _check(val is None or isinstance(val, str), where, key, f"expected a string or null, got {type(val).__name__}")
    meta = obj.get("meta") or {}
    _check(isinstance(meta, dict), where, "meta", f"expected an object, got {type(meta).__name__}")

    extra = {k: v for k, v in obj.items() if k not in KNOWN_KEYS}
    return Record(id=rid, source=obj["source"], question=obj["question"], answer=obj["answer"], answer_type=atype,
                  choices=choices, images=list(images), image_type=obj.get("image_type"), caption=obj.get("caption"),
                  meta=dict(meta), extra=extra, root=root, allow_outside=allow_outside)


def normalise_id(value: Any) -> Any:
    """Integer ids (some exports use them) become strings; anything else is returned for the caller to check."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def iter_json_lines(path: str | Path, tolerate_torn_tail: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for every non-blank line of a JSONL file; a line that is not a JSON object raises
    RecordError naming file:line. `tolerate_torn_tail` ends quietly at an unterminated, undecodable last line: what a
    process killed mid-write leaves behind."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            torn = tolerate_torn_tail and not raw.endswith(b"\n")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if torn:  # a kill mid-write can cut a multi-byte character too
                    return
                raise RecordError(f"{where}:{_char_column(raw[:exc.start], lineno)}: <line>: not UTF-8 text "
                                  f"(byte 0x{raw[exc.start]:02x})") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a BOM (Windows editors) is not part of the first object
            if not line.strip():
                continue
            try:
                obj = parse_json(line, where)
            except RecordError:
                if torn:
                    return
                raise
            _check(isinstance(obj, dict), where, "<line>", f"expected a JSON object, got {type(obj).__name__}")
            yield where, obj


def iter_records(path: str | Path, check_images: bool = True, allow_outside: bool = False,
                 tolerate_torn_tail: bool = False) -> Iterator[Record]:
    """Stream and validate a JSONL file. Blank lines are skipped; duplicate ids are an error.

    `tolerate_torn_tail` skips an unterminated, undecodable last line: what a process killed mid-write leaves behind.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: file not found")
    root = path.resolve().parent
    seen: set[str] = set()
    for where, obj in iter_json_lines(path, tolerate_torn_tail=tolerate_torn_tail):
        rec = record_from_dict(obj, where, root=root, check_images=check_images, allow_outside=allow_outside)
        _check(rec.id not in seen, where, "id", f"{rec.id!r} appears twice in this file")
        seen.add(rec.id)
        yield rec


def read_records(path: str | Path, check_images: bool = True, allow_outside: bool = False) -> list[Record]:
    """Read and validate every line; the first bad line raises RecordError naming file:line: field."""
    return list(iter_records(path, check_images=check_images, allow_outside=allow_outside))


def _dump(rec: Record | dict, root: Path) -> str:
    obj = rec.to_dict(root) if isinstance(rec, Record) else rec
    return json.dumps(obj, ensure_ascii=False) + "\n"


def write_records(path: str | Path, records: Iterable[Record | dict]) -> int:
    """Write records atomically (temp file, then rename); image paths are rebased to the output's folder."""
    root = Path(path).resolve().parent
    n = 0
    with atomic_file(path) as fh:
        for rec in records:
            fh.write(_dump(rec, root))
            n += 1
    return n


class ResumableWriter:
    """Append results in flushed chunks to `<out>.partial`; `finish()` renames it to `<out>`.

    A killed run leaves the partial file; the next run reads the ids already there (`done_ids`), drops a torn last line,
    and appends the rest. The final file appears only when every item is in, so `<out>` is complete or absent.
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.partial = partial_path(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.root = self.out.resolve().parent
        self.done_ids: set[str] = set()
        if self.partial.exists():
            self._recover()
        self._fh = self.partial.open("a", encoding="utf-8")

    def _recover(self) -> None:
        data = self.partial.read_bytes()
        keep = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
        if len(keep) != len(data):  # a torn last line from a kill mid-write: drop it, the item is redone
            with self.partial.open("r+b") as fh:
                fh.truncate(len(keep))
        for lineno, line in enumerate(jsonl_lines(decode_utf8(keep, str(self.partial))), start=1):
            if line.strip():
                try:
                    self.done_ids.add(str(json.loads(line)["id"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise RecordError(f"{self.partial}:{lineno}: <line>: unreadable; delete the partial file to start over")

    def write(self, records: Iterable[Record | dict]) -> None:
        with writing(self.partial):  # a full disk leaves a torn last line: dropped on resume, that item redone
            for rec in records:
                self._fh.write(_dump(rec, self.root))
                self.done_ids.add(rec.id if isinstance(rec, Record) else str(rec["id"]))
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def finish(self) -> Path:
        with writing(self.partial):
            self._fh.close()
            os.replace(self.partial, self.out)
        return self.out

    def close(self) -> None:
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError:  # flushing what a full disk refused: the partial file is cut at a line, resume redoes it
                pass

    def __enter__(self) -> "ResumableWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def existing_ids(path: str | Path) -> set[str]:
    """Ids already present in a (possibly partial) output: the resume helper for stages that append."""
    path = Path(path)
    if not path.exists():
        return set()
    ids = set()
    for rec in iter_records(path, check_images=False, allow_outside=True, tolerate_torn_tail=True):
        ids.add(rec.id)
    return ids
