# %% [markdown]
# # A flow of your own, given by MonoFlow's h' alone
# MonoFlow writes a GAN's particle flow as v = h'(log r) grad log r (r = rho_d / rho). Any
# positive h' defines a member of the PDE family: beta'(u) = h'(-log u) (MATH.md section 7).
# Here h'(t) = 1 / sqrt(1 + t^2) (arcsinh), tabulated by quadrature in log u; every solver takes it.

# %%
import numpy as np

import fpsolver

arcsinh = fpsolver.flow_from_hprime(lambda t: 1.0 / np.sqrt(1.0 + t * t), name="arcsinh-h")
print("beta'(1) =", arcsinh.dbeta_at_one)

case = fpsolver.Case(
    domain={"lower": [-6.0], "upper": [6.0], "cells": [300]},
    target={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
    initial=lambda x: -0.5 * ((x[:, 0] - 2.0) / 0.7) ** 2,      # a log-density from Python
    flow=arcsinh,
    time={"dt": 0.05, "save_times": [1.0, 4.0]},
)

# %% The grid solver, FiPy and particles, all with the same h'
runs = {"fv": fpsolver.solve(case), "fipy": fpsolver.solve(case, backend="fipy"),
        "js (for comparison)": fpsolver.solve(case, flow="js")}
swarm = fpsolver.particles(case, n=20_000, seed=0)
rho_d = runs["fv"].rho_d
for name, r in runs.items():
    l1 = [float(np.sum(np.abs(rho - rho_d)) * r.grid.cell_volume) for rho in r.rho]
    assert l1[-1] < l1[0]                                   # every flow moves towards the data
    print(f"{name:20s} L1 to the target at t = {', '.join(f'{t:g}' for t in r.t)}: "
          + ", ".join(f"{v:.3f}" for v in l1))
print(fpsolver.compare(runs["fv"], swarm))

# %% The final densities against the target
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
x = runs["fv"].axes[0]
ax.plot(x, rho_d, "k--", label="target")
for name, r in runs.items():
    ax.plot(x, r.rho[-1], label=f"{name}, t = {r.t[-1]:g}")
ax.legend(fontsize=8)
fig.savefig("custom_monoflow.png", dpi=100)
