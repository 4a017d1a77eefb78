"""The suite's own scheduling: files are collected longest first (tests/conftest.py)."""
import json
from types import SimpleNamespace

from tests import conftest


def test_files_are_collected_longest_first_keeping_each_files_order(tmp_path, monkeypatch):
    durations = tmp_path / "file_durations.json"
    durations.write_text(json.dumps({"tests/a.py": 5.0, "tests/b.py": 90.0, "tests/c.py": 1.0}))
    monkeypatch.setattr(conftest, "DURATIONS", durations)
    ids = ["tests/a.py::t1", "tests/c.py::t1", "tests/b.py::t2", "tests/new.py::t1", "tests/a.py::t2",
           "tests/b.py::t1"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    conftest.pytest_collection_modifyitems(None, None, items)
    # b (90 s), then a (5 s) and the unmeasured file (the median, 5 s) in collection order, then c
    assert [i.nodeid for i in items] == ["tests/b.py::t2", "tests/b.py::t1", "tests/a.py::t1", "tests/a.py::t2",
                                         "tests/new.py::t1", "tests/c.py::t1"]
    monkeypatch.setattr(conftest, "DURATIONS", tmp_path / "missing.json")      # no file: order untouched
    items = [SimpleNamespace(nodeid=i) for i in ids]
    conftest.pytest_collection_modifyitems(None, None, items)
    assert [i.nodeid for i in items] == ids


def test_the_committed_durations_cover_the_slow_files():
    known = json.loads(conftest.DURATIONS.read_text())
    assert known and all(isinstance(v, (int, float)) and v >= 0 for v in known.values())
    assert "tests/training/test_distribute.py" in known
