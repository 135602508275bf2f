"""The .mlic container: layout, validation before decoding, and the desync guard."""

from __future__ import annotations

import struct

import pytest
import torch
from conftest import TINY, kodak_crop

from mlic.codec import compress_image, decompress_bytes, ModelMismatchError
from mlic.errors import CodingError, DesyncError
from mlic.io.container import READABLE_VERSIONS, VERSION, FormatError, Header, MlicFile, TileStreams, peek_header, unpack
from mlic.io.image import ImageData
from mlic.models import MLIC, build


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("mlic-plus", **TINY).eval()
    m.update()
    return m


def _image(h=64, w=96):
    x = kodak_crop(h=h, w=w)
    return ImageData((x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())


def test_pack_unpack_round_trip_and_header_fields(model):
    data = compress_image(model, _image(), quality=3, metric="mse")
    f = unpack(data)
    h = f.header
    assert (h.model, h.metric, h.quality, h.height, h.width, h.layout, h.bit_depth) == ("mlic-plus", "mse", 3, 64, 96, "rgb", 8)
    assert f.tiles[0].latent == (4, 8) and f.tiles[0].hyper == (1, 2) and f.tiles[0].padding == (0, 32)
    assert len(f.tiles[0].checks) == 4  # 4 slices, one 16-bit check per slice
    assert f.to_bytes() == data
    assert data[:4] == b"MLIC" and data[4] == VERSION == 5


def test_older_versions_are_still_read_each_with_its_own_probability_path(model, monkeypatch):
    img = _image(64, 64)
    files = {v: compress_image(model, img, version=v) for v in READABLE_VERSIONS}
    assert [unpack(files[v]).header.version for v in READABLE_VERSIONS] == [1, 2, 3, 4, 5]
    used = []
    real = MLIC.decompress

    def spy(self, *args, **kw):
        used.append(kw["probability_dtype"])
        return real(self, *args, **kw)

    monkeypatch.setattr(MLIC, "decompress", spy)
    decoded = {v: decompress_bytes(files[v], model).rgb for v in READABLE_VERSIONS}
    assert used == [torch.float32, torch.float32, torch.float64, torch.float64, torch.float64]  # from version 3: float64
    assert (decoded[1] == decoded[2]).all() and (decoded[3] == decoded[4]).all() and (decoded[4] == decoded[5]).all()
    assert files[4][5:] != files[3][5:]  # version 4's quality field is 2 bytes
    assert len(files[5]) == len(files[4]) + 1  # version 5: a metadata count (0 records)
    # version 1's checksums read as version 2 no longer match: z is part of version 2's
    f = unpack(files[1])
    f.header.version = 2
    with pytest.raises(DesyncError):
        decompress_bytes(f.to_bytes(), model)


def test_a_replaced_or_damaged_z_stream_never_decodes(model):
    a = unpack(compress_image(model, _image(128, 192)))
    # a well-formed z stream holding other symbols (random-init z is nearly constant across images)
    other_z = model.entropy_bottleneck.compress(torch.full((1, TINY["N"], 2, 3), 3.0))[0]
    assert other_z != a.tiles[0].z
    for z in (other_z, b"", a.tiles[0].z + a.tiles[0].z, a.tiles[0].z[:-4]):
        a.tiles[0].z, saved = z, a.tiles[0].z
        with pytest.raises((DesyncError, CodingError)):
            decompress_bytes(a.to_bytes(), model)
        a.tiles[0].z = saved
    a.tiles[0].y = a.tiles[0].y + a.tiles[0].y[-4:]  # trailing data in y
    with pytest.raises(CodingError):
        decompress_bytes(a.to_bytes(), model)


def test_every_single_bit_flip_and_truncation_is_refused(model):
    data = compress_image(model, _image(32, 32))
    for i in range(len(data)):
        for bit in (0, 5):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])


def test_absurd_header_is_refused_before_allocation():
    h = Header("mlic-plus", "mse", 1, b"\0" * 8, 1, 1, "rgb", 8, 0, 0, 1)
    data = bytearray(MlicFile(h, [TileStreams((4, 4), (1, 1), (63, 63), b"", b"", [0])]).to_bytes())
    # rewrite height and width to 2^20 x 2^20 (a terapixel) in a 60-byte file
    off = 4 + 2 + len("mlic-plus") + 2 + 8
    data[off : off + 8] = struct.pack(">II", 1 << 20, 1 << 20)
    with pytest.raises(FormatError, match="outside the supported range"):
        peek_header(bytes(data))
    with pytest.raises(FormatError):
        unpack(bytes(data))


def test_weights_mismatch_is_refused(model):
    data = compress_image(model, _image(32, 32))
    other = build("mlic-plus", **TINY).eval()
    with pytest.raises(ModelMismatchError, match="other mlic-plus weights"):
        decompress_bytes(data, other)
    with pytest.raises(ModelMismatchError, match="needs model"):
        decompress_bytes(data, build("mlic", **TINY).eval())


def test_forced_desync_is_detected_and_names_the_slice(model):
    x = kodak_crop(h=64, w=64)
    enc = model.compress(x, check_group=1)
    bias = model.entropy_parameters_nonanchor[2].fusion[-1].bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias.add_(0.3)  # decoder numerics drift at slice 2
    try:
        with pytest.raises(DesyncError, match="slices 2-2"):
            model.decompress(enc["strings"], enc["shape"], enc["image_size"], checks=enc["checks"], check_group=1)
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"], checks=enc["checks"], check_group=1)
    assert torch.equal(dec["y_hat"], enc["y_hat"])


def test_desync_guard_overhead_is_small_for_default_models():
    """What the checksums add to a file, as the codec lays them out (the models' own check group,
    the container's own encoding): at most 0.2 % of a 0.1 bpp Kodak file (4,915 bytes)."""
    from mlic.models.slices import SymbolChecks

    def tile_bytes(checks: int) -> int:
        h = Header("mlic-plus", "mse", 1, b"\0" * 8, 64, 64, "rgb", 8, 0, 0, 1)
        return len(MlicFile(h, [TileStreams((4, 4), (1, 1), (0, 0), b"", b"", [0] * checks)]).to_bytes())

    for name in ("mlic", "mlic-plus", "mlic-plusplus"):
        m = build(name)
        checks = SymbolChecks.count(m.slices, m.default_check_group())
        assert 1 <= checks <= 4, (name, checks)
        overhead = tile_bytes(checks) - tile_bytes(0) + 1  # + the count byte
        assert overhead / 4915 < 0.002, (name, overhead)


def test_tiled_image_round_trip(model):
    img = _image(150, 200)
    data = compress_image(model, img, tile=64, verify=True)
    f = unpack(data)
    assert f.header.tile == 64 and len(f.tiles) == 3 * 4
    out = decompress_bytes(data, model)
    assert out.rgb.shape == (150, 200, 3)


def test_version_4_records_a_fractional_quality_in_1_256_steps(model):
    img = _image(64, 64)
    data = compress_image(model, img, quality=3.5078125, metric="mse")  # 898 / 256
    assert unpack(data).header.quality == 3.5078125
    assert unpack(compress_image(model, img, quality=255.99609375)).header.quality == 255.99609375
    for bad in (3.3, 256.0, -1 / 256):  # not a multiple of 1/256, or out of the 16 bits
        with pytest.raises(ValueError, match="1/256"):
            compress_image(model, img, quality=bad)
    with pytest.raises(ValueError, match="whole qualities"):  # versions 1-3 hold a whole number
        compress_image(model, img, quality=3.5, version=3)
    assert unpack(compress_image(model, img, quality=7, version=3)).header.quality == 7
