"""``fpsolver gan``: options -> :func:`run_gan` -> result file and a summary."""
from __future__ import annotations

from ..progress import ProgressBar
from ..result import Result
from .loop import run_gan
from .options import from_table, merged

CLI_OPTIONS = ("epsilon", "discriminator", "generator", "knots", "fit_steps", "generator_loss",
               "latent", "n", "batch", "seed")


def run_gan_cli(args, case, out_path: str) -> int:
    """Run the loop for the parsed command line (the case's [gan] table below it); write; summarise."""
    opts = merged(from_table(case.raw.get("gan")), **{k: getattr(args, k, None) for k in CLI_OPTIONS})
    if getattr(args, "penalty", None) is not None:
        opts = merged(opts, kernel={**opts.kernel, "penalty": args.penalty})
    total = max(1, int(round(case.save_times[-1] / (opts.epsilon or case.dt))))
    bar = ProgressBar("gan", total, enabled=not args.quiet)
    res = run_gan(case, opts, progress=bar)
    bar.close()
    res.save(out_path)
    if not args.quiet:
        print(summary_gan(res, out_path))
    return 0


def summary_gan(res: Result, out: str) -> str:
    """One screen: players, step, iterations, divergence (one line), JS and losses, wall time."""
    m = res.meta
    gen = m["generator"] + (f" (J = {m['knots']})" if m.get("knots") else "")
    fit = f"K = {m['fit_steps']} steps" if m["fit_steps"] is not None else \
        ("the tier's default steps" if m["generator"] == "mlp" else "exact fit")
    lines = [f"wrote {out}",
             f"  flow {m['flow_name']}, D {m['discriminator']}, G {gen}, loss {m['generator_loss']} ({fit})",
             f"  eps {m['epsilon']:g}, {m['iterations']} of {m['iterations_planned']} iterations, "
             f"N {m['n']:,} samples, batch {m['batch']:,}, latents {m['latent']}, seed {m['seed']}"]
    if m["diverged"]:
        d = m["diverged"]
        lines.append(f"  DIVERGED at iteration {d['iteration']} (t = {d['time']:g}): {d['reason']}; "
                     f"saved up to t = {res.t[-1]:g}")
    js = [v for v in m["js"] if v is not None]
    if js:
        lines.append(f"  JS(rho_G, rho_d)  {js[0]:.4g} -> {js[-1]:.4g}")
    if m["disc_loss"]:
        lines.append(f"  D loss           {m['disc_loss'][0]:.4g} -> {m['disc_loss'][-1]:.4g} (log 4 = 1.386 at D = 1/2)")
    res_fit = [v for v in m["fit_residual"] if v is not None]
    if res_fit:
        lines.append(f"  fit residual     max {max(res_fit):.3g}")
    if m["min_slope"]:
        lines.append(f"  min G'           {min(m['min_slope']):.4g}")
    lines.append("  t          mean" + " " * 14 + "std")
    for t, mu, sd in zip(res.t, m["mean"], m["std"]):
        lines.append(f"  {t:<9.4g}  {_vec(mu):<18} {_vec(sd)}")
    lines.append(f"  wall time        {m['wall_time']:.2f} s")
    return "\n".join(lines)


def _vec(v) -> str:
    return ", ".join(f"{x:+.4f}" for x in v)
