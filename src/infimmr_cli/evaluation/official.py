"""Each benchmark's OFFICIAL rule-based scoring, re-implemented from its published source (pure: no I/O).

`official_verdict(completion, record) -> True | False | None` (None: the official rule needs an LLM judge, e.g.
MathVerse free-form; such items are counted apart, never guessed). The text judged is the model's answer: the
`<answer>` block when the completion has our format (the part a GPT extractor would pick), else the raw completion,
which each benchmark's own extraction rules then read. Sources (read, not copied):

- MathVista `lupantech/MathVista` evaluation/calculate_score.py `normalize_extracted_answer` + `safe_equal`: a
  multi-choice answer becomes an option text (a letter, `(x)` anywhere in the answer, else the option nearest by edit
  distance), integers compare as `str(int(float(x)))`, floats as `str(round(float(x), precision))`, lists as `str(x)`,
  each against the gold string exactly as the benchmark writes it (so `1.50` at precision 2 never matches: quirk kept).
  Its answer extraction is a GPT call; we use our extracted answer (quick rules of extract_answer.py for a raw reply).
- MATH-V `mathllm/MATH-V` evaluation/evaluate.py (the answer clean-up) and utils.py `find_math_answer`, `is_equal`:
  right when `is_equal(gold, answer)` or `is_equal(option text at the gold letter, answer)`; numbers equal when they
  round to the same value at 2 decimals; tuples element-wise at 2 decimals.
- OlympiadBench `OpenBMB/OlympiadBench` eval/auto_scoring_judge.py `AutoScoringJudge.judge(gold, answer, precision)`:
  boxes joined by commas, symbol map, answers split on top-level commas, `\\pm` expanded, paired in any order;
  numbers within 1.01*tolerance (also gold/100 and gold*100), intervals, expressions (sympy), equations up to a factor.
  The tolerance list comes from `error` as its inference/judge.py builds it.
- MATH-500: math-verify (`huggingface/Math-Verify`) `verify(parse(gold), parse(answer))` with default settings.
- MathVerse `ZrrSkywalker/MathVerse` evaluation/score_answer_s2.py scores every item with a GPT judge (its rule-based
  `--quick_match` is exact string equality). Multi-choice items are scored by rule: right when the answer equals the
  gold (quick match) or names the gold option by letter or text, as the judge prompt's own examples decide (`B:2√3`
  for gold C is 0; the option text of the gold is 1); free-form items need the judge: None.

Where a record lacks a field the official rule needs, it is read from `record.meta` under the key named here:
`official_answer` (the gold string exactly as published, before prepare's repairs), MathVista `question_type`,
`answer_type`, `precision`; MathVerse `question_type`; OlympiadBench `final_answer` (raw list) and `error`.
README "Official scoring" lists every place where this still differs from the official scripts.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from infimmr_cli.data.records import Record
from infimmr_cli.rewards.rules import (MAX_ANSWER_CHARS, answer_block, extract_answer, has_math_delimiter, last_box,
                                       normalize_string)

NEEDS_JUDGE = None


def bench_of(record: Record) -> str:
    """The benchmark a record belongs to, from its `source` (`mathvista/testmini` -> `mathvista`)."""
    return record.source.split("/")[0]


def answer_text(completion: str) -> tuple[str, bool]:
    """(text judged, whether our format held): the `<answer>` block, else the raw completion."""
    block = answer_block(completion)
    return (block, True) if block is not None else (completion.strip(), False)


def official_gold(record: Record) -> str:
    """The gold exactly as the benchmark publishes it (meta.official_answer), else the record's answer."""
    raw = (record.meta or {}).get("official_answer")
    return str(raw) if raw is not None else record.answer


_SUBSCRIPT_COMMAND = re.compile(r"_\{\s*\\([A-Za-z]+)\s*\}")


