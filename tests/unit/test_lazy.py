"""opsdeck.lazy: nothing imported up front, one complete module for every thread."""

from __future__ import annotations

import sys
import textwrap
import threading

import pytest

from opsdeck import lazy


@pytest.fixture
def slow_module(tmp_path, monkeypatch):
    """A module that takes a while to run, defining its attribute only at the end."""
    name = "opsdeck_test_slow_module"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import time
            time.sleep(0.2)
            def answer():
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_nothing_is_imported_until_first_use(slow_module):
    proxy = lazy.lazy_import(slow_module)
    assert slow_module not in sys.modules
    assert proxy.answer() == 42
    assert slow_module in sys.modules


def test_concurrent_first_uses_all_see_the_whole_module(slow_module):
    proxy = lazy.lazy_import(slow_module)
    results, errors = [], []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        try:
            results.append(proxy.answer())
        except Exception as exc:  # AttributeError on a half-initialised module
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [42] * 8


def test_a_missing_module_is_reported_at_once():
    with pytest.raises(ModuleNotFoundError, match="opsdeck_no_such_module"):
        lazy.lazy_import("opsdeck_no_such_module")


def test_load_all_imports_what_was_deferred(slow_module):
    lazy.lazy_import(slow_module)
    lazy.load_all()
    assert slow_module in sys.modules
