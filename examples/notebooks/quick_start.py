# %% [markdown]
# # Quick start: a case, a solution, a figure
# The js flow (GAN Algorithm 1 with the optimal discriminator) from one Gaussian towards a
# two-mode target: d_t rho = div(rho_d grad beta(rho / rho_d)), beta(u) = log(1 + u) / 2.

# %%
import os

import fpsolver

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
EXAMPLES = os.path.join(HERE, "..")

# %% A case file, solved on its grid; the Result holds plain numpy arrays
r = fpsolver.solve(os.path.join(EXAMPLES, "bimodal_1d.toml"))
print(r.t, r.rho.shape, "mass error", r.meta["mass_error"])

# %% The same case from Python, with a finer grid and the KL flow
case = fpsolver.Case(os.path.join(EXAMPLES, "bimodal_1d.toml"), flow="kl")
r_kl = fpsolver.solve(case, cells=[800])

# %% Figures are matplotlib Figures; draw two results side by side
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
fpsolver.plot(r, ax=axes[0])
fpsolver.plot(r_kl, ax=axes[1])
fig.savefig("quick_start.png", dpi=100)
