"""Coupled systems of a generator and a discriminator (MATH.md §10, Turinici's dual flows).

- :mod:`.spec` -- the ``[discriminator]`` table of a case file (validated, shared by every solver);
- :mod:`.dual` -- the discriminator's flow (L2 implicit per cell, kernel metric by FFT), the GAN
  value, the generator's face velocity h'(f) grad f and the coupled step limits;
- :mod:`.grid` -- Case -> Result on the grid (upwind transport + the discriminator update);
- :mod:`.discrete_gan` -- alternating discriminator / generator steps, whose small-step limit is
  the dual flow.
"""