def _sympy_value(text: str) -> Any:
    """The sympy object of a LaTeX string (math-verify's latex2sympy2_extended parser); raises when unreadable."""
    if len(text) > MAX_ANSWER_CHARS:
        raise ValueError("too long")
    from latex2sympy2_extended import latex2sympy

    from infimmr_cli.rewards.rules import huge_power

    # A command as a subscript (`R_{\\odot}`) is a name to sympy's parse_latex, an error to latex2sympy2_extended.
    obj = latex2sympy(_SUBSCRIPT_COMMAND.sub(r"_{\1}", text))
    if huge_power(obj):  # the official graders would try to compute it (or refuse it, OlympiadBench): never equal
        raise ValueError("power too large")
    return obj


def _python_int(obj: Any) -> bool:
    """Whether Python's `eval(str(obj))` gives an int: integers joined by +, -, * and non-negative integer powers."""
    from sympy import Function, Integer, Number, NumberSymbol, Pow

    return (bool(obj.is_integer) and all(isinstance(a, Integer) for a in obj.atoms(Number))
            and not obj.atoms(NumberSymbol) and not obj.atoms(Function)
            and all(p.exp.is_Integer and p.exp >= 0 for p in obj.atoms(Pow)))


def mathv_value(text: str) -> int | float:
    """What MATH-V's `eval(str(latex2sympy(x)))` yields for a number, without eval: an int where Python would give
    one, else a float; raises for anything with free symbols, no real value, or that its latex2sympy2 cannot read
    (a degree sign, an escaped dollar)."""
    if "\\circ" in text or "\\$" in text:
        raise ValueError("latex2sympy2 rejects this")
    obj = _sympy_value(text)
    if getattr(obj, "free_symbols", None):
        raise ValueError("not a number")
    return int(obj) if _python_int(obj) else float(obj.evalf(30))


# ------------------------------------------------------------------------------------------------------------ MathVista
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute cost 1), as the `Levenshtein` package computes it."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def mathvista_normalise(extraction: str, choices: list[str] | None, question_type: str, answer_type: str,
                        precision: Any) -> str | None:
    """calculate_score.py `normalize_extracted_answer` (ignore_empty_extractions off, its default)."""
    if question_type == "multi_choice":
        extraction = extraction.strip()
        choices = list(choices or [])
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if letter:
            extraction = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in letters:
            return choices[letters.index(extraction)]
        if not choices:
            return None
        dist = [edit_distance(extraction, c) for c in choices]
        return choices[dist.index(min(dist))]
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision)))
    except (TypeError, ValueError, OverflowError):
        return None
    if answer_type == "list":
        return str(extraction)
    return None  # the official code leaves the variable unset here (a crash); no such item in testmini


def _mathvista_extract(text: str, formatted: bool, record: Record, question_type: str, answer_type: str) -> str:
    """Our extracted answer; for a raw reply, extract_answer.py's rule-based steps, then the last box, else the text."""
    if formatted:
        return extract_answer(text)
    if question_type == "multi_choice" and text in (record.choices or []):
        return text
    if answer_type == "integer":
        try:
            return str(int(text))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(text))
        except ValueError:
            pass
    m = re.search(r'The answer is "(.*)"\.', text)
    if m:
        return m.group(1)
    box = last_box(text)
    return box.strip() if box is not None else text


def mathvista_gold_text(record: Record) -> str:
    """The gold as MathVista writes it: the option TEXT for a choice item (prepare stores the letter)."""
    raw = (record.meta or {}).get("official_answer")
    if raw is not None:
        return str(raw)
    if record.answer_type == "choice" and record.choices:
        return record.choices[record.choice_letters().index(record.answer)]
    return record.answer


def mathvista_verdict(completion: str, record: Record) -> bool:
    meta = record.meta or {}
    qtype = meta.get("question_type") or ("multi_choice" if record.answer_type == "choice" else "free_form")
    atype = meta.get("answer_type") or "text"
    text, formatted = answer_text(completion)
    extraction = _mathvista_extract(text, formatted, record, qtype, atype)
    prediction = mathvista_normalise(extraction, record.choices, qtype, atype, meta.get("precision"))
    return prediction is not None and prediction == mathvista_gold_text(record)


# -------------------------------------------------------------------------------------------------------------- MATH-V
def _mathv_is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _fix_sqrt(s: str) -> str:
    parts = s.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        out += "\\sqrt{" + part[0] + "}" + part[1:] if part and part[0] != "{" else "\\sqrt" + part
    return out


