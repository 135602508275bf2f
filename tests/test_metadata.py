"""Colours and metadata survive: the ICC profile travels by default, EXIF and XMP on request,
orientation is applied once, multi-frame inputs are announced, and the container's metadata
records are validated like every other field (format version 5)."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import display_p3_profile, kodak_rgb
from mlic.cli.main import main
from mlic.io.container import METADATA, FormatError, Header, MlicFile, TileStreams, peek, unpack
from mlic.io.metadata import icc_description, parse_keep

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="mlic test"/></rdf:RDF></x:xmpmeta>')  # fmt: skip


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("meta")
    rgb = kodak_rgb("kodim15.png", 48, 80)
    Image.fromarray(rgb).save(d / "p3.png", icc_profile=display_p3_profile())
    rgba = np.dstack([rgb, np.tile(np.arange(80, dtype=np.uint8) * 3, (48, 1))])
    Image.fromarray(rgba).save(d / "p3-alpha.png", icc_profile=display_p3_profile())
    Image.fromarray(rgb).save(d / "plain.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "mlic-camera"  # Make
    Image.fromarray(rgb).save(d / "camera.jpg", quality=95, exif=exif.tobytes(), xmp=XMP,
                              icc_profile=display_p3_profile())  # fmt: skip
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    return d


def _code(photos, tmp_path, name, weights, *options):
    """compress (with ``options``) and decompress; returns the .mlic path and the decoded PNG."""
    mlic, png = tmp_path / f"{name}.{len(options)}.mlic", tmp_path / f"{name}.{len(options)}.png"
    assert main(["compress", str(photos / name), "-o", str(mlic), "--weights", str(weights), *options]) == 0
    assert main(["decompress", str(mlic), "-o", str(png), "--weights", str(weights)]) == 0
    return mlic, Image.open(png)


def test_a_p3_profile_travels_byte_for_byte_by_default(photos, tmp_path, weights, capsys):
    for name in ("p3.png", "p3-alpha.png"):
        mlic, out = _code(photos, tmp_path, name, weights)
        assert out.info.get("icc_profile") == display_p3_profile()
        assert out.mode == ("RGBA" if "alpha" in name else "RGB")
    capsys.readouterr()
    assert main(["info", str(mlic), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format_version"] == 5 and info["icc_profile"].startswith("Display P3 (mlic test)")
    # no profile in, none out; --metadata none drops it
    _, plain = _code(photos, tmp_path, "plain.png", weights)
    assert "icc_profile" not in plain.info
    _, dropped = _code(photos, tmp_path, "p3.png", weights, "--metadata", "none")
    assert "icc_profile" not in dropped.info


def test_exif_and_xmp_travel_only_on_request_and_orientation_is_applied_once(photos, tmp_path, weights):
    raw = Image.open(photos / "camera.jpg")
    assert raw.size == (80, 48) and raw.getexif()[0x0112] == 6
    _, default = _code(photos, tmp_path, "camera.jpg", weights)
    assert default.size == (48, 80)  # rotated to display, once
    assert not default.getexif() and "XML:com.adobe.xmp" not in default.info
    assert default.info.get("icc_profile") == display_p3_profile()
    _, kept = _code(photos, tmp_path, "camera.jpg", weights, "--metadata", "all", "--tile", "64", "--verify")
    assert kept.size == (48, 80)
    exif = kept.getexif()
    assert exif[0x010F] == "mlic-camera" and exif[0x0112] == 1  # a viewer rotates nothing more
    assert "mlic test" in kept.info["XML:com.adobe.xmp"]
    _, only_exif = _code(photos, tmp_path, "camera.jpg", weights, "--metadata", "exif")
    assert only_exif.getexif()[0x010F] == "mlic-camera" and "icc_profile" not in only_exif.info
    assert main(["compress", str(photos / "camera.jpg"), "-o", str(tmp_path / "x.mlic"), "--weights", str(weights),
                 "--metadata", "gps"]) == 1  # fmt: skip


def test_an_animation_is_announced_or_refused(photos, tmp_path, weights, capsys):
    assert main(["compress", str(photos / "anim.gif"), "-o", str(tmp_path / "a.mlic"), "--weights", str(weights)]) == 0
    assert "has 2 frames; only the first is coded" in capsys.readouterr().err
    assert main(["compress", str(photos / "anim.gif"), "-o", str(tmp_path / "b.mlic"), "--weights", str(weights),
                 "--strict"]) == 2  # fmt: skip
    assert "has 2 frames; mlic codes still images" in capsys.readouterr().err
    assert not (tmp_path / "b.mlic").exists()
    assert main(["compress", str(photos / "plain.png"), "-o", str(tmp_path / "c.mlic"), "--weights", str(weights),
                 "--strict"]) == 0  # fmt: skip
    assert "frames" not in capsys.readouterr().err


def _file(metadata: dict, version: int = 5) -> bytes:
    h = Header("mlic-plus", "mse", 1, b"\0" * 8, 64, 64, "rgb", 8, 0, 0, 1, version)
    return MlicFile(h, [TileStreams((4, 4), (1, 1), (0, 0), b"z", b"y", [0])], metadata=metadata).to_bytes()


def _records(raw: bytes, count: int) -> bytes:
    """A file whose metadata section is ``count`` and then ``raw`` (hand-made records)."""
    empty = _file({})
    at = 36 + empty[5]  # after the count byte at 35 + len(model name) (docs/format.md)
    return _recrc(empty[: at - 1] + bytes([count]) + raw + empty[at:])


def _recrc(data: bytes) -> bytes:
    return data[:-4] + struct.pack(">I", zlib.crc32(data[:-4]))


def test_metadata_records_are_validated_like_every_field():
    meta = {"icc": display_p3_profile(), "xmp": XMP}
    data = _file(meta)
    assert unpack(data).metadata == meta and peek(data).metadata == meta
    with pytest.raises(ValueError, match="cannot carry metadata"):
        _file(meta, version=4)
    with pytest.raises(ValueError, match="unknown metadata"):
        _file({"gps": b"x"})
    with pytest.raises(ValueError, match="limit"):
        _file({"exif": bytes(METADATA["exif"][1] + 1)})
    assert unpack(_records(b"EXIF" + struct.pack(">I", 1) + b"x", 1)).metadata == {"exif": b"x"}  # the forger works
    at = data.index(b"ICCP")
    bad = {
        "tag": data[:at] + b"ICCQ" + data[at + 4 :],
        "length over the limit": data[:at + 4] + struct.pack(">I", (4 << 20) + 1) + data[at + 8 :],
        "length past the end": data[:at + 4] + struct.pack(">I", len(data)) + data[at + 8 :],
        "count": data[: at - 1] + bytes([4]) + data[at:],
        "order": _records(b"XMP " + struct.pack(">I", 1) + b"x" + b"ICCP" + struct.pack(">I", 1) + b"x", 2),
        "repeated": _records((b"EXIF" + struct.pack(">I", 1) + b"x") * 2, 2),
        "empty": _records(b"EXIF" + struct.pack(">I", 0), 1),
    }
    for what, forged in bad.items():
        for blob in (forged, _recrc(forged)):  # a broken CRC is refused anyway; a repaired one by the field
            with pytest.raises(FormatError):
                unpack(blob)
        if what != "length past the end":
            with pytest.raises(FormatError):
                peek(forged)  # also without the CRC (mlic info on a damaged file)
    flipped = bytearray(data)
    flipped[at + 8 + 100] ^= 1  # one bit of the profile itself: the CRC refuses the file
    with pytest.raises(FormatError, match="CRC"):
        unpack(bytes(flipped))


def test_metadata_choices_and_profile_descriptions():
    assert parse_keep("icc") == ("icc",) and parse_keep("all") == ("icc", "exif", "xmp") and parse_keep("none") == ()
    assert parse_keep("xmp, EXIF") == ("exif", "xmp")
    for bad in ("", "gps", "all,icc", "none,icc"):
        with pytest.raises(ValueError):
            parse_keep(bad)
    assert icc_description(display_p3_profile("Wide gamut")) == "Wide gamut"
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # ICC v4: 'mluc' text
    assert icc_description(srgb) and "sRGB" in icc_description(srgb)
    assert icc_description(b"\0" * 10) is None and icc_description(display_p3_profile()[:140]) is None


def test_a_profile_of_another_colour_space_than_the_coded_pixels_is_dropped(tmp_path):
    """A CMYK JPEG is coded as RGB: its CMYK profile no longer describes the pixels."""
    from mlic.io.image import read_image

    p3 = display_p3_profile()
    cmyk_profile = p3[:16] + b"CMYK" + p3[20:]
    rgb = kodak_rgb("kodim15.png", 32, 32)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "print.jpg", icc_profile=cmyk_profile)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png", icc_profile=p3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png", icc_profile=p3)
    assert read_image(tmp_path / "print.jpg").metadata == {}
    assert read_image(tmp_path / "gray.png").metadata == {}
    assert read_image(tmp_path / "rgb.png").metadata == {"icc": p3}
