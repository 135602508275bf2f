"""The `mlic` command on the inputs people have, with a tiny random-init model in a weights file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import kodak_rgb
from mlic.cli.main import main


def photo(h=48, w=64) -> Image.Image:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 7), 128 + 100 * np.cos(yy / 5), (xx + yy) % 256], axis=2)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8), "RGB")


def run(*args) -> int:
    return main([str(a) for a in args])


def roundtrip(tmp_path, weights, name, img_or_save, **kw):
    src = tmp_path / name
    if callable(img_or_save):
        img_or_save(src)
    else:
        img_or_save.save(src, **kw)
    assert run("compress", src, "--weights", weights, "--verify") == 0
    mlic = src.with_suffix(".mlic")
    out = tmp_path / (src.stem + ".out.png")
    assert run("decompress", mlic, "-o", out, "--weights", weights) == 0
    return Image.open(src), Image.open(out)


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp")])
def test_common_formats_round_trip(tmp_path, weights, fmt, ext, capsys):
    src, out = roundtrip(tmp_path, weights, f"photo.{ext}", photo(), format=fmt)
    assert out.mode == "RGB" and out.size == src.size
    line = capsys.readouterr().out.splitlines()[0]
    assert "bytes" in line and "bpp" in line and "verified" in line


def test_grayscale_palette_rgba_and_16_bit(tmp_path, weights):
    _, out = roundtrip(tmp_path, weights, "gray.png", photo().convert("L"))
    assert out.mode == "L"
    _, out = roundtrip(tmp_path, weights, "pal.png", photo().convert("P"))
    assert out.mode == "RGB"
    rgba = photo().convert("RGBA")
    alpha = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    rgba.putalpha(Image.fromarray(alpha))
    src, out = roundtrip(tmp_path, weights, "rgba.png", rgba)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)  # alpha is lossless
    gray16 = np.tile(np.arange(64, dtype=np.uint16) * 1000, (48, 1))
    src, out = roundtrip(tmp_path, weights, "g16.png", Image.fromarray(gray16))
    # written back as 16-bit grayscale (Pillow before 10.1 opens 16-bit PNGs as "I", later as "I;16")
    assert src.mode in ("I;16", "I") and out.mode in ("I;16", "I")
    assert np.asarray(out).max() > 255  # 16-bit values (the channel mean x 257), not 8-bit ones


def test_16_bit_and_gray_mapping_without_the_codec():
    from mlic.io.image import from_pil, to_pil

    gray16 = np.tile(np.arange(64, dtype=np.uint16) * 1000, (4, 1))
    data = from_pil(Image.fromarray(gray16))
    assert (data.layout, data.bit_depth) == ("gray", 16)
    assert np.array_equal(data.rgb[..., 0], np.round(gray16 / 257).astype(np.uint8))
    back = np.asarray(to_pil(data)).astype(np.int64)
    assert np.abs(back - gray16).max() <= 129  # 8-bit precision, restored to the 16-bit range
    rgba = from_pil(Image.new("LA", (3, 2), (77, 9)))
    assert rgba.layout == "rgba" and (rgba.alpha == 9).all() and (rgba.rgb == 77).all()
    pal = Image.new("P", (2, 2))
    pal.info["transparency"] = 0
    assert from_pil(pal).layout == "rgba"
    assert from_pil(Image.new("CMYK", (2, 2))).layout == "rgb"


def test_exif_orientation_is_applied(tmp_path, weights):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    src = tmp_path / "rotated.jpg"
    photo(48, 64).save(src, exif=exif)
    assert run("compress", src, "--weights", weights) == 0
    out = tmp_path / "rotated.png"
    assert run("decompress", tmp_path / "rotated.mlic", "--weights", weights) == 0
    assert Image.open(out).size == (48, 64)


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (17, 9), (3, 130), (2000, 1), (4095, 3)])
def test_tiny_and_odd_sizes(tmp_path, weights, size):
    w, h = size
    _, out = roundtrip(tmp_path, weights, f"s{w}x{h}.png", photo(h, w))
    assert out.size == (w, h)


def test_large_image_is_tiled(tmp_path, weights):
    src = tmp_path / "big.png"
    photo(160, 200).save(src)
    assert run("compress", src, "--weights", weights, "--tile", 64) == 0
    assert run("info", tmp_path / "big.mlic", "--json") == 0
    assert run("decompress", tmp_path / "big.mlic", "--weights", weights, "-o", tmp_path / "out.png") == 0
    assert Image.open(tmp_path / "out.png").size == (200, 160)


def test_no_overwrite_without_force_and_never_the_input(tmp_path, weights, capsys):
    src = tmp_path / "p.png"
    photo().save(src)
    assert run("compress", src, "--weights", weights) == 0
    before = (tmp_path / "p.mlic").read_bytes()
    assert run("compress", src, "--weights", weights) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "p.mlic").read_bytes() == before
    # decompress would write p.png: the original is there, so it refuses
    original = src.read_bytes()
    assert run("decompress", tmp_path / "p.mlic", "--weights", weights) == 2
    assert src.read_bytes() == original
    # even --force never writes over the file being read
    assert run("decompress", tmp_path / "p.mlic", "--weights", weights, "-o", tmp_path / "p.mlic", "--force") == 1
    assert run("compress", src, "--weights", weights, "-o", src, "--force") == 1
    assert src.read_bytes() == original and (tmp_path / "p.mlic").read_bytes() == before
    assert run("compress", src, "--weights", weights, "--force") == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_interrupted_write_leaves_no_partial_output(tmp_path, weights, monkeypatch):
    import mlic.io.files as files_io

    src = tmp_path / "p.png"
    photo().save(src)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(files_io.os, "fsync", boom)
    assert run("compress", src, "--weights", weights) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_bad_inputs_give_one_line_errors(tmp_path, weights, capsys):
    (tmp_path / "notimage.png").write_bytes(b"hello")
    (tmp_path / "bad.mlic").write_bytes(b"MLIC\x01garbage")
    good = tmp_path / "g.png"
    photo().save(good)
    run("compress", good, "--weights", weights)
    corrupt = bytearray((tmp_path / "g.mlic").read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x10
    (tmp_path / "corrupt.mlic").write_bytes(bytes(corrupt))
    capsys.readouterr()
    cases = [
        (["compress", tmp_path / "notimage.png", "--weights", weights], 2),
        (["compress", tmp_path / "missing.png", "--weights", weights], 2),
        (["compress", good, "--weights", tmp_path / "notimage.png", "--force"], 2),
        (["compress", good, "--weights", weights, "--tile", "100", "--force"], 1),
        (["compress", good, "--weights", weights, "--tile", "8192", "--force"], 1),
        (["decompress", tmp_path / "bad.mlic", "--weights", weights], 2),
        (["decompress", tmp_path / "corrupt.mlic", "--weights", weights], 2),
        (["decompress", tmp_path / "g.mlic"], 2),  # model not bundled
        (["info", tmp_path / "notimage.png"], 2),
    ]
    for args, code in cases:
        assert run(*args) == code, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("mlic: error:") and "Traceback" not in err, (args, err)
    for argv in (["compress"], ["compress", str(good), "--bogus"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 1


def test_every_verb_has_help(capsys):
    for verb in ("compress", "decompress", "info", "zoo", "convert-official", "train", "export",
                 "eval", "bench", "bd-rate", "plot", "report"):
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0
        assert "usage: mlic " + verb in capsys.readouterr().out
    assert run("zoo") == 0


def _mlic(*args, threads: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "mlic.cli.main", *map(str, args), "--threads", str(threads)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_decoding_in_a_fresh_process_with_another_thread_count_is_exact(tmp_path, weights):
    # the committed Kodak crops, each also cut to an odd size (padding on both sides of 64)
    src = tmp_path / "src"
    src.mkdir()
    for k, name in enumerate(["kodim01.png", "kodim05.png", "kodim13.png", "kodim15.png", "kodim19.png", "kodim23.png"]):
        Image.fromarray(kodak_rgb(name)).save(src / name)
        Image.fromarray(kodak_rgb(name, 61 + 11 * k, 127 - 9 * k)).save(src / f"odd-{name}")
    images = sorted(src.glob("*.png"))
    assert len(images) == 12
    for enc_threads, dec_threads in ((1, 2), (2, 1)):
        folder = tmp_path / f"enc{enc_threads}"
        folder.mkdir()
        r = _mlic("compress", *images, "-o", folder, "--weights", weights, threads=enc_threads)
        assert r.returncode == 0, r.stderr
        files = sorted(folder.glob("*.mlic"))
        assert len(files) == 12
        r = _mlic("decompress", *files, "-o", folder, "--weights", weights, threads=dec_threads)
        assert r.returncode == 0, r.stderr  # the desync guard verified every slice of every image
        assert len(list(folder.glob("*.png"))) == 12


def test_a_bad_file_in_a_batch_does_not_stop_the_others(tmp_path, weights, capsys):
    good = tmp_path / "good.png"
    photo().save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert run("compress", good, bad, "-o", tmp_path, "--weights", weights) == 2
    captured = capsys.readouterr()
    assert (tmp_path / "good.mlic").exists() and not (tmp_path / "bad.mlic").exists()
    assert captured.err.count("mlic: error:") == 1 and "bad.png" in captured.err


LIGHT_PROBE = """
import sys
from mlic.cli.main import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
heavy = sorted(m for m in ("torch", "scipy", "matplotlib", "mlic.models.mlic", "mlic.codec") if m in sys.modules)
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
sys.exit(rc)
"""


def test_help_info_and_zoo_import_neither_torch_nor_the_models(tmp_path):
    golden = Path(__file__).resolve().parent / "data" / "golden" / "fixed-rate-tiny.v2.mlic"
    verbs = ["compress", "decompress", "info", "zoo", "convert-official", "train", "export",
             "eval", "bench", "bd-rate", "plot", "report"]  # fmt: skip
    for argv in [["--help"], *([v, "--help"] for v in verbs), ["info", str(golden)], ["info", str(golden), "--json"], ["zoo"]]:
        r = subprocess.run([sys.executable, "-c", LIGHT_PROBE, *argv], capture_output=True, text=True)
        assert r.returncode == 0, (argv, r.stderr)
        assert r.stderr.strip().splitlines()[-1] == "HEAVY:", (argv, r.stderr)
