"""Device images: built, mounted back with littlefs-python, every file compared; the .mpy files
load on real MicroPython (the WebAssembly port) where their imports allow."""

from __future__ import annotations

import json
import modulefinder
import shutil
import subprocess
from pathlib import Path

import fwbuild
import pytest

from segel import paths
from segel.provision import devconfig, packages, roles
from segel.provision.builder import ImageBuilder
from segel.provision.image import ImageError, mpy_cross_path, read_littlefs
from segel.provision.settings import Fleet

ROOT = Path(__file__).resolve().parents[2]


def _builder(fleet: Fleet, firmware_tree: Path, **kw: object) -> ImageBuilder:
    return ImageBuilder(fleet, firmware_dir=firmware_tree, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("board", "driver", "vfs_size"), [("tbeam-v1.1", "sx127x", 0x200000),
                                                           ("tbeam-supreme", "sx126x", 0x600000)])
def test_image_holds_exactly_the_expected_files(fleet: Fleet, firmware_tree: Path, board: str, driver: str,
                                                vfs_size: int) -> None:
    dev = devconfig.provision(fleet, 1, board=board)[0].device
    path, img = _builder(fleet, firmware_tree).build_to_file(dev)
    data = path.read_bytes()
    assert len(data) == vfs_size == img.region.size  # stock 1.27: 0x200000 to the end of the board's flash
    got = read_littlefs(data)

    expected: dict[str, bytes] = {"main.py": (firmware_tree / "main.py").read_bytes()}
    if (firmware_tree / "boot.py").is_file():
        expected["boot.py"] = (firmware_tree / "boot.py").read_bytes()
    tracker = roles.role_modules(firmware_tree, "tracker")
    srcs = sorted(firmware_tree / roles.module_path(m, firmware_tree) for m in tracker)
    assert len(srcs) >= 5
    for src in srcs:
        rel = src.relative_to(firmware_tree).as_posix()
        out = subprocess.run([mpy_cross_path(), "-s", rel, "-o", "-", str(src)], capture_output=True, check=True)
        assert out.stdout[:2] == b"M\x06", rel  # .mpy header: 'M', version 6
        expected[rel[:-3] + ".mpy"] = out.stdout
    for pf in packages.resolve(fleet.package_cache, ["lora", "lora-sync", f"lora-{driver}"], 6):
        expected["lib/" + pf.path] = pf.data
    assert "lib/lora/%s.mpy" % driver in expected
    board_file = json.loads((paths.boards_dir() / f"{board}.json").read_text())
    cfg = json.loads(fleet.config_path(dev.hex).read_text())

    assert sorted(got) == sorted([*expected, f"boards/{board}.json", "config.json"])
    for name, content in expected.items():
        assert got[name] == content, name
    assert json.loads(got[f"boards/{board}.json"]) == board_file
    assert json.loads(got["config.json"]) == cfg
    assert not any(n.startswith("simhw") or n.endswith(".py") and n.startswith("segelfw") for n in got)

    secret = fleet.secret()
    assert secret not in data and secret.hex().encode() not in data
    assert cfg["key"].encode() in data  # the device's own key is the one secret it carries


