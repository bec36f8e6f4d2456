# %% [markdown]
# # GAN training in the loop against the PDE
# Algorithm 1 of Huang & Zhang: train D, move every generated sample by eps grad D / (2 (1 - D)),
# fit the generator to the moved samples. With the exact discriminator and a monotone generator
# fitted exactly this is the explicit Euler step of the js flow (MATH.md section 8), so the
# generator's law follows the PDE solution up to O(eps).

# %%
import os

import fpsolver

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
CASE = os.path.join(HERE, "..", "gan_js_1d.toml")

pde = fpsolver.solve(CASE)
runs = {eps: fpsolver.gan(CASE, epsilon=eps, n=4000, latent="quantiles") for eps in (0.1, 0.05, 0.025)}

# %% W1 between the generator's law and the PDE at the last save time halves with eps
w1 = {eps: fpsolver.compare(pde, g)[-1]["w1"] for eps, g in runs.items()}
for eps, w in w1.items():
    print(f"eps = {eps:<6g} W1(law G, rho(T)) = {w:.2e}")
assert w1[0.025] < w1[0.1]

# %% The generator's histogram on top of the PDE solution
fig = fpsolver.plot(pde, runs[0.025])
fig.savefig("gan_in_the_loop.png", dpi=100)
