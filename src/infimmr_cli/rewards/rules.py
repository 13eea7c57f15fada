"""Rule-based rewards (paper §3.2, §5.1; DESIGN §3): the training reward and the eval metric are the same `score()`.

    overall = 0.1 * format + 0.9 * accuracy        (w_f = 0.1, w_a = 0.9; accuracy is 0 unless format == 1)

How we read the paper's w_t = 0.2 / w_p = 0.8 split (§5.1: "type matching" and "exact parameter matching"): inside the
math and choice accuracies, 0.2 is paid for an answer of the right *type* and 0.8 more for the right *value*, so accuracy
is 0, 0.2 or 1.0. The right value always implies the right type (a correct answer never loses the 0.2 because our kinds
are coarser or finer than math-verify's notion of equality). String answers have no type to match: 1.0 or 0.0.

Format (R_format, 1 or 0). Accepted, and nothing else:
- the whole completion is `<think>REASONING</think>` then `<answer>ANSWER</answer>`, with only whitespace before, between
  and after the two blocks (text outside them, e.g. a trailing sentence, fails);
- each of the four tags appears exactly once (a nested or repeated tag fails), tags are case-sensitive;
- REASONING and ANSWER each hold some non-whitespace text (an empty think or empty answer fails).

The extracted answer (key "extracted") is ANSWER stripped, then:
- boxes: if it holds `\\boxed{...}` (or `\\fbox{...}`), the LAST complete top-level box counts; a box whose content is
  itself a box is unwrapped again (`\\boxed{\\boxed{5}}` -> `5`). A box with unbalanced braces is not a box: the text is
  kept as it is (and then usually fails to parse);
- math delimiters wrapping the whole answer are dropped: `$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]`.

Accuracy by `record.answer_type`:
- math: math-verify (`parse` then `verify`) of the extracted answer against the gold. Type: the prediction parses to a
  math object of the gold's kind, one of: number (no free symbols: `3`, `\\sqrt{2}`, `2\\pi/3`, `50\\%`, `\\infty`),
  expression (free symbols: `x^2+1`), relation (equations and inequalities: `y=2x+1`, `x>3`), collection (sets,
  intervals, tuples, matrices: `\\{1,2\\}`, `(3,\\infty)`, `1, 2`). An assignment `x = 3` has the kind of its right side
  (math-verify also accepts it for gold `3`). A gold math-verify cannot parse is compared as a string (1.0 or 0.0).
  Read before parsing, on both sides: `\\$` is a currency sign, not a math delimiter (`\\$36` equals `36`); an answer
  written as a label then `$=` (`Slope $=\\frac{1}{5}$`, `Center $=(20,10)$`) or starting with `=` (`=\\frac{7}{4}`)
  means the value after `=`. A number that is not one (`\\frac{1}{0}`, `0/0`, `NaN`) has no kind: it never earns the
  type credit. A numeric power with an exponent over MAX_EXPONENT (`10^{10^{10^{10}}}`) is refused before any value is
  computed (it scores as unreadable; such a gold falls back to the string rule).
  Per-item rules from `record.meta` (set by `prepare`; see REFERENCE-NOTES "How the official evaluations decide"):
  * `precision` (int): when gold and prediction are both numbers, right iff both round to the same value at that many
    decimals (MathVista), Python `round` on floats as its official script does; this replaces math-verify's value check;
  * `tolerance` (float, or a list with one float per answer): when both are numbers, right iff
    |gold - pred| <= 1.01*tol (OlympiadBench's judge, whose 1% slack absorbs float error at the boundary), computed in
    sympy; this replaces math-verify's value check. With both keys set, either rule suffices;
  * MathVision records (`record.source` `mathvision/...`): numbers are also right when they round to the same value at
    2 decimals (its official `is_equal`: `0.33` for `\\frac{1}{3}`);
  * `multiple_answers` (bool): the gold joins several answers with commas; the prediction is split on its top-level
    commas (outside brackets and braces) and must give the same number of answers, each matching a different gold
    answer in any order (each pair judged by the rules above, with that gold answer's tolerance). A predicted answer
    holding `\\pm` stands for two answers, with `+` and with `-` (`\\pm 2` for gold `2, -2`). Type: same count and
    the same multiset of kinds.
- choice: the letter given, among `record.choices` (A, B, ... in order). Accepted spellings, upper-case only:
  `B`, `(B)`, `B.`, `B:`, `B)`, and any of these followed by whitespace and text (`B. 45°`, `(B) 45°`, `B: text`);
  the letter decides, any text after it is ignored. A letter outside the record's choices is read as option text
  (MathVision has options `G`, `$S$`), else scores 0. The option TEXT
  alone (MathVerse/MathVista answers often give it) counts as that option when it equals exactly one option's text
  after string normalisation (see string), math delimiters and `\\text{...}` wrappers dropped on both sides
  (`$\\text{Yes}$` is `Yes`). Options with the same text are one answer: either letter, or the text, is right when
  that text is the gold option's (real rows repeat options, e.g. MathVista `['9', '12', '18', '18']`).
  0.2 for a valid option, 0.8 more for the gold one.
- string: lower-cased, trimmed, inner whitespace collapsed, exact match: 1.0 or 0.0. A string gold holding a currency
  sign that reads as a number (`\\$18.90`) also accepts its value (1.0 for `18.9`).

Unicode: full-width forms (`１２`, `Ｂ`, the ideographic space) are folded to ASCII for every answer type. For math only,
`√x` becomes `\\sqrt{x}`, superscript digits become powers (`x²` -> `x^{2}`), and `×`, `÷`, `·`, `≤`, `≥`, `≠`, `∞`
become their LaTeX commands (`π`, `°`, `−` are read by math-verify itself).

`score()` does no timeout handling: math-verify's own signal-based timeouts are switched off (`MATH_VERIFY_TIMEOUT`),
because signal.alarm only works in a main thread. Protection comes from `score_batch`, which runs items in worker
processes and kills one that passes its timeout (see rewards/scoring.py).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any, Callable

from infimmr_cli.data.records import Record

W_FORMAT, W_ACCURACY = 0.1, 0.9
W_TYPE, W_VALUE = 0.2, 0.8
# math-verify's own per-call timeout (seconds). None inside our workers: its signal.alarm breaks outside the main thread,
# and the pool enforces a hard timeout instead. The bench's sequential baseline sets it, as peer projects run it.
MATH_VERIFY_TIMEOUT: int | None = None
# A predicted math answer longer than this, or nesting brackets deeper, is not handed to sympy (it scores as unreadable):
# no real final answer is that big, and such strings are what make the parser run for seconds or forever.
MAX_ANSWER_CHARS, MAX_NESTING = 1000, 50
# A numeric power whose exponent exceeds this is refused before sympy computes any value: `10^{10^{10}}` makes
# math-verify's comparison run for minutes (2^{100000} still takes well under a second).
MAX_EXPONENT = 100_000
# Sources whose official rule also accepts numbers equal at 2 decimals (MATH-V `is_equal`).
ROUND2_SOURCES = ("mathvision",)

log = logging.getLogger(__name__)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_FORMAT = re.compile(r"\A\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*\Z", re.DOTALL)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_WRAPS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that its timeout is off; that is our choice (the pool enforces one)."""

    def filter(self, rec: logging.LogRecord) -> bool:
        return not str(rec.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


# ---------------------------------------------------------------------------------------------------------------- format
def answer_block(completion: str) -> str | None:
    """The stripped text inside <answer>...</answer> when the completion has the required format, else None."""
    m = _FORMAT.match(completion)
    if not m:
        return None
    think, answer = m.group("think"), m.group("answer")
    if any(tag in think or tag in answer for tag in _TAGS):  # a nested or repeated tag
        return None
    if not think.strip() or not answer.strip():
        return None
    return answer.strip()


def last_box(text: str) -> str | None:
    """Content of the last complete top-level \\boxed{...}/\\fbox{...} in `text`, or None (none, or braces unbalanced)."""
    found, pos = None, 0
    while (m := _BOX.search(text, pos)) is not None:
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:  # unbalanced from here on: no later box can close either
            break
        found, pos = text[m.end(): i - 1], i  # skip boxes nested inside this one: top level only
    return found


def extract_answer(answer: str) -> str:
    """The answer text scored: the last box (unwrapped while it holds a box), then whole-answer math delimiters dropped."""
    s = answer.strip()
    while (inner := last_box(s)) is not None:
        s = inner.strip()
    for left, right in _WRAPS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left): -len(right)].strip()
            break
    return s


