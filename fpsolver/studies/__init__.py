"""Verification studies run by ``fpsolver validate`` (registry: :mod:`fpsolver.validate`).

One function per study, ``study_x(quick, out_dir) -> dict``: orders (space, time), the
exponential formula, energy and conservation, particles vs the PDE (superposition,
interacting), long-time rates, exact Ornstein-Uhlenbeck solutions, the GAN step as an Euler
step, and the FiPy cross-check. Each measures numbers, compares them with MATH.md's
predictions and draws one figure (PNG and PDF).
"""
