"""Rules DESIGN.md states, checked by reading the code."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCOPE_METHODS = {"visible_to", "dangerously_unscoped", "for_units"}
# Modules that serve people: every read there must start from what the user may see.
PEOPLE_FACING = ("selectors", "views", "api")


def _people_facing_modules() -> list[Path]:
    found = []
    for path in (ROOT / "apps").rglob("*.py"):
        parts = path.relative_to(ROOT / "apps").with_suffix("").parts
        if any(part in PEOPLE_FACING for part in parts[1:]):
            found.append(path)
    return found


def _unscoped_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    class_level_querysets = set()
    for node in ast.walk(tree):
        # `queryset = Model.objects.all()` on a viewset only names the model for the base.
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "queryset" for t in stmt.targets
                ):
                    class_level_querysets.add(id(stmt.value))
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "objects"
            and node.attr not in SCOPE_METHODS
        ):
            parent_call = next(
                (
                    n
                    for n in ast.walk(tree)
                    if isinstance(n, ast.Call) and n.func is node and id(n) in class_level_querysets
                ),
                None,
            )
            if parent_call is None:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} .objects.{node.attr}")
    return problems


def test_people_facing_reads_go_through_the_scoping_layer():
    modules = _people_facing_modules()
    assert modules, "expected selectors/views/api modules under apps/"
    problems = [p for path in modules for p in _unscoped_reads(path)]
    assert problems == [], (
        "read through .visible_to(user) or .dangerously_unscoped():\n" + "\n".join(problems)
    )


def test_the_convention_check_catches_an_unscoped_read(tmp_path):
    leaky = tmp_path / "views.py"
    leaky.write_text("def v(request):\n    return AuditLog.objects.filter(pk=1)\n")
    assert _unscoped_reads_at(leaky) == ["views.py:2 .objects.filter"]


def _unscoped_reads_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return _unscoped_reads(path)
    finally:
        ROOT = saved


def test_no_business_logic_in_django_signals():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "apps").rglob("*.py")
        if "migrations" not in path.parts and "@receiver(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_no_template_or_app_file_links_a_cdn():
    patterns = ("cdn.", "unpkg.com", "jsdelivr", "googleapis.com/", "cdnjs")
    offenders = []
    for folder in ("templates", "apps", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".html", ".py", ".js", ".css"}:
                text = path.read_text(encoding="utf-8", errors="ignore")
                offenders += [f"{path.relative_to(ROOT)}: {p}" for p in patterns if p in text]
    assert offenders == []


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--no-cache",
            "--config",
            str(root / "pyproject.toml"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_the_layers_contract_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_layers_contract_fails_when_contacts_imports_sales(tmp_path):
    # Given a copy of the code where contacts reaches up into sales …
    shutil.copytree(ROOT / "apps", tmp_path / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "apps" / "contacts" / "upward.py").write_text("import apps.sales.apps\n")
    # … the contract breaks, naming the import.
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "0 kept, 1 broken" in result.stdout
    assert "apps.contacts.upward -> apps.sales.apps" in result.stdout