# ------------------------------------------------------------------------------------------------------------- unicode
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPER_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_SQRT_ARG = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z]|\([^()]*\)|\{[^{}]*\})")
_SYMBOLS = {"×": r"\times ", "÷": r"\div ", "·": r"\cdot ", "≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "∞": r"\infty ",
            "√": r"\sqrt"}


def fold_width(s: str) -> str:
    """Full-width ASCII forms (U+FF01-FF5E) and the ideographic space to plain ASCII."""
    return s.translate(_FULL_WIDTH)


def latexify_unicode(s: str) -> str:
    """Unicode math symbols math-verify does not read, written as LaTeX (`√2` -> `\\sqrt{2}`, `x²` -> `x^{2}`)."""
    s = _SUPER_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPTS) + "}", fold_width(s))
    s = _SQRT_ARG.sub(lambda m: r"\sqrt{" + m.group(1).strip("{}") + "}", s)
    for sym, tex in _SYMBOLS.items():
        s = s.replace(sym, tex)
    return s


def normalize_string(s: str) -> str:
    """The string rule's normal form: width-folded, lower-cased, trimmed, whitespace runs collapsed to one space."""
    return " ".join(fold_width(s).lower().split())


# ---------------------------------------------------------------------------------------------------------------- math
def nesting_depth(text: str) -> int:
    """The deepest nesting of (), [], {} in `text` (unbalanced closers ignored)."""
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest


