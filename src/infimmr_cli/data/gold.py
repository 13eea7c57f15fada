"""Pure text helpers that turn a dataset's raw question and gold into record fields (no I/O, no model).

Every function here raises ValueError with a short reason; the readers in benchmarks.py add the `file:row: field:` place.
"""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase

# `<image>`, `<image1>`, `<image_2>`: the placeholders ViRL39K, MathVision and OlympiadBench put in question text.
_PLACEHOLDER = re.compile(r"[ \t]*<image(?:_?\d+)?>[ \t]*", re.IGNORECASE)


def strip_image_placeholders(text: str) -> str:
    """Remove image placeholders without leaving gaps: `In the diagram <image_1>, find` -> `In the diagram, find`;
    a placeholder alone on its line takes the line with it. Outer whitespace trimmed."""

    def gap(m: re.Match) -> str:
        before = text[m.start() - 1] if m.start() > 0 else "\n"
        after = text[m.end()] if m.end() < len(text) else "\n"
        return "" if before == "\n" or after == "\n" or after in ",.;:?!)" else " "

    out = _PLACEHOLDER.sub(gap, text)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def _matching_brace(text: str, open_at: int) -> int:
    """Index of the `}` that closes the `{` at `open_at`; -1 when unbalanced."""
    depth = 0
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue  # an escaped brace \{ or \} does not count
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return i
    return -1


def unwrap_boxed(text: str) -> str:
    """Replace every `\\boxed{X}` (or `\\fbox{X}`) by X, nested braces safe; text without a box comes back trimmed.

    `\\boxed{\\frac{1}{2}}` -> `\\frac{1}{2}`; `\\boxed{1}, \\boxed{2}` -> `1, 2`. Unbalanced braces raise ValueError.
    """
    out, i = [], 0
    pattern = re.compile(r"\\(?:boxed|fbox)\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            break
        close = _matching_brace(text, m.end() - 1)
        if close < 0:
            raise ValueError(f"unbalanced braces in {text!r}")
        out.append(text[i:m.start()])
        out.append(unwrap_boxed(text[m.end():close]))  # a box inside a box: unwrap it too
        i = close + 1
    result = "".join(out).strip()
    if len(result) >= 2 and result[0] == "$" and result[-1] == "$":
        result = result.strip("$").strip()
    return result


def strip_dollars(text: str) -> str:
    """`$x$` -> `x`; `$3$, $5$` -> `3, 5` (OlympiadBench wraps each final answer in math mode)."""
    t = text.strip()
    if len(t) >= 2 and t.startswith("$") and t.endswith("$"):
        t = re.sub(r"\$\s*,\s*\$", ", ", t)
        t = t.strip("$").strip()
    return t


_LETTER_GOLD = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:]?$")


def normalise_letter(text: str) -> str | None:
    """`C`, `(C)`, `C.`, ` c ` -> `C`; anything that is not one option letter -> None."""
    m = _LETTER_GOLD.match(text.strip())
    return m.group(1).upper() if m else None


# One option per line: `A: x`, `A. x`, `(A) x`, `A) x`, `A．x`. The letter must be followed by its delimiter.
_OPTION_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])\s*[.:：．)])\s*(.*?)\s*$")
_INLINE_OPTION = re.compile(r"\(([A-Z])\)\s*")


def parse_choices(text: str) -> list[str] | None:
    """The option texts listed in a question, in letter order, or None when it lists none.

    Reads the last run of lines `A: ...`, `B: ...` (also `A.`, `(A)`, `A)`) that starts at A and goes on letter by
    letter, with at least two options; MathVerse writes `Choices:\\nA:50°\\nB:40°...`. Failing that, one line of inline
    options `(A) x (B) y ...`.
    """
    best: list[str] | None = None
    run: list[str] = []
    for line in text.split("\n"):
        m = _OPTION_LINE.match(line)
        letter = (m.group(1) or m.group(2)) if m else None
        if m and letter == LETTERS[len(run)] and len(run) < len(LETTERS):
            run.append(m.group(3))
            continue
        if m and letter == "A":
            run = [m.group(3)]
            continue
        if len(run) >= 2:
            best = run
        run = []
    if len(run) >= 2:
        best = run
    if best:
        return best
    for line in reversed(text.split("\n")):
        parts = _INLINE_OPTION.split(line)
        # parts = [before, 'A', text, 'B', text, ...]
        letters = parts[1::2]
        if len(letters) >= 2 and "".join(letters) == LETTERS[: len(letters)]:
            return [p.strip() for p in parts[2::2]]
    return None


def with_choices(question: str, choices: list[str]) -> str:
    """The question followed by its options, for exports that keep options in their own column."""
    lines = [f"({LETTERS[i]}) {c}" for i, c in enumerate(choices)]
    return question.rstrip() + "\nChoices:\n" + "\n".join(lines)


def letter_choices(letter: str, at_least: int = 4) -> list[str]:
    """Bare letters `A..` up to `letter` (at least `at_least`): the options when they are printed in the image only."""
    n = max(at_least, LETTERS.index(letter) + 1)
    return list(LETTERS[:n])


def parse_tolerance(error: str | None) -> list[float] | None:
    """OlympiadBench's `error`: None or '' -> None; `1e-2` -> [0.01]; `0.1,0.2` -> [0.1, 0.2]. Bad numbers raise."""
    if error is None:
        return None
    text = str(error).strip()
    if not text:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"{error!r} is not a number or comma-separated numbers") from None
    return out


_PLAIN_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$|^-?\\[dt]?frac\{\d+\}\{\d+\}$")
_PLAIN_WORDS = re.compile(r"^[A-Za-z][A-Za-z'\- ]*$")


def gold_answer_type(gold: str) -> str:
    """`math` when math-verify parses the gold into a math object, else `string`.

    Plain words (`blue`, `Yes`, `red car`) are `string` even though math-verify would read them as products of symbols;
    a single letter counts as a word here only from two letters on, so `x` stays math. Numbers skip the parser (fast).
    """
    g = gold.strip()
    if not g:
        return "string"
    if _PLAIN_NUMBER.match(g):
        return "math"
    if _PLAIN_WORDS.match(g) and any(len(w) > 1 for w in re.split(r"[ \-']", g)):
        return "string"
    from math_verify import parse

    parsed = parse(g if "$" in g else f"${g}$", parsing_timeout=5)
    return "math" if parsed else "string"
