# The declared single-binary build of looop, for machines with internet access:
#     pip install pyoxidizer && pyoxidizer build --release
#
# What it needs: `pyoxidizer build` downloads a python-build-standalone distribution and a Rust
# toolchain, then compiles crates (pyembed, python-oxidized-importer, ...) from crates.io.
#
# Python: PyOxidizer 0.24 (the latest) knows CPython up to 3.10, the oldest Python looop supports
# (pyproject.toml: requires-python >= 3.10), so pip resolves every dependency for 3.10 as it does
# on Ubuntu 22.04 (pykka then stays below 4.5, which needs 3.11).
#
# Why it is not the tested route: those downloads are out of reach of our CI machines, and on
# Linux the orjson extension cannot be imported from memory, so it sits as a file in lib/ beside
# the executable. The tested single binary is PyInstaller's (`make binary`, see
# packaging/binary.sh); CI checks that this file parses (`pyoxidizer list-targets` downloads
# nothing) and that its Python is one pyproject.toml allows.

def make_exe():
    dist = default_python_distribution(python_version = "3.10")

    policy = dist.make_python_packaging_policy()
    # Pure-Python modules load from memory; extension modules (orjson, psutil) cannot, so they fall
    # back to files in lib/ beside the executable.
    policy.resources_location = "in-memory"
    policy.resources_location_fallback = "filesystem-relative:lib"

    config = dist.make_python_interpreter_config()
    # `python -m looop`: looop/__main__.py calls looop.cli.entry.main, the console entry point.
    config.run_module = "looop"
    # The files in lib/ (the extensions of orjson and psutil) are found by the standard importer, from there.
    config.filesystem_importer = True
    config.module_search_paths = ["$ORIGIN/lib"]

    exe = dist.to_python_executable(
        name = "looop",
        packaging_policy = policy,
        config = config,
    )
    # looop and its dependencies (pykka, pexpect, ptyprocess, pyte, orjson, psutil, fasteners, click),
    # with the seeds as package data of looop.seeds (pyproject.toml maps seeds/ there).
    # CWD is the directory of this file: the checkout, whatever directory pyoxidizer runs from.
    exe.add_python_resources(exe.pip_install([CWD]))
    return exe

def make_install(exe):
    files = FileManifest()
    files.add_python_resource(".", exe)
    return files

register_target("exe", make_exe)
register_target("install", make_install, depends = ["exe"], default = True)

resolve_targets()
