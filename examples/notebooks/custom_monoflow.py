# %% [markdown]
# # A flow of your own, given by MonoFlow's h' alone
# MonoFlow writes a GAN's particle flow as v = h'(log r) grad log r (r = rho_d / rho). Any
# positive h' defines a member of the PDE family: beta'(u) = h'(-log u) (MATH.md section 7).
# Here h'(t) = 1 / sqrt(1 + t^2) (arcsinh), tabulated by quadrature in log u.

# %%
import numpy as np

import fpsolver

arcsinh = fpsolver.flow_from_hprime(lambda t: 1.0 / np.sqrt(1.0 + t * t), name="arcsinh-h")
print("beta'(1) =", arcsinh.dbeta_at_one)

case = fpsolver.Case(
    domain={"lower": [-6.0], "upper": [6.0], "cells": [300]},
    target={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
    initial=lambda x: -0.5 * ((x[:, 0] - 2.0) / 0.7) ** 2,      # a log-density from Python
    flow="js",
    time={"dt": 0.05, "save_times": [1.0, 4.0]},
)

# %% The low-level stepper takes any Flow object
from fpsolver.fv import FVOperator, crandall_liggett

target, initial = case.discretised()
op = FVOperator.build(case.grid, target)
w0 = (initial.log_cells - target.log_cells).reshape(op.log_rho_d.shape)   # w = log(rho / rho_d)
runs = {name: crandall_liggett(op, flow, w0, case.dt, case.save_steps)
        for name, flow in (("js", "js"), ("arcsinh-h", arcsinh))}
rho_d = np.exp(target.log_cells)
for name, run in runs.items():
    l1 = [float(np.sum(np.abs(r.ravel() - rho_d)) * case.grid.cell_volume) for r in run.saved_rho]
    assert l1[-1] < l1[0]                                   # both flows move towards the data
    print(f"{name:10s} L1 to the target at t = 0, {', '.join(map(str, case.save_times))}: "
          + ", ".join(f"{v:.3f}" for v in l1))

# %% The final densities against the target
import matplotlib.pyplot as plt

x = case.grid.centres[0]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(x, np.exp(target.log_cells), "k--", label="target")
ax.plot(x, np.exp(initial.log_cells), color="0.6", label="start")
for name, run in runs.items():
    ax.plot(x, run.saved_rho[-1], label=f"{name}, t = {case.save_times[-1]:g}")
ax.legend()
fig.savefig("custom_monoflow.png", dpi=100)
