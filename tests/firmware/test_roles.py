"""The firmware's role manifest (firmware/roles.json): per role, exactly the files that role's boot
can import, so the image builder (gateway/segel/provision/image.py) puts only those on the device.
(That the logic never imports a driver or `machine` is import-linter's job: tests/test_layers.py.)

Regenerate after adding a module: .venv/bin/python -m tests.firmware.test_roles
"""

from __future__ import annotations

import ast
import json
from pathlib import Path


FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def imports(path: Path) -> set[str]:
    """Every module a file imports (at any depth: the firmware imports lazily inside functions)."""
    out: set[str] = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
            out |= {f"{n.module}.{a.name}" for a in n.names}
    return out


def module_file(name: str) -> Path | None:
    if not name.startswith("segelfw"):
        return None
    p = FIRMWARE / (name.replace(".", "/") + ".py")
    if p.is_file():
        return p
    p = FIRMWARE / name.replace(".", "/") / "__init__.py"
    return p if p.is_file() else None


def closure(entries: list[str], exclude: set[str] = frozenset()) -> set[str]:
    """Files (relative to firmware/) reachable from the entry modules, packages' __init__ included;
    `exclude`: the other roles' modules, which main.py imports only for their role."""
    seen: set[str] = set()
    todo = [FIRMWARE / e for e in entries]
    while todo:
        f = todo.pop()
        rel = f.relative_to(FIRMWARE).as_posix()
        if rel in seen or rel in exclude:
            continue
        seen.add(rel)
        parts = f.relative_to(FIRMWARE).parts[:-1]
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
            init = FIRMWARE.joinpath(*parts[:i], "__init__.py")
            if init.is_file():
                todo.append(init)
        for m in imports(f):
            p = module_file(m)
            if p is not None:
                todo.append(p)
    return seen


def test_roles_manifest_lists_exactly_what_each_role_imports() -> None:
    man = json.loads((FIRMWARE / "roles.json").read_text())
    assert set(man["roles"]) == {"tracker", "base"}
    for role, spec in man["roles"].items():
        others = {s["role_module"] for r, s in man["roles"].items() if r != role}
        want = closure(["main.py", spec["role_module"]], others)
        assert sorted(want) == spec["files"], f"roles.json '{role}' is out of date"
    # the base station carries no tracker logic, and the tracker none of the base station
    assert "segelfw/cycle.py" not in man["roles"]["base"]["files"]
    assert "segelfw/basestation.py" not in man["roles"]["tracker"]["files"]


def roles_manifest() -> dict:
    """What firmware/roles.json should say (python -m tests.firmware.test_layers rewrites it)."""
    roles = {"tracker": "segelfw/hw/tracker.py", "base": "segelfw/hw/basestation.py"}
    out = {"_doc": "Firmware files each role's image needs (the image builder reads this; "
                   "tests/firmware/test_roles.py checks it against the imports). Paths relative to firmware/.",
           "roles": {}}
    for role, mod in roles.items():
        others = {m for r, m in roles.items() if r != role}
        out["roles"][role] = {"role_module": mod, "files": sorted(closure(["main.py", mod], others))}
    return out


if __name__ == "__main__":
    (FIRMWARE / "roles.json").write_text(json.dumps(roles_manifest(), indent=2) + "\n")
