"""Pure text helpers that turn a dataset's raw question and gold into record fields (no I/O, no model).

Every function here raises ValueError with a short reason; the readers in sources.py add the `file:row: field:` place.
The repairs (issue 10 §1) live here too, each for a defect with one right reading: a JSON `\\f` escape that ate the
`\\f` of `\\frac`, units written in braces after a gold, duplicated options, several gold letters, a gold written as
the option's text.
"""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase

# `<image>`, `<image1>`, `<image_2>`, `<img_3362>`: the placeholders ViRL39K, MathVision and OlympiadBench (HF export
# and the GitHub JSON files) put in question text.
_PLACEHOLDER = re.compile(r"[ \t]*<(?:image(?:_?\d+)?|img_\d+)>[ \t]*", re.IGNORECASE)
_ONLY_PLACEHOLDER = re.compile(r"\s*<(?:image(?:_?\d+)?|img_\d+)>\s*", re.IGNORECASE)


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

    # `\$36` is a currency sign, not a math delimiter: such a gold is read in math mode like any other.
    parsed = parse(g if "$" in g.replace("\\$", "") else f"${g}$", parsing_timeout=5)
    return "math" if parsed else "string"


# ---------------------------------------------------------------- repairs (issue 10 §1)

# A JSON string written with `"\frac"` instead of `"\\frac"` decodes `\f` to a form feed (U+000C): `\x0crac{36}{13}`.
# Form feed, backspace, bell and vertical tab never belong in a gold, so each is always the start of a LaTeX command.
# Tab, carriage return and newline can be real whitespace: they are repaired only before the rest of a command name.
_ALWAYS = {"\x0c": "\\f", "\x08": "\\b", "\x07": "\\a", "\x0b": "\\v"}
_TAILS = {"\t": ("imes", "heta", "ext", "frac", "an", "riangle", "au", "ilde", "o "),
          "\r": ("ight", "ho", "m ", "m{")}


def repair_escapes(text: str) -> str:
    """Undo JSON escapes that ate a backslash command: `\\x0crac{1}{2}` -> `\\frac{1}{2}`, `\\x09imes` -> `\\times`."""
    out = []
    for i, ch in enumerate(text):
        if ch in _ALWAYS:
            out.append(_ALWAYS[ch])
        elif ch in _TAILS and text.startswith(_TAILS[ch], i + 1):
            out.append("\\" + {"\t": "t", "\r": "r"}[ch])
        else:
            out.append(ch)
    return "".join(out)


# `69{degrees}`, `8\sqrt{3}{squareinches}`, `\frac{3}{4}\pi{inches}`: MATH-V writes some units as a trailing brace
# group. A brace group right after a command that takes a text argument (`\text{cm}`) is that argument, not a unit.
_UNIT_BRACES = re.compile(r"\{\s*([A-Za-z][A-Za-z ]{2,})\s*\}\s*$")
_TEXT_COMMANDS = ("text", "mathrm", "textrm", "textbf", "mathbf", "mbox", "operatorname", "mathit", "textit", "hbox")


def split_unit_braces(gold: str) -> tuple[str, str | None]:
    """(`69`, `degrees`) for `69{degrees}`; the gold unchanged and None when it has no trailing unit group."""
    m = _UNIT_BRACES.search(gold)
    if not m or m.start() == 0:
        return gold, None
    before = gold[: m.start()]
    cmd = re.search(r"\\([A-Za-z]+)\s*$", before)
    if cmd and cmd.group(1) in _TEXT_COMMANDS or before.rstrip().endswith(("^", "_")):
        return gold, None
    return before.rstrip(), m.group(1).strip()


_SEVERAL = re.compile(r"^\(?([A-Z])\)?(?:\s*(?:,|;|and|&|\s)\s*\(?([A-Z])\)?)+$")


def several_letters(text: str) -> list[str] | None:
    """[`C`, `D`] for `C\\nD`, `C, D`, `(A) and (C)`: two or more distinct option letters; None otherwise."""
    t = text.strip()
    if not _SEVERAL.match(t):
        return None
    letters = re.findall(r"[A-Z]", t.replace("and", ""))
    if len(set(letters)) < 2 or len(set(letters)) != len(letters):
        return None
    return sorted(letters)


def is_image_tag(text: str) -> bool:
    """An option or question that is nothing but image placeholders: `<image2>`."""
    return bool(text) and bool(re.fullmatch(rf"(?:{_ONLY_PLACEHOLDER.pattern})+", text, re.IGNORECASE))


def option_text_letter(gold_text: str, choices: list[str]) -> str | None:
    """The letter of the one option whose text is the gold: exact, then trimmed, then case- and space-folded."""
    for norm in (lambda s: s, str.strip, lambda s: " ".join(s.split()).casefold()):
        hits = [i for i, c in enumerate(choices) if norm(c) == norm(gold_text)]
        if len(hits) == 1:
            return LETTERS[hits[0]]
        if len(hits) > 1:
            return None
    return None


def dedupe_options(options: list[str]) -> tuple[list[str], dict[str, str]]:
    """Options with repeats removed (first kept) and old letter -> new letter: `[9, 12, 18, 18]` -> `[9, 12, 18]`,
    {A: A, B: B, C: C, D: C}. Either duplicated letter is the same option, so both map to the one that is kept."""
    unique: list[str] = []
    mapping: dict[str, str] = {}
    for i, opt in enumerate(options):
        key = " ".join(opt.split())
        found = next((j for j, u in enumerate(unique) if " ".join(u.split()) == key), None)
        if found is None:
            unique.append(opt)
            found = len(unique) - 1
        mapping[LETTERS[i]] = LETTERS[found]
    return unique, mapping


def resolve_choice(gold: str, options: list[str], gold_is_text: bool = False) -> tuple[str, list[str], list[str]]:
    """(answer, options, repairs) for a multiple-choice gold against its options (issue 10 §1).

    answer is one letter, or for several required letters (`C\\nD`) the sorted letters joined `C, D`. Duplicated options
    are merged (the gold of either copy becomes the kept one). A gold that is an option's text becomes its letter.
    `gold_is_text`: the source writes golds as option text (MathVista), so text is tried before a letter reading.
    repairs names what was done: `duplicate options`, `several letters`, `option text -> letter`.
    Raises ValueError when no reading fits.
    """
    repairs: list[str] = []
    unique, mapping = dedupe_options(options)
    if len(unique) != len(options):
        repairs.append("duplicate options")
    g = gold.strip()
    letter = normalise_letter(g)
    text_letter = option_text_letter(g, options)
    if text_letter is None and len(unique) != len(options):
        text_letter = option_text_letter(g, unique)
        text_letter = next((old for old, new in mapping.items() if new == text_letter), None) if text_letter else None
    in_range = letter is not None and letter in LETTERS[: len(options)]
    if gold_is_text and text_letter is not None:
        return mapping[text_letter], unique, repairs
    if in_range:
        return mapping[letter], unique, repairs
    several = several_letters(g)
    if several and all(x in LETTERS[: len(options)] for x in several):
        merged = sorted({mapping[x] for x in several})
        if len(merged) > 1:
            return ", ".join(merged), unique, repairs + ["several letters"]
        return merged[0], unique, repairs + ["duplicate options"]
    if text_letter is not None:
        return mapping[text_letter], unique, repairs + ([] if gold_is_text else ["option text -> letter"])
    raise ValueError(f"gold {gold!r} is neither a letter among the {len(options)} options nor one option's text")
