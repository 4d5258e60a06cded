"""Which firmware modules a device's role needs (tracker or base station): the firmware's manifest, else its imports.

The firmware keeps a manifest, `firmware/roles.json` (`{"roles": {role: {"files": [paths
relative to firmware/]}}}`, checked against the imports by the firmware's own tests); the
builder takes each role's files from it. A firmware tree without one is read from its imports:
`firmware/main.py` chooses the role at boot; imports at its top level serve every role, imports
under `if cfg["role"] == "base":` serve the base station, and the other imports inside its
functions serve the tracker. From those entry points every `import segelfw...` /
`from segelfw... import ...` is followed (at any depth, including imports inside functions).
Either way an image carries what its role can import and nothing else.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

PACKAGE = "segelfw"
MANIFEST = "roles.json"
ROLES = ("tracker", "base")
# modules a role always carries although nothing imports them: `segel check` imports the
# firmware's self-test when the image has one (docs/provisioning.md, "Checking a flashed tracker")
EXTRA = {"tracker": ("segelfw.selftest",), "base": ()}


class RoleError(ValueError):
    """The firmware tree does not say what a role needs."""


def _module_file(firmware_dir: Path, name: str) -> Path | None:
    base = firmware_dir.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imported(node: ast.AST, firmware_dir: Path) -> set[str]:
    """segelfw modules named by one import statement."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
            and node.module.split(".")[0] == PACKAGE:
        out.add(node.module)
        for a in node.names:  # `from segelfw import cycle` names a module, `from segelfw.seal import Seal` does not
            if _module_file(firmware_dir, f"{node.module}.{a.name}") is not None:
                out.add(f"{node.module}.{a.name}")
    return out


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _is_base_branch(node: ast.If) -> bool:
    """`if <...> == "base":`, the role switch in main.py."""
    t = node.test
    return isinstance(t, ast.Compare) and any(isinstance(c, ast.Constant) and c.value == "base"
                                              for c in [t.left, *t.comparators])


def entry_modules(main_py: Path, firmware_dir: Path) -> dict[str, set[str]]:
    """role -> the segelfw modules main.py imports for it."""
    tree = ast.parse(main_py.read_text(), str(main_py))
    shared: set[str] = set()
    top = {id(stmt) for stmt in tree.body}
    for stmt in tree.body:
        shared |= _imported(stmt, firmware_dir)
    base: set[str] = set()
    in_base: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_base_branch(node):
            for inner in node.body:
                for sub in ast.walk(inner):
                    base |= _imported(sub, firmware_dir)
                    in_base.add(id(sub))
    tracker: set[str] = set()
    for node in ast.walk(tree):
        if id(node) not in in_base and id(node) not in top:
            tracker |= _imported(node, firmware_dir)
    if not base:
        raise RoleError(f"{main_py}: no `if ... == \"base\":` branch importing the base-station module")
    return {"tracker": shared | tracker, "base": shared | base}


def closure(firmware_dir: Path, entries: set[str]) -> set[str]:
    """Every segelfw module reachable from `entries`, with its parent packages."""
    todo = [n for e in entries for n in _with_parents(e)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(firmware_dir, name)
        if path is None:
            raise RoleError(f"the firmware imports {name}, but there is no {name.replace('.', '/')}.py "
                            f"under {firmware_dir}")
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for found in _imported(node, firmware_dir):
                todo.extend(_with_parents(found))
    return seen


def manifest_modules(firmware_dir: Path, role: str) -> set[str] | None:
    """The role's segelfw modules as firmware/roles.json lists them (None: no manifest)."""
    path = firmware_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text())["roles"][role]["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise RoleError(f"{path}: no list of files for role {role!r} ({e})") from e
    out: set[str] = set()
    for f in files:
        if not (firmware_dir / f).is_file():
            raise RoleError(f"{path} lists {f} for role {role!r}, but there is no such file under {firmware_dir}")
        if f.startswith(PACKAGE + "/") and f.endswith(".py"):
            out.add(f[:-3].replace("/", ".").removesuffix(".__init__"))
    return out


def role_modules(firmware_dir: Path, role: str) -> set[str]:
    """The segelfw modules an image for `role` carries."""
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    extra = {m for m in EXTRA[role] if _module_file(firmware_dir, m) is not None}
    listed = manifest_modules(firmware_dir, role)
    if listed is not None:
        return listed | closure(firmware_dir, extra) if extra else listed
    entries = entry_modules(firmware_dir / "main.py", firmware_dir)[role]
    return closure(firmware_dir, entries | extra)


def module_path(name: str, firmware_dir: Path) -> str:
    """Device path of a module's source relative to the firmware tree, e.g. segelfw/hw/radio.py."""
    p = _module_file(firmware_dir, name)
    assert p is not None
    return p.relative_to(firmware_dir).as_posix()
