# The declared single-binary build of looop, for machines with internet access:
#     pip install pyoxidizer && pyoxidizer build --release
#
# What it needs: `pyoxidizer build` downloads a python-build-standalone distribution and a Rust
# toolchain, then compiles crates (pyembed, python-oxidized-importer, ...) from crates.io.
#
# Why it is not the tested route: those downloads are out of reach of our CI machines; PyOxidizer
# 0.24 (the latest) knows CPython only up to 3.10 while looop needs 3.11 (match statements,
# typing); and on Linux it cannot import orjson's compiled extension from memory, so that module
# has to sit as a file beside the executable anyway. The tested single binary is PyInstaller's
# (`make binary`, see packaging/binary.sh); CI only checks that this file still parses
# (`pyoxidizer list-targets` downloads nothing).

def make_exe():
    dist = default_python_distribution(python_version = "3.10")

    policy = dist.make_python_packaging_policy()
    # Pure-Python modules load from memory; extension modules (orjson) cannot, so they fall
    # back to files in lib/ beside the executable.
    policy.resources_location = "in-memory"
    policy.resources_location_fallback = "filesystem-relative:lib"

    config = dist.make_python_interpreter_config()
    # `python -m looop`: looop/__main__.py calls looop.entry.main, the console entry point.
    config.run_module = "looop"

    exe = dist.to_python_executable(
        name = "looop",
        packaging_policy = policy,
        config = config,
    )
    # looop and its dependencies (pykka, pexpect, ptyprocess, pyte, orjson, fasteners, click),
    # with the seeds as package data of looop.seeds (pyproject.toml maps seeds/ there).
    exe.add_python_resources(exe.pip_install(["."]))
    return exe

def make_install(exe):
    files = FileManifest()
    files.add_python_resource(".", exe)
    return files

register_target("exe", make_exe)
register_target("install", make_install, depends = ["exe"], default = True)

resolve_targets()
