"""The layout's rules (docs/design.md), checked on the source so that breaking one fails CI.

* `events` and `projections` never import `ghost`;
* the core (everything in `ghost/` outside the surfaces) imports no surface and none of the
  surfaces' frameworks (click, mcp, textual, starlette, uvicorn);
* a surface (`ghost.cli`, `ghost.mcp`, `ghost.tui`, `ghost.web`) never imports another
  (`ghost/__main__.py` is the CLI's entry point; the CLI reaches the other surfaces' commands
  only by name, through its LAZY table);
* `ghost run/list/status/stop` load neither watchfiles nor tabulate nor any surface but the CLI;
* no module is longer than MAX_LINES.

Imports are read with `ast`, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SURFACES = ("ghost.cli", "ghost.mcp", "ghost.tui", "ghost.web")
FRAMEWORKS = ("click", "mcp", "textual", "starlette", "uvicorn", "sse_starlette", "pydantic")
MAX_LINES = 400


def modules(package: str, root: str = ROOT) -> Iterator[tuple[str, str]]:
    """(dotted module name, path) of every .py file under a top-level package."""
    base = os.path.join(root, package)
    for folder, _, files in os.walk(base):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def imported(path: str) -> set[str]:
    """Every module name an import statement in the file names (absolute imports only)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def surface_of(module: str) -> str | None:
    return next((s for s in SURFACES if within(module, s)), None)


def violations(root: str = ROOT) -> list[str]:
    found = []
    for package in ("events", "projections"):
        for module, path in modules(package, root):
            for name in imported(path):
                if within(name, "ghost"):
                    found.append(f"{module} imports {name}: events/projections never import ghost")
    for module, path in modules("ghost", root):
        own = surface_of(module) or ("ghost.cli" if module == "ghost.__main__" else None)
        for name in imported(path):
            other = surface_of(name)
            if own is None and other is not None:
                found.append(f"{module} (core) imports the surface {name}")
            elif own is not None and other is not None and other != own:
                found.append(f"{module} ({own}) imports another surface, {name}")
            framework = next((f for f in FRAMEWORKS if within(name, f)), None)
            if own is None and framework is not None:
                found.append(f"{module} (core) imports {framework}, a surface's framework")
    return found


def test_the_layout_rules_hold():
    assert violations() == []


def test_the_rules_catch_every_kind_of_violation(tmp_path):
    # The check itself must be able to fail: a small tree that breaks each rule once.
    files = {
        "events/leak.py": "from ghost.errors import GhostError\n",
        "ghost/core.py": "import click\n\ndef f():\n    from ghost.cli import render\n",
        "ghost/cli/a.py": "from ghost.mcp import tools\n",
        "ghost/mcp/b.py": "import click\nfrom ghost.actions import run\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert set(violations(str(tmp_path))) == {
        "events.leak imports ghost.errors: events/projections never import ghost",
        "events.leak imports ghost.errors.GhostError: events/projections never import ghost",
        "ghost.cli.a (ghost.cli) imports another surface, ghost.mcp",
        "ghost.cli.a (ghost.cli) imports another surface, ghost.mcp.tools",
        "ghost.core (core) imports click, a surface's framework",
        "ghost.core (core) imports the surface ghost.cli",
        "ghost.core (core) imports the surface ghost.cli.render",
    }


@pytest.mark.parametrize("command", [["run", "true"], ["list"], ["status", "abcd"],
                                     ["stop", "abcd"]])
def test_hot_commands_load_no_heavy_module_and_no_other_surface(data_dir, env, command):
    code = ("import sys, runpy; sys.argv = ['ghost', *sys.argv[1:]];\n"
            "try:\n    runpy.run_module('ghost', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('watchfiles', 'tabulate', 'mcp', 'textual', 'starlette', 'uvicorn') or "
            "m.startswith(('ghost.mcp', 'ghost.tui', 'ghost.web')))\n"
            "sys.stderr.write('LOADED ' + repr(bad) + '\\n')")
    result = subprocess.run([sys.executable, "-c", code, *command], env=env,
                            capture_output=True, timeout=60)
    lines = [ln for ln in result.stderr.decode().splitlines() if ln.startswith("LOADED ")]
    assert lines == ["LOADED []"], result.stderr.decode()


def test_no_module_is_longer_than_the_limit():
    long = []
    for package in ("ghost", "events", "projections", "tests", "property_tests", "bench"):
        for module, path in modules(package):
            if "/node_modules/" in path or "/.peers/" in path:
                continue  # installed peers' code, not ours
            with open(path, encoding="utf-8") as f:
                count = sum(1 for _ in f)
            if count > MAX_LINES:
                long.append(f"{module}: {count} lines")
    assert long == []
