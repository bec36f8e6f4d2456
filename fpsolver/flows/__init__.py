"""The flows fpsolver solves: Wasserstein gradient flows d_t rho = div(rho grad dF/drho) of an energy F.

One module per family of energies:

- :mod:`.local` -- the f-divergence family of MATH.md section 2, dF/drho = f'(rho / rho_d), as
  the PDE d_t rho = div(rho_d grad beta(u)) with its presets (js, kl, reverse-kl, chi2,
  non-saturating) and MonoFlow's minimax (logit shift C) and arcsinh losses of section 7, in
  log space for any density ratio; :mod:`fpsolver.monoflow` builds members
  from MonoFlow's h' alone;
- :mod:`.kernel` -- the MMD family of section 9, dF/drho = k * (rho - rho_d) (Gaussian kernel,
  noise smoothing, the kernel-Sobolev critic), solved by the transport scheme of
  :mod:`fpsolver.fv.transport`.

The solvers import what they need from here. ``NONLOCAL_FLOWS`` maps a case file's flow kind to
the module of a family with a nonlocal potential; such a module gives ``check_spec(table)``
(validates the ``[flow]`` table) and ``phases_from_spec(table)`` (the flows, each with the time up
to which it applies), and its flows give ``potential(rho, rho_d, conv)``, ``energy`` and
``convolution(grid)``, all the transport solver needs. A new energy of that kind is one module
and one entry here.
"""
from . import kernel
from .local import (DEFAULT_FLOW, FLOW_KINDS, GAN_FORM_FLOWS, MONOFLOW_LOSSES, PRESETS, Flow,  # noqa: F401
                    custom_flow, get_flow, minimax_flow, softplus)

NONLOCAL_FLOWS = {"mmd": kernel}
