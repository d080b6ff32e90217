"""Import the device scripts of ``benchmarks/device`` (not a package) by name, for their tests."""

import importlib.util
from pathlib import Path

#: the folder of the device scripts
DEVICE = Path(__file__).resolve().parents[1] / "benchmarks" / "device"


def device_module(name: str):
    """The module ``benchmarks/device/<name>.py``, freshly executed."""
    spec = importlib.util.spec_from_file_location(name, DEVICE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
