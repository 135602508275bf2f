"""Imports point down the layers: nn -> context/coding -> entropy -> models -> io -> codec ->
train/eval -> cli (the guide's architecture). Every import in src/mlic, at module level or inside
a function, is read from the source; one that reaches a higher layer fails the test."""

from __future__ import annotations

import ast
from pathlib import Path

import mlic

ROOT = Path(mlic.__file__).parent

# rank of each top-level package or module of mlic; an import may only reach the same or a lower rank
RANK = {
    "errors": 0, "_lazy": 0, "_torch_internals": 0, "__init__": 0,
    "nn": 1,
    "context": 2, "coding": 2,
    "entropy": 3,
    "models": 4,
    "io": 5,
    "codec": 6, "official": 6, "zoo": 6,
    "train": 7, "eval": 7, "target": 7,
    "cli": 8, "__main__": 8,
}  # fmt: skip


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level mlic part) of every mlic import in ``path``."""
    package = list(path.relative_to(ROOT).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from this file's package
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # `from .. import zoo`: a module, `from .. import __version__`: __init__
                    found += [(node.lineno, a.name if a.name in RANK else "__init__") for a in node.names]
                    continue
            elif node.module and node.module.split(".")[0] == "mlic":
                target = node.module.split(".")[1:] or [alias.name for alias in node.names][:1]
            else:
                continue
            found.append((node.lineno, target[0]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mlic" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
    return found


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        me = _part(path)
        assert me in RANK, f"{path}: place this part of mlic in a layer (tests/test_layers.py RANK)"
        for line, target in imports(path):
            assert target in RANK, f"{path}:{line}: import of unknown part {target!r}"
            if RANK[target] > RANK[me]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {me} imports {target}")
    return bad


def test_imports_point_down_the_layers():
    assert upward_imports() == []


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    """The walker sees relative, absolute and function-level imports (so the test above can fail)."""
    src = tmp_path / "mlic"
    (src / "models").mkdir(parents=True)
    (src / "models" / "bad.py").write_text(
        "from ..train.loop import train\n"
        "def f():\n    from ..cli import main\n    import mlic.codec\n    from .. import zoo\n"
    )
    monkeypatch.setattr(__import__(__name__), "ROOT", src)
    assert [t for _, t in imports(src / "models" / "bad.py")] == ["train", "cli", "codec", "zoo"]
    assert len(upward_imports()) == 4
