"""``fpsolver particles``: options -> :func:`solve_particles` -> result file and a summary."""
from __future__ import annotations

from ..progress import ProgressBar
from ..result import Result
from .solver import solve_particles


def solve_particles_cli(args, case, out_path: str) -> int:
    """Run the particle solver for the parsed command line; write ``out_path``; print a summary."""
    pde = None
    if getattr(args, "pde", None):
        pde = Result.load(args.pde, expect="density")
    if args.resume and args.checkpoint is None:
        args.checkpoint = args.resume  # keep checkpointing into the file we resumed from
    bar = ProgressBar(f"particles ({args.mode})", 1000, enabled=not args.quiet)
    res = solve_particles(case, n=args.n, seed=args.seed, bandwidth=args.bandwidth,
                          integrator=args.integrator, mode=args.mode, pde=pde,
                          save_positions=args.save_positions, progress=bar,
                          checkpoint_path=args.checkpoint, checkpoint_every=args.checkpoint_every,
                          resume=args.resume, pde_path=args.pde or "<pde>",
                          mmd_velocity=getattr(args, "mmd_velocity", "auto"))
    bar.close()
    res.save(out_path)
    if not args.quiet:
        print(summary_particles(res, out_path))
    return 0


def summary_particles(res: Result, out: str) -> str:
    """One screen: settings, steps, particles in the box, mean and spread per save time."""
    m = res.meta
    n = m["n"]
    lines = [f"wrote {out}",
             f"  mode {m['mode']}, flow {m['flow']}, integrator {m['integrator']}, "
             f"N {n:,} (positions of {m['n_saved']:,} saved), seed {m['seed']}"]
    disc = m.get("discriminator")
    if disc:
        how = (f"kernel metric, sigma {disc['kernel']['sigma']:g}, exact sums over the particles"
               if disc["metric"] == "kernel" else "L2 metric, KDE of the particles")
        lines.append(f"  discriminator    kappa {disc['rate']:g}, {how}, f(0) {disc['initial']}; GAN value "
                     f"{m['gan_value'][0]:.6g} -> {m['gan_value'][-1]:.6g}")
    if m.get("mmd_velocity"):
        how = "direct sums" if m["mmd_velocity"] == "direct" else \
            f"binning + FFT on {'x'.join(map(str, m['binning_cells']))} cells"
        lines.append(f"  MMD velocity     {how} (asked: {m['mmd_velocity_asked']})")
    elif m["mode"] == "interacting":
        if m.get("bandwidth") is not None:
            lines.append(f"  bandwidth        {m['bandwidth']:.4g} ({m['bandwidth_rule']}), "
                         f"KDE grid {'x'.join(map(str, m['kde_cells']))}")
    else:
        how = (f"re-solved at every step in {m['pde_resolve_time']:.1f} s" if m["pde_resolved"]
               else "saved at every step")
        lines.append(f"  PDE              {m['pde']} (dt {m['pde_dt']:g}, {m['pde_scheme']}, {how})")
    lines.append(f"  steps            {m['steps']} to t = {res.t[-1]:g} "
                 f"(h from {m['min_step']:.3g} to {m['max_step']:.3g}, at most dt = {m['dt_max']:g})")
    inside = m["particles_inside"]
    ok = all(c == n for c in inside)
    lines.append(f"  in the box       {'all ' + format(n, ',') if ok else inside} at every save time")
    lines.append("  t          mean" + " " * 14 + "std")
    for t, mu, sd in zip(res.t, m["mean"], m["std"]):
        lines.append(f"  {t:<9.4g}  {_vec(mu):<18} {_vec(sd)}")
    lines.append(f"  wall time        {m['wall_time']:.2f} s")
    return "\n".join(lines)


def _vec(v) -> str:
    return ", ".join(f"{x:+.4f}" for x in v)
