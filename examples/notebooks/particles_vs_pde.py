# %% [markdown]
# # Particles against the PDE
# The distribution-dependent ODE dY/dt = v(rho_t)(Y) with interacting particles (a KDE of the
# particles gives v), against the finite-volume solution of the same case.

# %%
import numpy as np

import fpsolver

case = fpsolver.Case(
    domain={"lower": [-5.0], "upper": [5.0], "cells": [400]},
    target={"kind": "gaussian_mixture", "components": [
        {"weight": 0.5, "mean": [-1.5], "std": [0.5]},
        {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
    initial={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
    flow="js",
    time={"dt": 0.02, "save_times": [0.5, 2.0]},
)
pde = fpsolver.solve(case)
swarm = fpsolver.particles(case, n=20_000, seed=1)

# %% L1, W1 and KS per save time
table = fpsolver.compare(pde, swarm)
print(table)
assert table[-1]["w1"] < 0.05

# %% Particles can also start from your own points (use = "as-is": they are the particles)
points = np.random.default_rng(2).normal(0.0, 1.0, size=(5_000, 1))
own_case = fpsolver.Case(case, initial={"kind": "samples", "points": points, "use": "as-is", "bandwidth": 0.5})
own = fpsolver.particles(own_case, seed=1)
assert np.array_equal(own.positions[0], points)

# %% The comparison figure
fig = fpsolver.plot(pde, swarm)
fig.savefig("particles_vs_pde.png", dpi=100)
