"""Which of planner's modules may import which (ARCHITECTURE.md: data flows one way), read from
the source with ast, lazy imports inside functions included."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "planner"

# Modules that do a command's work (read files, talk to the API, keep state, run the pipeline).
STAGES = (
    "planner.cli",
    "planner.config.load",
    "planner.config.fast",
    "planner.config.validate",
    "planner.config.schema",  # reads the packaged schema
    "planner.config.templates",
    "planner.config.variables",
    "planner.refresh",
    "planner.apply",
    "planner.ledger",
    "planner.operations.plan",
    "planner.operations.apply",
    "planner.operations.drift",
    "planner.operations.status",
    "planner.operations.logs",
    "planner.operations.state",
    "planner.plans.planfile",
    "planner.gcloud",
    "planner.api",
    "planner.state.local",
    "planner.state.gcs",
    "planner.state.lock",
    "planner.state.flock",
    "planner.emulator",
)

# What the planning engine may not touch: it decides from values it is given.
IO_MODULES = (
    "os",
    "io",
    "pathlib",
    "socket",
    "subprocess",
    "tempfile",
    "shutil",
    "httpx",
    "urllib",
    "click",
    *(stage for stage in STAGES if stage != "planner.refresh"),
)
# planner.plans.engine still takes its live records (Live, LiveJob, fingerprint) from planner.refresh,
# whose Refresher does the listing: the records are values, and the engine never calls the API.
# planner.plans.planfile reads a saved plan's configuration files again (see its docstring).
PLANS_WITH_IO = ("planner.plans.planfile",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module `module` imports, anywhere in its source (absolute names)."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from planner import cli` imports the module planner.cli.
            found.update(f"{prefix}.{alias.name}" for alias in node.names if f"{prefix}.{alias.name}" in modules())
    return frozenset(found)


def within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def test_the_rules_see_the_imports() -> None:
    """The reader itself: a rule over imports it cannot see could never fail."""
    assert "planner.cli" in imports("planner.__main__")  # a lazy import inside a function
    assert "click" in imports("planner.cli")
    assert "planner.config.load" in imports("planner.config.fast")
    assert len(modules()) > 50


def test_nothing_imports_the_cli() -> None:
    """Nothing outside the planner.cli package imports it (the script's entry point aside)."""
    outside = (m for m in modules() if m != "planner.__main__" and not within(m, ("planner.cli",)))
    importers = sorted(m for m in outside if any(within(name, ("planner.cli",)) for name in imports(m)))
    assert importers == []


def test_only_the_cli_imports_click() -> None:
    users = sorted(m for m in modules() if any(within(name, ("click",)) for name in imports(m)))
    assert users and all(within(m, ("planner.cli",)) for m in users), users


@pytest.mark.parametrize("module", sorted(m for m in modules() if within(m, ("planner.render",))))
def test_views_import_no_stage(module: str) -> None:
    assert sorted(name for name in imports(module) if within(name, STAGES)) == []


@pytest.mark.parametrize(
    "module", sorted(m for m in modules() if within(m, ("planner.plans",)) and m not in PLANS_WITH_IO)
)
def test_the_planning_engine_does_no_io(module: str) -> None:
    """Every module of planner.plans but the saved plan file's decides from values it is given."""
    assert sorted(name for name in imports(module) if within(name, IO_MODULES)) == []
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    calls = {
        node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"open", "print", "input"}


ENVIRONMENT = ("environ", "environb", "getenv", "getenvb")


def test_only_settings_reads_the_environment() -> None:
    """planner.settings is the one reader; google-auth's credential lookup (planner.api) and the
    emulator's server keep their own conventions."""
    readers = []
    for module, path in modules().items():
        if within(module, ("planner.settings", "planner.api", "planner.emulator")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in ENVIRONMENT
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(alias.name in ENVIRONMENT for alias in node.names)
            ):
                readers.append(module)
    assert sorted(set(readers)) == []


def test_the_environment_rule_sees_a_reader() -> None:
    tree = ast.parse(modules()["planner.settings"].read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.Attribute) and node.attr == "environ" for node in ast.walk(tree))


def test_the_plans_package_is_covered() -> None:
    """The no-I/O rule above sees the engine and the model, not an empty selection."""
    plans = {m for m in modules() if within(m, ("planner.plans",))}
    assert {"planner.plans.engine", "planner.plans.model", "planner.plans.staleness"} <= plans - set(PLANS_WITH_IO)


@pytest.mark.parametrize(
    "module", sorted(m for m in modules() if within(m, ("planner.schemagen", "planner.documents")))
)
def test_documents_and_schemagen_import_no_view(module: str) -> None:
    """The documents and their schemas come before the views (ARCHITECTURE.md: schemagen imports
    planner.documents, not planner.render)."""
    assert sorted(name for name in imports(module) if within(name, ("planner.render",))) == []


@pytest.mark.parametrize("module", sorted(m for m in modules() if within(m, ("planner.operations",))))
def test_operations_use_no_click_no_view_no_environment(module: str) -> None:
    forbidden = ("click", "planner.cli", "planner.render", "planner.settings")
    assert sorted(name for name in imports(module) if within(name, forbidden)) == []
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "print" not in calls


def output_and_environment(tree: ast.AST) -> list[str]:
    """What in `tree` prints, prompts or reads the environment: print()/input(), click.echo() and
    friends, sys.stdout/stderr/stdin, os.environ/getenv (also imported from os)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
            found.append(f"{node.func.id}()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
            node.func.attr in ("echo", "secho", "prompt", "confirm", "getpass")
        ):
            found.append(f".{node.func.attr}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
            (node.value.id == "sys" and node.attr in ("stdout", "stderr", "stdin", "__stdout__", "__stderr__"))
            or (node.value.id == "os" and node.attr in ENVIRONMENT)
        ):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "sys"):
            names = ENVIRONMENT if node.module == "os" else ("stdout", "stderr", "stdin")
            found.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name in names)
    return found


def test_the_output_rule_sees_output() -> None:
    code = (
        "import click, os, sys\nfrom os import getenv\n"
        "print('x')\nclick.echo('x')\nsys.stderr.write('x')\nos.environ.get('X')\n"
    )
    found = output_and_environment(ast.parse(code))
    assert sorted(found) == sorted(["os.getenv", "print()", ".echo()", "sys.stderr", "os.environ"])


@pytest.mark.parametrize("module", sorted(m for m in modules() if within(m, ("planner.operations",))))
def test_operations_print_nothing_and_read_no_environment(module: str) -> None:
    """An operation hands what happens to its caller (results, event sinks); the CLI shows it, and
    the environment reaches it through planner.settings and the CLI."""
    assert output_and_environment(ast.parse(modules()[module].read_text(encoding="utf-8"))) == []
