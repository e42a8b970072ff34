"""What goes into the container image, checked without Docker: the lock file pins every runtime
dependency, the wheel holds every data file the packages read, the Dockerfile builds what it
should, and compiled catalogs are read only while they are current."""

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from knowledge import i18n

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = ["bot", "handlers", "knowledge", "storage"]


def locked() -> dict[str, tuple[str, int]]:
    """``requirements.lock``: name -> (version, number of hashes)."""
    pins: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text()):
        if match := re.match(r"([A-Za-z0-9._-]+)==(\S+)", block):
            name = canonicalize_name(match[1])
            pins[name] = (match[2], block.count("--hash=sha256:"))
    return pins


def runtime_closure() -> set[str]:
    """The project's runtime requirements and theirs, as installed here (markers applied)."""
    wanted = [(Requirement(r), "") for r in PROJECT["project"]["dependencies"]]
    seen: set[str] = set()
    while wanted:
        requirement, extra = wanted.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        extras = sorted(requirement.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(name) or []:
            for wanted_extra in ["", *extras]:
                wanted.append((Requirement(line), wanted_extra))
    return {key.partition("[")[0] for key in seen}


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    pins = locked()
    missing = sorted(runtime_closure() - pins.keys())
    assert not missing, f"not in requirements.lock (regenerate it, see README): {missing}"
    assert all(hashes for _, hashes in pins.values()), "a pin without --hash"
    for line in PROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        version, _ = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {requirement.name} {version}, pyproject asks {line}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the sources (as the Dockerfile installs)."""
    source = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--wheel-dir", str(dist),
                    str(source)], check=True, capture_output=True)
    [built] = dist.glob("motcua-*.whl")
    return built


def test_wheel_holds_every_data_file_the_packages_read(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    needed = {path.relative_to(ROOT).as_posix()
              for package in PACKAGES for path in (ROOT / package).rglob("*")
              if path.is_file() and "__pycache__" not in path.parts
              and path.suffix not in (".pot", ".mo", ".pyc")}  # the .pot is for translators
    assert needed - shipped == set()
    assert {"knowledge/matching.toml", "knowledge/intents.toml", "bot/openapi.json"} <= shipped


def test_the_installed_wheel_answers_away_from_the_sources(wheel: Path, tmp_path: Path) -> None:
    site, work = tmp_path / "site-packages", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site),  # before the editable install of the tests
           "DATABASE_URL": f"sqlite:///{work / 'motcua.sqlite3'}"}

    def bot(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=work, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run([sys.executable, "-c", "import bot; print(bot.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where).is_relative_to(site)
    answer = json.loads(bot("ask", "--json", "lam giay khai sinh mat phi khong"))
    assert answer["matches"][0]["code"] == "1.001193"
    assert answer["answer"].startswith("Lệ phí — Làm giấy khai sinh")
    assert "up to date" in bot("db", "upgrade")  # the migrations are in the wheel


def test_dockerfile_builds_a_small_locked_non_root_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # one line each
    stages = re.findall(r"^FROM \S+(?: AS (\w+))?", dockerfile, flags=re.M)
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "--require-hashes -r requirements.lock" in dockerfile
    for package in PACKAGES:
        assert re.search(rf"^COPY .*\b{package}\b", dockerfile, flags=re.M), package
    assert "write_compiled()" in dockerfile
    assert re.search(r"^USER (?!root|0\b)\S+", runtime, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*/healthz", runtime, flags=re.M)
    assert "COPY --from=" in runtime and "pip install" not in runtime
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if not line.startswith("#")]
    for needed in ("requirements.lock", "pyproject.toml", "README.md", *PACKAGES):
        assert needed not in ignored and f"/{needed}" not in ignored
    assert ".env" in ignored and ".git" in ignored


def test_compiled_catalogs_are_read_until_a_po_changes(tmp_path: Path) -> None:
    shutil.copytree(i18n.LOCALE_DIR, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.mo"))
    po = tmp_path / "vi" / "LC_MESSAGES" / "messages.po"
    assert i18n.catalog_file("vi", tmp_path) == po
    i18n.write_compiled(tmp_path)  # as the Dockerfile does
    for lang in i18n.LANGUAGES:
        mo = i18n.catalog_file(lang, tmp_path)
        assert mo.suffix == ".mo"
        from_mo = gettext.GNUTranslations(BytesIO(mo.read_bytes()))
        with mo.with_suffix(".po").open("rb") as source:
            ids = [m.id for m in read_po(source, locale=lang)
                   if isinstance(m.id, str) and m.id and m.string]
        assert len(ids) > 100
        assert [from_mo.gettext(i) for i in ids] == [i18n.translations(lang).gettext(i)
                                                     for i in ids]
    later = po.with_suffix(".mo").stat().st_mtime + 10
    os.utime(po, (later, later))  # a translator edits the .po after the compile
    assert i18n.catalog_file("vi", tmp_path) == po
