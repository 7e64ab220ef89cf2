"""The documents' programs run: every ```python block of docs/*.md, in order, one namespace
per document (a block may use what an earlier one defined)."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("name", ["porting.md", "architecture.md"])
def test_the_document_runs(name, monkeypatch):
    from rnnkit import graph_engine

    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", False)  # restored whatever happens
    text = (DOCS / name).read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    assert blocks, f"{name} has no python block"
    namespace: dict = {"__name__": f"docs_{name[:-3]}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{name}[block {i}]", "exec"), namespace)  # noqa: S102