def _fix_fracs(s: str) -> str:
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part and part[0] == "{":
            out += part
            continue
        if len(part) < 2:
            return s
        a, b = part[0], part[1]
        out += ("{" + a + "}{" + b + "}" + part[2:]) if b != "{" else ("{" + a + "}" + b + part[2:])
    return out


def _fix_a_slash_b(s: str) -> str:
    if len(s.split("/")) != 2:
        return s
    a, b = s.split("/")
    try:
        ia, ib = int(a), int(b)
    except ValueError:
        return s
    return "\\frac{" + str(ia) + "}{" + str(ib) + "}" if s == f"{ia}/{ib}" else s


def mathv_strip_string(s: str) -> str:
    """utils.py `_strip_string` (MATH's normaliser as MATH-V ships it, its `sqrt` condition before _fix_fracs kept)."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2:
        s = s.split("=")[-1]
    if len(s.split("\\approx")) == 2:
        s = s.split("\\approx")[-1]
    if "sqrt" in s:
        s = _fix_sqrt(s)
    s = s.replace(" ", "")
    if "sqrt" in s:
        s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def mathv_find_math_answer(s: str) -> str:
    """utils.py `find_math_answer`: lower-cased, the greedy `oxed{(.*)}` content, value after `=`, units dropped."""
    s = s.lower()
    if "{}" in s:
        s = s.replace("{}", "")
    found = re.findall(r"oxed{(.*)}", s, flags=re.DOTALL)
    ans = found[-1] if found else s
    if ans.find("}") != -1 and (ans.find("{") == -1 or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"), ("\n", ""),
                     ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""), ("\\right", ""),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""), ("{units}", ""), ("units", ""),
                     ("{km}", ""), ("km", "")):
        ans = ans.replace(old, new)
    return mathv_strip_string(ans)


def mathv_model_answer(response: str) -> str:
    """evaluate.py's clean-up of a response into `model_answer`."""
    ans = response.strip()
    for c in "ABCDE":
        if ans.endswith((f" {c}.", f" ({c}).")) or ans.startswith((f"{c}\n", f"({c})\n", f"({c}) {c}\n")):
            ans = c
    tail = ans.split("is ")[-1].rstrip(".")
    if _mathv_is_number(tail):
        ans = tail
    if "oxed{" not in ans:
        for flag in ("the final answer is", "the answer is", "the correct answer is", "the answer should be"):
            for f in (flag, flag.replace("the", "The")):
                raw = ans
                ans = ans.split(f)[-1].strip()
                if f in raw:
                    ans = ans.split("\n")[0].split(". ")[0]
    elif ans.count("oxed{") > 1:
        ans = "\\boxed{" + ans.split("oxed{")[-1]
    ans = mathv_find_math_answer(ans)
    for c in "abcde":
        ans = ans.replace(f"({c})", c).replace("{" + c + "}", c)
    return ans.rstrip(".").lstrip(":").strip()


def _round2(text: str) -> str:
    if "infty" in text or text in ("a", "-a"):
        return text
    return str(round(mathv_value(text), 2))


def mathv_eval_tuple(s: str) -> str:
    """utils.py `eval_tuple`: `(a,b)` / `[a,b]` with each element rounded to 2 decimals; else unchanged."""
    parts = s[1:-1].split(",")
    try:
        if s[0] == "(" and s[-1] == ")" and len(parts) > 1:
            return "(" + ",".join(_round2(p) for p in parts) + ")"
        if s[0] == "[" and s[-1] == "]" and len(parts) > 1:
            return "[" + ",".join(_round2(p) for p in parts) + "]"
    except Exception:  # noqa: BLE001 - the official code returns the string unchanged on any failure
        return s
    return s


def mathv_is_equal(asw: str, gt_asw: str) -> bool:
    """utils.py `is_equal`."""
    asw, gt_asw = asw.lower(), gt_asw.lower()
    if not asw.replace(" ", "") or not gt_asw.replace(" ", ""):
        return False
    if gt_asw.strip() == asw.strip():
        return True
    asw, gt_asw = mathv_eval_tuple(asw), mathv_eval_tuple(gt_asw)
    if gt_asw == asw:
        return True
    try:
        return round(mathv_value(gt_asw), 2) == round(mathv_value(asw), 2)
    except Exception:  # noqa: BLE001 - the official code scores any failure as not equal
        return False