def test_mpy_files_load_on_real_micropython(fleet: Fleet, firmware_tree: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    runner = ROOT / "tools" / "mpy-node" / "run.mjs"
    if node is None or not (ROOT / "tools/mpy-node/node_modules/@micropython").is_dir():
        pytest.skip("node or the MicroPython WebAssembly port is not installed (scripts/test.sh installs them)")
    dev = devconfig.provision(fleet, 1)[0].device
    _, img = _builder(fleet, firmware_tree).build_to_file(dev)
    root = tmp_path / "dev"
    for name, content in read_littlefs(fleet.image_path(dev.hex).read_bytes()).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    mods = sorted(n[:-4].replace("/", ".").removesuffix(".__init__") for n in img.files
                  if n.startswith("segelfw/") and n.endswith(".mpy"))
    script = tmp_path / "load.py"
    script.write_text(
        "import sys, json\n"
        "sys.path.insert(0, '/dev/lib')\n"
        f"mods = {mods!r}\n"
        "ok, skipped = [], []\n"
        "for m in mods:\n"
        "    try:\n"
        "        __import__(m)\n"
        "        ok.append(m)\n"
        "    except Exception as e:\n"  # machine, esp32, cryptolib: device-only modules
        "        skipped.append(m + ': ' + str(e))\n"
        "from segelfw import config\n"
        "assert config.__file__.endswith('.mpy'), config.__file__\n"
        "cfg = config.validate(json.load(open('/dev/config.json')))\n"
        "import lora, lora.sync_modem\n"
        "print('RESULT', json.dumps({'ok': ok, 'skipped': skipped, 'device': cfg['device_id'], 'lora': lora.NAME}))\n"
    )
    res = subprocess.run([node, str(runner), "--mount", f"{root}:/dev", "--path", "/dev", str(script)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[7:])
    assert out["device"] == dev.hex and out["lora"] == "lora"
    for pure in ("segelfw.config", "segelfw.protocol", "segelfw.crypto", "segelfw.airtime"):
        assert pure in out["ok"], out
    print(f"loaded on MicroPython: {len(out['ok'])} modules; skipped (device-only imports): {out['skipped']}")


def test_image_larger_than_the_partition_is_refused(fleet: Fleet, firmware_tree: Path, tmp_path: Path) -> None:
    rows = [("nvs", 1, 2, 0x9000, 0x6000), ("factory", 0, 0, 0x10000, 0x300000), ("vfs", 1, 0x81, 0x310000, 0x4000)]
    fw = fwbuild.write_bin(tmp_path / "small.bin", "esp32", rows)
    dev = devconfig.provision(fleet, 1)[0].device
    with pytest.raises(ImageError, match=r"larger than the filesystem region \(16,384 bytes at 0x310000\)|does not fit"):
        _builder(fleet, firmware_tree, micropython_bin=fw).build(dev)


def test_firmware_for_the_wrong_chip_is_refused(fleet: Fleet, firmware_tree: Path) -> None:
    dev = devconfig.provision(fleet, 1, board="tbeam-supreme")[0].device
    with pytest.raises(ImageError, match="is MicroPython for esp32, but board tbeam-supreme has an esp32s3"):
        _builder(fleet, firmware_tree, micropython_bin=fleet.root / "firmware" / "esp32.bin").build(dev)


def test_mpy_version_must_match_the_target(fleet: Fleet, firmware_tree: Path) -> None:
    fleet.settings_path.write_text(fleet.settings_path.read_text().replace('micropython = "1.27"',
                                                                           'micropython = "1.22"'))
    with pytest.raises(ImageError, match=r"mpy-cross emits .mpy v6.3 but the target MicroPython loads v6.2"):
        _builder(fleet, firmware_tree)


def test_missing_package_fails_clearly(fleet: Fleet, firmware_tree: Path) -> None:
    shutil.rmtree(fleet.package_cache / "package" / "6" / "lora-sx126x")
    dev = devconfig.provision(fleet, 1, board="tbeam-supreme")[0].device
    with pytest.raises(packages.PackageError, match="lora-sx126x .* is not in the package cache"):
        _builder(fleet, firmware_tree).build(dev)


def _reachable(firmware_tree: Path, script: str) -> set[str]:
    """segelfw modules CPython's modulefinder finds from a script (every code path, imports in functions too)."""
    finder = modulefinder.ModuleFinder(path=[str(firmware_tree)])
    finder.run_script(str(script))
    return {n for n in finder.modules if n.split(".")[0] == "segelfw"}


def test_each_role_gets_only_the_modules_it_imports(fleet: Fleet, firmware_tree: Path) -> None:
    tracker_dev = devconfig.provision(fleet, 1)[0].device
    base_dev = devconfig.provision(fleet, 1, role="base")[0].device
    builder = _builder(fleet, firmware_tree)
    mods = {d.role: {n[:-4].replace("/", ".").removesuffix(".__init__") for n in builder.build(d).files
                     if n.startswith("segelfw/")} for d in (tracker_dev, base_dev)}
    # the base station's role modules (segelfw.base, or segelfw.basestation and its board wiring in
    # segelfw.hw) and serial link are not on a tracker; the wake cycle, GNSS and seal not on a base station
    def base_only(m: str) -> bool:
        return m.rsplit(".", 1)[-1].startswith("base") or m == "segelfw.serialframe"

    assert not [m for m in mods["tracker"] if base_only(m)]
    assert not mods["base"] & {"segelfw.cycle", "segelfw.nmea", "segelfw.hw.gnss", "segelfw.hw.seal", "segelfw.seal",
                               "segelfw.queue", "segelfw.hw.wifi"}
    assert [m for m in mods["base"] if base_only(m)] and {"segelfw.hw.radio", "segelfw.config"} <= mods["base"]
    # nothing main.py can reach is lost: together the roles cover what modulefinder finds from main.py
    assert _reachable(firmware_tree, str(firmware_tree / "main.py")) <= mods["tracker"] | mods["base"]
    # and a base-station image still boots as one: main.py and config.json are there
    files = builder.build(base_dev).files
    assert "main.py" in files and b'"role": "base"' in files["config.json"]


def test_the_firmwares_role_manifest_decides_when_it_has_one(fleet: Fleet, firmware_tree: Path,
                                                              tmp_path: Path) -> None:
    fw = tmp_path / "fw"
    shutil.copytree(firmware_tree, fw, ignore=shutil.ignore_patterns("__pycache__", "simhw"))
    (fw / "roles.json").unlink(missing_ok=True)
    from_imports = roles.role_modules(fw, "tracker")
    listed = sorted(roles.module_path(m, fw) for m in from_imports if m != "segelfw.hw.wifi")
    (fw / "roles.json").write_text(json.dumps({"roles": {"tracker": {"files": ["main.py", *listed]},
                                                         "base": {"files": ["main.py"]}}}))
    dev = devconfig.provision(fleet, 1)[0].device
    files = _builder(fleet, fw).build(dev).files
    assert "segelfw/hw/wifi.mpy" not in files  # the manifest left it out, so the image does
    assert {f"{p[:-3]}.mpy" for p in listed} <= set(files)
    (fw / "roles.json").write_text(json.dumps({"roles": {"tracker": {"files": ["segelfw/gone.py"]}}}))
    with pytest.raises(ImageError, match="roles.json lists segelfw/gone.py for role 'tracker', but there is no such"):
        _builder(fleet, fw).build(dev)
