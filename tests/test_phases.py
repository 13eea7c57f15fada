import pytest

from conftest import write_train_data
from infimmr_cli.errors import UsageError
from infimmr_cli.training.phases import phase_view
from infimmr_cli.data.prompt import CAPTION_PREFIX
from infimmr_cli.data.records import read_records


def _texts(item):
    return [c for c in item.messages[-1]["content"] if c["type"] == "text"][0]["text"]


def _images(item):
    return sum(1 for c in item.messages[-1]["content"] if c["type"] == "image")


def test_fra_takes_text_records_only(train_data):
    view = phase_view(read_records(train_data), "fra")
    assert [i.record.id for i in view.items] == [f"t{i}" for i in range(8)]
    assert view.total == 16 and view.excluded == 8
    assert all(_images(i) == 0 for i in view.items)


def test_cmra_keeps_the_image_and_prepends_the_caption(train_data):
    view = phase_view(read_records(train_data), "cmra")
    assert len(view.items) == 8
    item = view.items[0]
    assert _images(item) == 1
    assert _texts(item).startswith(CAPTION_PREFIX.format(caption=item.record.caption))
    assert item.record.question in _texts(item)


def test_mre_keeps_the_image_without_caption(train_data):
    view = phase_view(read_records(train_data), "mre")
    assert len(view.items) == 8
    assert all(_images(i) == 1 and "Caption" not in _texts(i) for i in view.items)


def test_cmra_without_captions_fails_naming_count_and_first_id(tmp_path):
    data = write_train_data(tmp_path, n_text=2, n_image=3, captions=False)
    with pytest.raises(UsageError, match=r"cmra: 3 of 3 image records have no caption \(first: id 'v0'\)"):
        phase_view(read_records(data), "cmra")


def test_unknown_phase_is_refused(train_data):
    with pytest.raises(UsageError, match="phase: 'abc'"):
        phase_view(read_records(train_data), "abc")