# `Slope $=\\frac{1}{5}$`, `Center $=(20,10)$`, `$=(4,0)$`: a label (words only, or none) then `$=`; or a leading `=`.
_LABEL_EQUALS = re.compile(r"\A\s*(?:(?:[A-Za-z][A-Za-z ]*?)?\s*\$\s*=(?P<a>.*?)\$?|=(?P<b>.*?))\s*\Z", re.DOTALL)
_CURRENCY = re.compile(r"\\\$\s*")


def strip_label_equals(text: str) -> str:
    """The value after `=` in `Slope $=\\frac{1}{5}$`, `Center $=(20,10)$` or `=\\frac{7}{4}`; other text unchanged."""
    m = _LABEL_EQUALS.match(text)
    if not m:
        return text
    value = (m.group("a") if m.group("a") is not None else m.group("b")).strip()
    return value or text


def has_math_delimiter(text: str) -> bool:
    """Whether `text` holds a math delimiter: `$`, `\\(` or `\\[`; an escaped `\\$` is a currency sign, not one."""
    return any(d in text.replace("\\$", "") for d in ("$", "\\(", "\\["))


def huge_power(obj: Any) -> bool:
    """Whether `obj` holds a numeric power whose exponent exceeds MAX_EXPONENT (inner powers checked first, so no
    exponent is evaluated before its own powers are known to be small)."""
    from sympy import Basic, MatrixBase, Pow, postorder_traversal

    items = list(obj) if isinstance(obj, MatrixBase) else [obj]
    for item in items:
        if not isinstance(item, Basic):
            continue
        for node in postorder_traversal(item):
            if isinstance(node, Pow) and not node.exp.free_symbols:
                try:
                    size = abs(complex(node.exp.evalf(15)))
                except (TypeError, ValueError, OverflowError):
                    return True
                if not size <= MAX_EXPONENT:  # also catches nan
                    return True
    return False


