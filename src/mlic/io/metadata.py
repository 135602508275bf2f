"""What an image carries besides its pixels: the ICC colour profile, EXIF and XMP.

They travel byte for byte (no colour conversion: the profile says what the pixels mean). EXIF
orientation is applied to the pixels on reading, so the EXIF that travels says 1 (upright); so
does the XMP ``tiff:Orientation``, which Pillow rewrites with the pixels. Pillow-free and
torch-free except :func:`from_pil` and :func:`pil_save_options`, which take Pillow objects.
"""

from __future__ import annotations

import re
import struct

KINDS = ("icc", "exif", "xmp")  # the container's order (io/container.py METADATA)
EXIF_ORIENTATION = 0x0112
XMP_PNG_KEY = "XML:com.adobe.xmp"  # PNG iTXt keyword for XMP (Adobe XMP spec part 3)


def parse_keep(text: str) -> tuple[str, ...]:
    """``--metadata`` value: ``none``, ``all`` or a comma-separated list of icc, exif, xmp."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["none"]:
        return ()
    if words == ["all"]:
        return KINDS
    bad = [w for w in words if w not in KINDS]
    if not words or bad:
        raise ValueError(f"--metadata takes none, all or a list of {', '.join(KINDS)} (not {text!r})")
    return tuple(k for k in KINDS if k in words)


def from_pil(original, upright, layout: str) -> dict[str, bytes]:
    """The metadata of an opened image: ``original`` as Pillow read it, ``upright`` the same
    after ``ImageOps.exif_transpose`` (whose EXIF and XMP no longer carry a rotation), ``layout``
    what mlic codes ("gray", "rgb", "rgba"). A profile of another colour space than the coded
    pixels (a CMYK or Lab source converted to RGB) no longer describes them and is dropped."""
    out: dict[str, bytes] = {}
    icc = original.info.get("icc_profile")
    if icc and icc_colour_space(icc) == ("GRAY" if layout == "gray" else "RGB"):
        out["icc"] = bytes(icc)
    exif = original.getexif()
    if len(exif) or exif.get_ifd(0x8769):  # any tag (or the camera sub-IFD)
        if EXIF_ORIENTATION in exif:
            exif[EXIF_ORIENTATION] = 1
        data = exif.tobytes()
        if data:
            out["exif"] = data
    xmp = upright.info.get("xmp") or upright.info.get(XMP_PNG_KEY)
    if xmp:
        out["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return out


def pil_save_options(metadata: dict[str, bytes]) -> dict:
    """Keyword arguments of ``Image.save(..., format="PNG")`` that write the metadata."""
    from PIL.PngImagePlugin import PngInfo

    options: dict = {}
    if metadata.get("icc"):
        options["icc_profile"] = metadata["icc"]
    if metadata.get("exif"):
        options["exif"] = metadata["exif"]
    if metadata.get("xmp"):
        info = PngInfo()
        info.add_itxt(XMP_PNG_KEY, metadata["xmp"].decode("utf-8", errors="replace"), zip=False)
        options["pnginfo"] = info
    return options


def icc_colour_space(icc: bytes) -> str | None:
    """The profile's data colour space ("RGB", "GRAY", "CMYK", "Lab", ...), or None."""
    if len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return icc[16:20].decode("latin-1").strip() or None


def icc_description(icc: bytes) -> str | None:
    """The profile's description ('desc' tag, ICC v2 text or v4 multi-localised), or None."""
    try:
        (count,) = struct.unpack_from(">I", icc, 128)
        for i in range(min(count, 1000)):
            sig, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            if sig != b"desc":
                continue
            tag = icc[offset : offset + size]
            if tag[:4] == b"desc":  # textDescriptionType: ASCII, count includes the NUL
                (n,) = struct.unpack_from(">I", tag, 8)
                text = tag[12 : 12 + n].split(b"\0")[0].decode("latin-1")
            elif tag[:4] == b"mluc":  # first record: UTF-16BE at an offset from the tag's start
                length, start = struct.unpack_from(">II", tag, 20)
                text = tag[start : start + length].decode("utf-16-be", errors="replace")
            else:
                return None
            text = re.sub(r"[\x00-\x1f\x7f]", "", text).strip()
            return text or None
    except (struct.error, UnicodeDecodeError):
        return None
    return None
