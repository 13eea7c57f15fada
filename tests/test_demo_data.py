from collections import Counter

from PIL import Image

from infimmr_cli.data.sources import SOURCES, PrepareContext
from infimmr_cli.data.demo_data import write_demo_exports
from infimmr_cli.data.demo_tasks import BLUE, CELL, RED
from infimmr_cli.curation.ngrams import exact_key


def prepare_all(tmp_path):
    paths = write_demo_exports(tmp_path / "raw", n_text=5, n_image=6, n_bench=4, seed=3)
    out = {}
    for name in ("deepscaler", "virl39k", "math500", "mathverse", "mathvision", "mathvista", "olympiadbench"):
        ctx = PrepareContext(tmp_path / "data")
        out[name] = list(SOURCES[name](paths[name], ctx))
    return out


def test_every_demo_export_goes_through_prepare(tmp_path):
    recs = prepare_all(tmp_path)
    assert {k: len(v) for k, v in recs.items()} == {"deepscaler": 6, "virl39k": 6, "math500": 4, "mathverse": 10,
                                                    "mathvision": 4, "mathvista": 4, "olympiadbench": 4}
    assert all(not r.images for r in recs["deepscaler"] + recs["math500"])
    assert all(len(r.images) == 1 for k in ("virl39k", "mathverse", "mathvista", "olympiadbench") for r in recs[k])
    assert Counter(r.meta["problem_version"] for r in recs["mathverse"])["Vision Only"] == 2
    assert Counter(r.answer_type for r in recs["virl39k"]) == {"math": 3, "choice": 3}


def bar_heights(path):
    """Units of the red and the blue bar, read back from the pixels (one unit = 28 px)."""
    im = Image.open(path).convert("RGB")
    heights = []
    for colour, x in ((RED, CELL), (BLUE, 3 * CELL)):
        column = [im.getpixel((x, y)) for y in range(im.height)]
        heights.append(round(sum(c == colour for c in column) / CELL))
    return heights


def test_image_answers_match_what_is_drawn(tmp_path):
    recs = prepare_all(tmp_path)
    for name in ("virl39k", "mathverse", "mathvision", "mathvista", "olympiadbench"):
        for rec in recs[name]:
            a, b = bar_heights(rec.image_paths()[0])
            assert 1 <= a <= 4 and 1 <= b <= 4
            if rec.answer_type == "choice" and rec.choices == list("ABCD"[:len(rec.choices)]):
                continue  # MathVerse's Vision Only: the options are said to be in the image (not drawn in the toy)
            gold = rec.choices[ord(rec.answer) - 65] if rec.answer_type == "choice" else rec.answer
            assert gold.strip("$") == str(a + b), (name, rec.id, rec.answer, rec.choices)


def test_one_training_item_leaks_a_math500_question(tmp_path):
    recs = prepare_all(tmp_path)
    bench_keys = {exact_key(r.question) for r in recs["math500"]}
    leaks = [r for r in recs["deepscaler"] if exact_key(r.question) in bench_keys]
    assert len(leaks) == 1
