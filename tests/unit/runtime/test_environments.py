"""Which environment a commit's stages rerun in: the packages its uv.lock pins against the running ones."""

from __future__ import annotations

import sys
from pathlib import Path

from mlpipe.registry.reproduce.rebuild import python_major_minor
from mlpipe.runtime.environments import (
    choose_environment,
    differences,
    env_path,
    locked_packages,
    normalize,
    render_differences,
    running_versions,
)

REPO = Path(__file__).resolve().parents[3]
LOCK = """
version = 1
requires-python = ">=3.11, <3.12"

[[package]]
name = "mlpipe"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "Scikit_Learn"
version = "1.9.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "2.4.6"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pywin32"
version = "311"
source = { registry = "https://pypi.org/simple" }
"""


def test_the_lock_pins_registry_packages_by_normalized_name_not_the_project():
    assert locked_packages(LOCK) == {"scikit-learn": "1.9.0", "numpy": "2.4.6", "pywin32": "311"}
    assert normalize("zope.interface") == normalize("Zope_Interface") == "zope-interface"


def test_differences_name_each_package_at_another_version_and_skip_those_not_installed_here():
    running = {"scikit-learn": "1.9.1", "numpy": "2.4.6", "mlpipe": "0.1.0"}
    diff = differences(locked_packages(LOCK), running)
    assert diff == {"scikit-learn": ("1.9.0", "1.9.1")}  # pywin32: a platform marker, not a difference
    assert render_differences(diff) == "scikit-learn 1.9.0 (locked) vs 1.9.1 (running)"
    assert differences(locked_packages(LOCK), {"scikit-learn": "1.9.0", "numpy": "2.4.6"}) == {}


def test_the_running_environment_is_the_one_the_project_lock_pins():
    """`make setup` built this interpreter's packages from uv.lock: auto mode reruns stages right here."""
    assert differences(locked_packages((REPO / "uv.lock").read_text()), running_versions()) == {}
    env = choose_environment("auto", REPO, REPO, f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert env.kind == "current" and env.python == Path(sys.executable) and not env.differs
    assert "the one the commit's uv.lock pins" in env.describe()


def test_another_python_major_minor_is_a_difference_and_current_mode_says_so(tmp_path):
    env = choose_environment("current", REPO, tmp_path, "3.10")
    assert env.kind == "current" and env.differs["python"] == ("3.10", "3.11")
    assert "differs from the commit's uv.lock in python 3.10 (locked) vs 3.11 (running)" in env.describe()


def test_a_checkout_without_a_lock_runs_here(tmp_path):
    assert choose_environment("auto", tmp_path, tmp_path, "3.11").kind == "current"


def test_environments_are_keyed_by_lock_hash_and_python():
    assert env_path(Path("/c"), "ab" * 32, "3.11") == Path("/c/abababababababab-py3.11")
    assert python_major_minor("3.11.7") == "3.11"
    assert python_major_minor("") == f"{sys.version_info[0]}.{sys.version_info[1]}"