def mathvision_verdict(completion: str, record: Record) -> bool:
    gold = official_gold(record)
    value = ""
    if record.choices:
        letters = record.choice_letters()
        if record.answer in letters:
            value = record.choices[letters.index(record.answer)]
    text, formatted = answer_text(completion)
    # Our extraction first when the format held (a box inside the block is what evaluate.py looks for).
    extracted = extract_answer(text) if formatted else text
    # Deliberate difference (README): the gold option's text, given whole, is right even where MATH-V's clean-up would
    # mangle it first (`Basket 5` -> `5`); its is_equal means to accept the option text, as REFERENCE-NOTES reads it.
    if value and normalize_string(extracted) == normalize_string(extract_answer(value)):
        return True
    model = mathv_model_answer(extracted)
    return mathv_is_equal(gold, model) or mathv_is_equal(value, model)


# ------------------------------------------------------------------------------------------------------- OlympiadBench
_OLY_SYMBOLS = {"\\left": "", "\\right": "", "∶": ":", "，": ",", "$": "", "\\approx": "=", "\\simeq": "=",
                "\\sim": "=", "^\\prime": "'", "^{\\prime}": "'", "^\\circ": "", "%": ""}
_OLY_STRIP = "\n$,.:;^_=+`!@#$%^&*~，。"


