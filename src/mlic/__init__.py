"""mlic: the MLIC family of learned image codecs (MLIC, MLIC+, MLIC++).

Data path: image -> g_a -> latent -> entropy model -> symbols -> file, and back.

Layers (imports only point down; tests/test_layers.py)
------------------------------------------------------
nn        building blocks: GDN, residual blocks, bounds, thread-invariant convolutions
context   the three references: channel, local (checkerboard) and global contexts
coding    the entropy coder: integer symbols + table indexes <-> bytes
entropy   probability models (factorized bottleneck for z, Gaussian conditional for y),
          quantisation and the integer CDF tables that encoder and decoder share
models    MLIC, MLIC+, MLIC++, their registry, the one slice loop and the RD loss
io        the .mlic container, images, weights, output files
codec     images <-> .mlic bytes (tiles, alpha, desync guard); zoo: the bundled weights
train     training; eval: measuring against classic codecs; target: size / PSNR targets
cli       the `mlic` command
"""

__version__ = "0.1.0"

import os as _os

# MKL's matrix products with the same bits whatever the thread count: strict conditional
# numerical reproducibility (a value the user set is kept). The probability path computes its
# 1x1 convolutions as matrix products so that a decoder with another thread count makes the
# encoder's choices; MKL's AVX-512 kernels gave the same bits with 1 and 2 threads, its AVX2
# kernels (an AVX2-only CPU) did not. MKL reads this at its first call in the process, so it is
# set here, before mlic (or anything it imports) runs one (docs/determinism.md).
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