def _parse_math(text: str, guard: bool = True) -> Any | None:
    """The math object math-verify reads from an answer string (sympy Basic or Matrix), or None.

    With `guard`, answers over MAX_ANSWER_CHARS or nested deeper than MAX_NESTING are refused before parsing. Powers
    with a huge numeric exponent are refused on both sides (`huge_power`), before any value is computed."""
    if guard and (len(text) > MAX_ANSWER_CHARS or nesting_depth(text) > MAX_NESTING):
        return None
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
    from sympy import Basic, MatrixBase

    text = latexify_unicode(strip_label_equals(text))
    if has_math_delimiter(text):
        text = _CURRENCY.sub("", text)
    else:
        text = f"${_CURRENCY.sub('', text)}$"
    found = parse(text, extraction_config=[LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
                  parsing_timeout=MATH_VERIFY_TIMEOUT)
    obj = found[0] if found and isinstance(found[0], (Basic, MatrixBase)) else None
    return None if obj is None or huge_power(obj) else obj


@lru_cache(maxsize=512)
def _parse_gold(text: str) -> Any | None:
    # Cached: a rollout batch scores 16 completions against each gold. sympy objects are immutable.
    return _parse_math(text, guard=False)  # golds are trusted: no size limit


def math_kind(obj: Any) -> str:
    """number | expression | relation | collection | undefined: what `type matching` compares (module docstring).

    `undefined` (`\\frac{1}{0}`, `0/0`, a symbol named NaN) matches no gold's kind: it is not a number."""
    from math_verify.grader import is_assignment_relation, is_relation
    from sympy import Basic, Eq, MatrixBase, S, Set, Symbol, Tuple

    if isinstance(obj, Basic) and (obj.has(S.NaN, S.ComplexInfinity)
                                   or any(str(s).lower() == "nan" for s in obj.atoms(Symbol))):
        return "undefined"
    if isinstance(obj, (MatrixBase, Set, Tuple)):
        return "collection"
    if isinstance(obj, Eq) and is_assignment_relation(obj):
        return math_kind(obj.rhs)
    if is_relation(obj):
        return "relation"
    if isinstance(obj, Basic) and obj.free_symbols:
        return "expression"
    return "number"


# OlympiadBench's judge accepts |gold - pred| <= 1.01 * tolerance (eval/auto_scoring_judge.py, numerical_equal).
TOLERANCE_SLACK = 1.01


def _rounds_equal(gold: Any, pred: Any, digits: int) -> bool:
    try:
        return round(float(gold), digits) == round(float(pred), digits)
    except (TypeError, ValueError, OverflowError):
        return False


def _numeric_rule(gold: Any, pred: Any, precision: int | None, tol: float | None) -> bool:
    """The per-item numeric rules (MathVista precision, OlympiadBench tolerance); both sides are numbers."""
    import sympy

    ok = precision is not None and _rounds_equal(gold, pred, precision)
    if not ok and tol is not None:
        diff = sympy.N(sympy.Abs(gold - pred), 30)
        ok = bool(diff.is_real and diff.is_finite and float(diff) <= tol * TOLERANCE_SLACK)
    return ok


def _same_value(gold: Any, pred: Any, precision: int | None, tol: float | None, round2: bool = False) -> bool:
    numbers = math_kind(gold) == math_kind(pred) == "number"
    if (precision is not None or tol is not None) and numbers:
        return _numeric_rule(gold, pred, precision, tol)
    if round2 and numbers and _rounds_equal(gold, pred, 2):
        return True
    from math_verify import verify

    return bool(verify(gold, pred, timeout_seconds=MATH_VERIFY_TIMEOUT))


def expand_plus_minus(answers: list[str]) -> list[str]:
    """Each answer holding `\\pm` becomes two, with `+` and with `-` (OlympiadBench's trans_plus_minus_sign)."""
    out = []
    for a in answers:
        out.extend([a.replace("\\pm", "+"), a.replace("\\pm", "-")] if "\\pm" in a else [a])
    return out


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside (), [], {} (so intervals, tuples and sets stay whole); empty parts dropped."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _tolerances(meta: dict, n: int, rid: str) -> list[float | None]:
    tol = meta.get("tolerance")
    if tol is None:
        return [None] * n
    tols = [float(t) for t in tol] if isinstance(tol, (list, tuple)) else [float(tol)]
    if len(tols) == 1:
        return tols * n
    if len(tols) != n:
        raise ValueError(f"record {rid!r}: meta.tolerance: {len(tols)} values for {n} answers")
    return tols


def _perfect_matching(ok: list[list[bool]]) -> bool:
    """Whether every gold i can be paired with a distinct prediction j with ok[i][j] (Kuhn's augmenting paths)."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j, good in enumerate(ok[i]):
            if good and j not in seen:
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(ok)))


_NAN_TEXT = re.compile(r"\A\s*(?:\\(?:mathrm|text|operatorname)\{\s*)?nan\s*\}?\s*\Z", re.IGNORECASE)


def math_accuracy(pred: str, record: Record) -> float:
    """0, 0.2 (right kind) or 1.0 (right value) for a math answer; the meta rules as in the module docstring."""
    meta = record.meta or {}
    precision = None if meta.get("precision") is None else int(meta["precision"])
    golds = split_top_level(record.answer) if meta.get("multiple_answers") else [record.answer]
    preds = split_top_level(pred) if meta.get("multiple_answers") else [pred]
    if len(golds) > 1:
        preds = expand_plus_minus(preds)
    tols = _tolerances(meta, len(golds), record.id)
    round2 = record.source.split("/")[0] in ROUND2_SOURCES
    gold_objs = [_parse_gold(g) for g in golds]
    if any(g is None for g in gold_objs):  # a gold math-verify cannot read: plain string rule
        return 1.0 if normalize_string(pred) == normalize_string(record.answer) else 0.0
    if len(preds) != len(golds):
        return 0.0
    if any(_NAN_TEXT.match(p) for p in preds):  # read as a product of symbols N*a*N: not a number, no type credit
        return 0.0
    pred_objs = [_parse_math(p) for p in preds]
    if any(p is None for p in pred_objs):
        return 0.0
    ok = [[_same_value(g, p, precision, tols[i], round2) for p in pred_objs] for i, g in enumerate(gold_objs)]
    right = _perfect_matching(ok)
    right_kind = right or sorted(map(math_kind, gold_objs)) == sorted(map(math_kind, pred_objs))
    return W_TYPE * right_kind + W_VALUE * right


# -------------------------------------------------------------------------------------------------------------- choice
_LETTER = re.compile(r"\A(?:\((?P<p>[A-Z])\)|(?P<l>[A-Z])(?=[.:)]|\Z))[.:)]?(?:\s+.*)?\Z", re.DOTALL)
_TEXT_WRAP = re.compile(r"\A\\(?:text|textbf|mathrm|mathbf)\{(.*)\}\Z|\A\*\*(.*)\*\*\Z", re.DOTALL)


def _unwrap_text(s: str) -> str:
    while (m := _TEXT_WRAP.match(s)) is not None:
        s = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
    return s


def option_text_key(text: str) -> str:
    """An option text (or an answer giving one) in the form compared: math delimiters and `\\text{}` wrappers dropped,
    then the string normal form (`$\\text{Yes}$` -> `yes`)."""
    s = fold_width(text).strip()
    while True:
        inner = _unwrap_text(extract_answer(s))
        if inner == s:
            return normalize_string(s)
        s = inner


def option_letter(answer: str, record: Record) -> str | None:
    """The option an answer names (a letter among the record's choices), or None; spellings in the module docstring."""
    s = _unwrap_text(fold_width(answer).strip())
    letters = record.choice_letters()
    m = _LETTER.match(s)
    if m:
        letter = m.group("p") or m.group("l")
        if letter in letters:
            return letter
    # Not a valid letter: maybe an option's text (MathVision options can be letters outside A-E: `G`, `$S$`).
    wanted = option_text_key(s)
    hits = [letters[i] for i, c in enumerate(record.choices or []) if option_text_key(c) == wanted]
    return hits[0] if hits else None  # several hits: options with the same text are one answer (see choice_accuracy)


def choice_accuracy(pred: str, record: Record) -> float:
    """0.2 for a valid option, 1.0 for the gold one; an option whose text is the gold option's text is the gold one
    too (real rows repeat options: MathVista `['9', '12', '18', '18']`, gold `18`: either letter is right)."""
    letter = option_letter(pred, record)
    if letter is None:
        return 0.0
    gold = record.answer.strip()
    right = letter == gold
    letters, choices = record.choice_letters(), record.choices or []
    if not right and gold in letters:
        right = option_text_key(choices[letters.index(letter)]) == option_text_key(choices[letters.index(gold)])
    return W_TYPE + W_VALUE * right


def string_accuracy(pred: str, record: Record) -> float:
    if normalize_string(pred) == normalize_string(record.answer):
        return 1.0
    # A currency gold (`\$32,\!348`) that a prepare reading `\$` as math mode typed `string`: its value counts too.
    if "\\$" in record.answer and _parse_gold(record.answer) is not None:
        return 1.0 if math_accuracy(pred, record) >= 1.0 else 0.0
    return 0.0


ACCURACY: dict[str, Callable[[str, Record], float]] = {
    "math": math_accuracy, "choice": choice_accuracy, "string": string_accuracy}


def zero_score(**marker: Any) -> dict[str, Any]:
    """All keys zero (what a timed-out or failed item scores), plus a marker such as timeout=True."""
    return {"overall": 0.0, "format": 0.0, "accuracy": 0.0, "extracted": None, **marker}


def score(completion: str, record: Record) -> dict[str, Any]:
    """{"overall", "format", "accuracy", "extracted"} for one completion (rules in the module docstring).

    overall = 0.1*format + 0.9*accuracy, accuracy = 0 unless format = 1; "extracted" is the answer string scored, or None.
    """
    block = answer_block(completion)
    if block is None:
        return zero_score()
    extracted = extract_answer(block)
    accuracy = float(ACCURACY[record.answer_type](extracted, record))
    return {"overall": round(W_FORMAT + W_ACCURACY * accuracy, 10), "format": 1.0, "accuracy": round(accuracy, 10),
            "extracted": extracted}