def _oly_boxed(text: str) -> str:
    """auto_scoring_judge.py `extract_boxed_content`: every `\\boxed{}` joined with commas, else the `$...$` of the
    last line, else the text; unbalanced braces raise (the judge then scores False)."""
    out = ""
    for m in re.finditer(r"\\boxed{", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            raise ValueError("mismatched braces")
        out += text[m.end():i - 1] + ","
    if not out:
        found = re.findall(r"\$(.*?)\$", text.strip().split("\n")[-1])
        out = "".join(a + "," for a in found) if found else text
    return out


def _oly_symbols(expr: str) -> str:
    if "\\in " in expr:
        expr = expr.split("\\in ")[1]
    for old, new in _OLY_SYMBOLS.items():
        expr = expr.replace(old, new)
    expr = expr.strip(_OLY_STRIP)
    return re.sub(r"\\(?:mathrm|mathbf)\{~?([^}]*)\}", r"\1", expr)


def _oly_split(expr: str) -> list[str]:
    depth, parts, start = 0, [], 0
    for i, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(expr[start:i].strip())
            start = i + 1
    if start < len(expr):
        parts.append(expr[start:].strip())
    return parts


def _is_interval(e: str) -> bool:
    return e.startswith(("(", "[")) and e.endswith((")", "]"))


class OlympiadJudge:
    """auto_scoring_judge.py `AutoScoringJudge`, method for method (LaTeX read by latex2sympy2_extended)."""

    def __init__(self, precision: float = 1e-8):
        self.precision = precision

    def judge(self, gold: str, answer: str, precision: float | list[float] = 1e-8) -> bool:
        precision = list(precision) if isinstance(precision, list) else [precision]
        try:
            e1, e2 = _oly_symbols(_oly_boxed(gold)), _oly_symbols(_oly_boxed(answer))
        except ValueError:
            return False
        if e1 == e2:
            return True
        e1, e2 = re.sub(r"[\u4e00-\u9fff]+", "", e1), re.sub(r"[\u4e00-\u9fff]+", "", e2)
        l1 = [x for e in _oly_split(e1) for x in ([e.replace("\\pm", "+"), e.replace("\\pm", "-")]
                                                  if "\\pm" in e else [e])]
        l2 = [x for e in _oly_split(e2) for x in ([e.replace("\\pm", "+"), e.replace("\\pm", "-")]
                                                  if "\\pm" in e else [e])]
        if len(precision) <= 1:
            precision = precision * len(l1)
        if len(l1) != len(l2):
            return False
        idx = -1
        while l1:  # the official pairing: greedy, gold items in turn, each taking the first equal answer
            idx = (idx + 1) % len(l1)
            item1 = l1[idx]
            self.precision = precision[idx]
            for item2 in l2:
                if self.is_equal(item1, item2):
                    l1.remove(item1)
                    l2.remove(item2)
                    precision.remove(self.precision)
                    break
            else:
                return False
        return True

    def is_equal(self, e1: str, e2: str) -> bool:
        if e1 == e2 and e1 != "" and e2 != "":
            return True
        if _is_interval(e1) and _is_interval(e2):
            try:
                if self.interval_equal(e1, e2):
                    return True
            except Exception:  # noqa: BLE001 - official: an interval that fails to compare is not equal
                return False
        for test in (self.numerical_equal,
                     lambda a, b: self.expression_equal(a, b) and not ("=" in a and "=" in b),
                     self.equation_equal):
            try:
                ok = test(e1, e2)
            except Exception:  # noqa: BLE001 - official: each failed test falls through to the next
                ok = False
            if ok:
                return True
        return False

    def numerical_equal(self, e1: str, e2: str) -> bool:
        ref, pred = float(e1), float(e2)
        return any(abs(g - pred) <= self.precision * 1.01 for g in (ref / 100, ref, ref * 100))

    def expression_equal(self, e1: str, e2: str) -> bool:
        import sympy as sp

        def rhs(e: str) -> str:
            return (e.split("=")[1] if "=" in e else e).strip()

        s1, s2 = sp.sympify(_sympy_value(rhs(e1))), sp.sympify(_sympy_value(rhs(e2)))
        if s1 == s2:
            return True
        s1, s2 = s1.subs(sp.pi, math.pi), s2.subs(sp.pi, math.pi)
        sym1, sym2 = s1.has(sp.Symbol), s2.has(sp.Symbol)
        if sym1 != sym2:
            return False
        if not sym1:
            try:
                return bool(abs(s1.evalf() - s2.evalf()) <= self.precision * 1.01)
            except Exception:  # noqa: BLE001
                return False
        try:
            return bool(abs(sp.simplify(s1 - s2).evalf()) < 1e-3)
        except Exception:  # noqa: BLE001
            return False

    def equation_equal(self, e1: str, e2: str) -> bool:
        import sympy as sp

        def side_difference(eq: str):
            lhs, rhs = eq.split("=")
            return sp.simplify(_sympy_value(lhs) - _sympy_value(rhs))

        d1, d2 = side_difference(e1), side_difference(e2)
        q1, q2 = sp.simplify(d1 / d2), sp.simplify(d2 / d1)
        return bool((q1.is_Integer and q1 != 0) or (q2.is_Integer and q2 != 0))

    def interval_equal(self, e1: str, e2: str) -> bool:
        if e1 == e2:
            return True
        p1, p2 = e1.split("\\cup"), e2.split("\\cup")
        if len(p1) != len(p2):
            return False
        for a, b in zip(p1, p2):
            if a[0] != b[0] or a[-1] != b[-1]:
                return False
            for x, y in zip(a.strip("[]()").split(","), b.strip("[]()").split(",")):
                if not self.expression_equal(x, y):
                    return False
        return True


def olympiad_precision(error: Any) -> float | list[float]:
    """inference/judge.py: no `error` -> 1e-8; `a,b` -> [a, b] (an empty part 1e-8); else float(error)."""
    if not error:
        return 1e-8
    text = str(error)
    if "," in text:
        return [float(p) if p else 1e-8 for p in text.split(",")]
    return float(text)


def olympiad_extract(text: str) -> str:
    """inference/judge.py `extract_answer` (English): what follows the last `So the final answer is`, else all."""
    found = re.findall("So the final answer is (.*)", text)
    return found[-1].strip() if found else text


def olympiadbench_verdict(completion: str, record: Record) -> bool:
    meta = record.meta or {}
    final = meta.get("final_answer")
    gold = str(final[0]) if isinstance(final, list) and final else official_gold(record)
    text, formatted = answer_text(completion)
    answer = text if formatted else olympiad_extract(text)
    return OlympiadJudge().judge(gold, answer, olympiad_precision(meta.get("error")))


# ------------------------------------------------------------------------------------------------------------ MATH-500
def math500_verdict(completion: str, record: Record) -> bool:
    """math-verify with its defaults: the gold read in math mode, the answer as math-verify extracts it."""
    from math_verify import parse, verify

    from infimmr_cli.rewards.rules import MATH_VERIFY_TIMEOUT, huge_power

    text, formatted = answer_text(completion)
    gold = official_gold(record)
    gold_obj = parse(gold if has_math_delimiter(gold) else f"${gold}$", parsing_timeout=MATH_VERIFY_TIMEOUT)
    if formatted:  # our extracted answer, in math mode unless it says otherwise; a raw reply as math-verify reads it
        pred = extract_answer(text)
        text = pred if has_math_delimiter(pred) else f"${pred}$"
    pred_obj = parse(text, parsing_timeout=MATH_VERIFY_TIMEOUT)
    if any(huge_power(o) for o in list(gold_obj[:1]) + list(pred_obj[:1])):
        return False  # math-verify's own timeout would end it; the pool has none inside a worker
    return bool(verify(gold_obj, pred_obj, timeout_seconds=MATH_VERIFY_TIMEOUT))


# ----------------------------------------------------------------------------------------------------------- MathVerse
def mathverse_verdict(completion: str, record: Record) -> bool | None:
    """Multi-choice: right when the extracted answer names the gold option, by its letter (`C`, `(C)`, `C.`, `C: text`)
    or its text, as the examples in its judge prompt (prompts.py `demo_prompt_score`) accept; free-form: needs the
    judge.
    """
    from infimmr_cli.rewards.rules import choice_accuracy

    qtype = (record.meta or {}).get("question_type")
    if qtype == "free-form" or (qtype is None and record.answer_type != "choice"):
        return NEEDS_JUDGE
    text, formatted = answer_text(completion)
    extraction = extract_answer(text) if formatted else (last_box(text) or "").strip()
    if extraction.strip() == official_gold(record).strip():  # score_answer_s2.py --quick_match
        return True
    return record.answer_type == "choice" and choice_accuracy(extraction, record) >= 1.0


OFFICIAL: dict[str, Callable[[str, Record], bool | None]] = {
    "mathvista": mathvista_verdict,
    "mathvision": mathvision_verdict,
    "olympiadbench": olympiadbench_verdict,
    "math500": math500_verdict,
    "mathverse": mathverse_verdict,
}


def _is_the_gold(completion: str, record: Record) -> bool:
    """Deliberate difference (README): an answer that IS the gold (math delimiters dropped, spaces collapsed) is right.

    Every official script means this, but MATH-V's and OlympiadBench's clean-up of the answer side can mangle a gold
    before comparing it with itself (MATH-V test 2804 `\\frac{90}{23}^{\\circ}`, OlympiadBench 2349 `221,$8`).
    """
    text, formatted = answer_text(completion)
    if not formatted or record.answer_type == "choice":  # a gold letter is compared by the official rule itself
        return False
    gold = " ".join(extract_answer(official_gold(record)).split())
    return bool(gold) and " ".join(extract_answer(text).split()) == gold


def official_verdict(completion: str, record: Record) -> bool | None:
    """True / False under the benchmark's official rule, None when it needs an LLM judge (or has no official rule)."""
    rule = OFFICIAL.get(bench_of(record))
    if rule is None:
        return NEEDS_JUDGE
    if bench_of(record) in ("mathvision", "olympiadbench") and _is_the_gold(completion, record):
        return True
    try:
        return rule(completion, record)
    except RecursionError:
        return False


def official_score(completion: str, record: Record) -> dict[str, Any]:
    """`official_verdict` in the shape a scoring worker returns ({"official": True/False/None}), so the same killable
    pool (rewards.scoring.score_batch) runs it; an item that times out comes back without the key."""
    verdict = official_verdict(completion, record)
    # "overall" makes it a score the scoring pool accepts (rewards.plugins.as_score); eval reads "official" only.
    return {"overall": 1.0 if verdict else 0.0, "official": verdict}
