"""The import layering (setup.cfg, ``[importlinter:contract:layers]``) names every module of
the package: a module in no layer would escape the contract, so a new module must be given
its place (README, "How it is built"). ``make check`` runs the contracts themselves."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layered() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    layers = cfg["importlinter:contract:layers"]["layers"]
    return {name for name in re.split(r"[\s:|]+", layers) if name}


def test_every_top_level_module_has_a_layer():
    package = ROOT / "verify"
    modules = {f"verify.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {f"verify.{p.parent.name}" for p in package.glob("*/__init__.py")}
    missing = sorted(modules - _layered())
    assert not missing, f"modules in no layer of setup.cfg's layers contract: {missing}"


def test_layers_name_only_existing_modules():
    package = ROOT / "verify"
    stale = sorted(name for name in _layered()
                   if not (package / f"{name.split('.', 1)[1]}.py").exists()
                   and not (package / name.split(".", 1)[1] / "__init__.py").exists())
    assert not stale, f"layers name modules that do not exist: {stale}"
