"""The course's compilation cache: off unless asked for, and never in the way of an unwritable folder."""

import subprocess
import sys

SCRIPT = "import resumable, jax; print(resumable.COMPILATION_CACHE, jax.config.jax_compilation_cache_dir)"


def run(env: dict[str, str]) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def test_the_cache_goes_where_resumable_jax_cache_says(tmp_path):
    assert run({"RESUMABLE_JAX_CACHE": str(tmp_path / "c")}) == f"{tmp_path / 'c'} {tmp_path / 'c'}"


def test_off_unless_asked_and_default_folder_under_the_xdg_cache(tmp_path):
    assert run({"HOME": str(tmp_path)}) == "None None"
    folder = tmp_path / "xdg" / "resumable-course" / "jax"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path), "RESUMABLE_JAX_CACHE": "default"}
    assert run(env) == f"{folder} {folder}"


def test_off_and_unwritable_leave_jax_alone(tmp_path):
    assert run({"RESUMABLE_JAX_CACHE": "off"}) == "None None"
    not_a_folder = tmp_path / "a-file"  # root writes through read-only modes; a file in the path stops anyone
    not_a_folder.write_text("")
    assert run({"RESUMABLE_JAX_CACHE": str(not_a_folder / "c"), "HOME": str(tmp_path)}) == "None None"


def test_an_existing_jax_setting_wins(tmp_path):
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "j"), "RESUMABLE_JAX_CACHE": str(tmp_path / "c")}
    assert run(env) == f"{tmp_path / 'j'} {tmp_path / 'j'}"


def test_entries_do_not_depend_on_the_folders_path(tmp_path):
    """The grader gives each student a copy of the class's cache at another path: the same programs must
    find the same entries there (JAX's XLA-caches option would put the folder's path into every key)."""
    script = (
        "import resumable, jax, jax.numpy as jnp; print(float(jax.jit(lambda x: x * 3 + 1)(jnp.arange(4.0)).sum()))"
    )
    names = []
    for folder in (tmp_path / "a", tmp_path / "somewhere" / "else"):
        env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "RESUMABLE_JAX_CACHE": str(folder)}
        completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert completed.stdout.strip() == "22.0" and completed.stderr == ""
        names.append(sorted(path.name for path in folder.glob("jit_*-cache")))
    assert names[0] and names[0] == names[1]
