from collections import Counter

from PIL import Image

from infimmr_cli.data.sources import SOURCES, PrepareContext
from infimmr_cli.data.demo_data import COLOURS, write_demo_exports
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


def test_image_answers_match_what_is_drawn(tmp_path):
    recs = prepare_all(tmp_path)
    for rec in recs["virl39k"]:
        pixels = Image.open(rec.image_paths()[0]).convert("RGB").getcolors(1 << 16)
        colours = {name for name, rgb in COLOURS.items() if any(c == rgb for _, c in pixels)}
        assert len(colours) == 1
        if rec.answer_type == "choice":
            assert rec.choices[ord(rec.answer) - 65] == colours.pop()


def test_one_training_item_leaks_a_math500_question(tmp_path):
    recs = prepare_all(tmp_path)
    bench_keys = {exact_key(r.question) for r in recs["math500"]}
    leaks = [r for r in recs["deepscaler"] if exact_key(r.question) in bench_keys]
    assert len(leaks) == 1
