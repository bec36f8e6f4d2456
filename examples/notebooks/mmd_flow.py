# %% [markdown]
# # The MMD gradient flow on the grid and with particles
# d_t rho = div(rho grad f), f = k * (rho - rho_d), Gaussian kernel k (MATH.md section 9). The grid
# solver is upwind transport (MUSCL + SSP-RK2); the particles take the exact kernel sums, with no
# density estimate, so the two agree to the Monte-Carlo floor with nothing to tune.

# %%
import os

import numpy as np

import fpsolver

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
CASE = os.path.join(HERE, "..", "mmd_1d.toml")

grid = fpsolver.solve(CASE, save_times=[1.0, 5.0])
swarm = fpsolver.particles(CASE, n=20_000, seed=0, save_times=[1.0, 5.0])
print("1/2 MMD^2 along the run:", np.round(grid.meta["energy"][::40], 5))
table = fpsolver.compare(grid, swarm)
print(table)
assert table[-1]["w1"] < 0.02

# %%
fig = fpsolver.plot(grid, swarm)
fig.savefig("mmd_flow.png", dpi=100)
