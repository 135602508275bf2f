"""Entropy-model context modules (architecture.md §5). All are stateless: masks and
windows are derived from the input's size on every call.

- :mod:`.channel`: channel context from the decoded slices (all models)
- :mod:`.local`: local spatial context from the decoded anchors (stacked conv for MLIC,
  overlapped checkerboard window attention for MLIC+ / MLIC++)
- :mod:`.global_inter`: global inter-slice context (quadratic for MLIC+, linear for MLIC++)
- :mod:`.global_intra`: global intra-slice context (quadratic for MLIC / MLIC+, linear for MLIC++)
- :mod:`.parameters`: entropy-parameter networks and latent residual prediction
"""
