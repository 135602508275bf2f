"""mlic: the MLIC family of learned image codecs (MLIC, MLIC+, MLIC++).

Data path: image -> g_a -> latent -> entropy model -> symbols -> file, and back.

Subpackages
-----------
entropy  probability models (factorized bottleneck for z, Gaussian conditional for y),
         quantisation and the integer CDF tables that encoder and decoder share
coding   the entropy coder: integer symbols + table indexes <-> bytes
nn       building blocks (GDN, residual blocks)
models   MLIC, MLIC+, MLIC++ and their registry
cli      the `mlic` command
"""

__version__ = "0.1.0"
