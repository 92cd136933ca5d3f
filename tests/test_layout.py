"""The package's stages import one way: from a stage to the ones it builds on, never in a cycle."""

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "llm_instruct"
# Lowest first: a module may import from its own stage and from the stages before it in this list.
LAYERS = ["cli", "data", "models", "planning", "answering", "training"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The package's own modules that path imports, at the top or inside a function."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found |= {name for name in [target, *names] if (ROOT / (name.replace(".", "/") + ".py")).is_file()}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("llm_instruct")}
    return found


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


MODULES = {module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_stage():
    assert {module.split(".")[1] for module in MODULES if module != "llm_instruct"} == set(LAYERS)


def test_imports_never_point_to_a_later_stage():
    upward = [
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if module != "llm_instruct"
        for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_import_cycle():
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in MODULES.get(start, ()):
            if target == goal or (target not in seen and (seen.add(target) or reaches(target, goal, seen))):
                return True
        return False

    assert [module for module in MODULES if reaches(module, module, set())] == []


def test_the_command_line_loads_no_heavy_library_before_its_checks():
    """instruct_ger.py reports a typo in a fraction of a second: its flags module needs no torch."""
    code = "import sys, llm_instruct.training.train; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout == "[]\n"
