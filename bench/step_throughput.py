"""Training throughput of each OMASGAN stage: the library's loop against a bare PyTorch loop.

For every stage the two loops use the same networks (built by omasgan.networks), the same batch
size, the same Adam settings, the same number of steps and the same `gan` objective; the bare
loop writes the losses inline with torch.nn.functional and does nothing else.  The two run
interleaved (library, bare, library, bare, ...) in one process with the same thread count, and
the script reports the median samples/s of each and the median of the per-round ratios
library / bare, each ratio taken between two runs side by side (target: >= 0.95).

    python bench/step_throughput.py                      # mlp on digits-sized data, 5 rounds
    python bench/step_throughput.py --network dcgan      # 28x28 DCGAN, small width
    python bench/step_throughput.py --quick              # 3 rounds, fewer steps

Writes bench/results/step_throughput-<network>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from omasgan.config import default_config
from omasgan.stage_runner import run_stage
from omasgan.stages.common import StageResult, new_critic, new_generator

STAGES = ("task1", "task2", "task3", "j")


def make_config(network: str, epochs: int, batch: int):
    if network == "mlp":
        config = default_config("digits")
        shape, is_image = (1, 8, 8), True
    else:
        config = default_config("mnist").with_overrides(
            {"network.g_width": 16, "network.d_width": 16, "network.latent_dim": 64, "task2.bank_size": 256}
        )
        shape, is_image = (1, 28, 28), True
    overrides = {f"{s}.epochs": epochs for s in STAGES}
    overrides.update({f"{s}.batch_size": batch for s in STAGES})
    overrides.update({"divergence.name": "gan"})
    return config.with_overrides(overrides), shape, is_image


class Splits:  # the few attributes run_stage reads
    def __init__(self, x, is_image):
        self.train_x, self.is_image = x, is_image



def shuffled_batches(x: torch.Tensor, batch_size: int, epochs: int):
    """The bare loops' batches: per epoch a fresh permutation, cut into whole batches (the rest dropped)."""
    for _ in range(epochs):
        order = torch.randperm(x.shape[0])
        for k in range(x.shape[0] // batch_size):
            yield x[order[k * batch_size : (k + 1) * batch_size]]


def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss``, as the bare loops take it."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bare_task1(config, x, shape, is_image, G, D):
    c, n = config.task1, config.network.latent_dim
    opt_g = torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    steps = 0
    for xb in shuffled_batches(x, c.batch_size, c.epochs):
        fake = G(torch.randn(xb.shape[0], n)).detach()
        loss_d = F.softplus(-D(xb)).mean() + F.softplus(D(fake)).mean()
        step(opt_d, loss_d)
        loss_g = F.softplus(-D(G(torch.randn(c.batch_size, n)))).mean()
        step(opt_g, loss_g)
        steps += 1
    return steps


def bare_task2(config, x, shape, is_image, G, D):
    c, n = config.task2, config.network.latent_dim
    G = G.eval()
    B, Dm = copy.deepcopy(G).train(), copy.deepcopy(D).train()
    for p in list(B.parameters()) + list(Dm.parameters()):
        p.requires_grad_(True)
    for p in G.parameters():
        p.requires_grad_(False)
    opt_b = torch.optim.Adam(B.parameters(), lr=c.lr_b, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(Dm.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    steps = 0
    for _ in range(c.epochs):
        for _ in range(max(1, x.shape[0] // c.batch_size)):
            with torch.no_grad():
                bank = G(torch.randn(c.bank_size, n)).flatten(1)
            z = torch.randn(c.batch_size, n)
            with torch.no_grad():
                positive = G(torch.randn(c.batch_size, n))
            loss_d = F.softplus(-Dm(positive)).mean() + F.softplus(Dm(B(z).detach())).mean()
            step(opt_d, loss_d)
            samples = B(z)
            flat = samples.flatten(1)
            d = torch.cdist(flat, bank).min(dim=1).values.mean()
            ratio = torch.cdist(z, z) / (torch.cdist(flat, flat) + c.eps)
            s = (ratio * ~torch.eye(z.shape[0], dtype=torch.bool)).sum(1).div(z.shape[0] - 1).mean()
            loss_b = F.softplus(Dm(samples)).mean() + c.mu * d + c.nu * s
            step(opt_b, loss_b)
            steps += 1
    return steps


def bare_task3(config, x, shape, is_image, G, D, B):
    c, n = config.task3, config.network.latent_dim
    G, B = G.eval(), B.eval()
    Gp, C = copy.deepcopy(G).train(), copy.deepcopy(D).train()
    for p in list(Gp.parameters()) + list(C.parameters()):
        p.requires_grad_(True)
    opt_g = torch.optim.Adam(Gp.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
    opt_c = torch.optim.Adam(C.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    steps = 0
    for xb in shuffled_batches(x, c.batch_size, c.epochs):
        m = xb.shape[0]
        with torch.no_grad():
            g, b = G(torch.randn(m, n)), B(torch.randn(m, n))
        gp = Gp(torch.randn(m, n)).detach()
        loss_c = -(
            c.alpha * F.logsigmoid(C(xb)).mean() + c.delta * F.logsigmoid(C(g)).mean()
            + c.beta * F.logsigmoid(-C(gp)).mean() + c.gamma * F.logsigmoid(-C(b)).mean()
        )
        step(opt_c, loss_c)
        loss_g = c.beta * F.softplus(-C(Gp(torch.randn(m, n)))).mean()
        step(opt_g, loss_g)
        steps += 1
    return steps


def bare_j(config, x, shape, is_image, B, Gp):
    c, n = config.j, config.network.latent_dim
    B, Gp = B.eval(), Gp.eval()
    J = new_critic(config.network, shape).train()
    opt = torch.optim.Adam(J.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    steps = 0
    for xb in shuffled_batches(x, c.batch_size, c.epochs):
        m = xb.shape[0]
        with torch.no_grad():
            b, g = B(torch.randn(m, n)), Gp(torch.randn(m, n))
        loss = -(F.logsigmoid(J(b)).mean() + c.zeta * F.logsigmoid(-J(xb)).mean()
                 + (1 - c.zeta) * F.logsigmoid(-J(g)).mean())
        step(opt, loss)
        steps += 1
    return steps


def time_library(stage, config, splits, upstream, inputs) -> tuple[int, float]:
    """Run the library's stage on copies of its inputs; return (steps, seconds)."""
    given = dict(upstream)
    if stage in ("task2", "task3"):
        given["task1"] = StageResult("task1", {"generator": inputs[0], "discriminator": inputs[1]})
    if stage == "task3":
        given["task2"] = StageResult("task2", {"boundary": inputs[2]})
    if stage == "j":
        given["task2"] = StageResult("task2", {"boundary": inputs[0]})
        given["task3"] = StageResult("task3", {"generator": inputs[1]})
    start = time.perf_counter()
    result = run_stage(stage, config, splits, {} if stage == "task1" else given)
    return result.steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", choices=("mlp", "dcgan"), default="mlp")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per timed run (default 4 mlp, 1 dcgan)")
    parser.add_argument("--n", type=int, default=None, help="training samples (default 2048 mlp, 1024 dcgan)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.rounds
    epochs = args.epochs or (1 if args.network == "dcgan" or args.quick else 4)
    n = args.n or (1024 if args.network == "dcgan" else 2048)
    config, shape, is_image = make_config(args.network, epochs, args.batch)
    torch.manual_seed(0)
    x = torch.rand((n,) + shape) * 2 - 1
    splits = Splits(x, is_image)

    # upstream modules the later stages need, trained once for 1 epoch
    upstream: dict[str, StageResult] = {}
    warm = config.with_overrides({f"{s}.epochs": 1 for s in STAGES})
    for stage in STAGES:
        upstream[stage] = run_stage(stage, warm, splits, upstream)

    def fresh(stage):
        """Copies of the inputs of a stage, so both loops start from the same modules."""
        t1 = upstream["task1"].modules
        if stage == "task1":
            torch.manual_seed(1)
            return (new_generator(config.network, shape, is_image), new_critic(config.network, shape))
        if stage == "task2":
            return (copy.deepcopy(t1["generator"]), copy.deepcopy(t1["discriminator"]))
        if stage == "task3":
            return (copy.deepcopy(t1["generator"]), copy.deepcopy(t1["discriminator"]),
                    copy.deepcopy(upstream["task2"].modules["boundary"]))
        return (copy.deepcopy(upstream["task2"].modules["boundary"]), copy.deepcopy(upstream["task3"].modules["generator"]))

    bare = {"task1": bare_task1, "task2": bare_task2, "task3": bare_task3, "j": bare_j}
    batch_of = {"task1": config.task1.batch_size, "task2": config.task2.batch_size,
                "task3": config.task3.batch_size, "j": config.j.batch_size}
    report = {"network": args.network, "threads": args.threads, "rounds": rounds, "epochs": epochs, "n": n,
              "batch": args.batch, "torch": torch.__version__, "machine": platform.platform(), "stages": {}}
    print(f"{args.network}: {n} samples of shape {shape}, batch {args.batch}, {epochs} epoch(s) per run, "
          f"{rounds} interleaved rounds, {args.threads} thread(s)")
    print(f"{'stage':<7}{'library samples/s':>20}{'bare samples/s':>18}{'ratio':>8}  (median of per-round ratios)")
    for stage in STAGES:
        lib_rates, bare_rates = [], []
        for round_index in range(rounds):
            # alternate which loop goes first, so neither always pays for a cold start
            order = ("library", "bare") if round_index % 2 == 0 else ("bare", "library")
            for which in order:
                if which == "library":
                    steps, seconds = time_library(stage, config, splits, upstream, fresh(stage))
                    lib_rates.append(steps * batch_of[stage] / seconds)
                    lib_steps = steps
                else:
                    inputs = fresh(stage)
                    start = time.perf_counter()
                    steps = bare[stage](config, x, shape, is_image, *inputs)
                    bare_rates.append(steps * batch_of[stage] / (time.perf_counter() - start))
                    bare_steps = steps
            assert lib_steps == bare_steps, (stage, lib_steps, bare_steps)
        lib, ref = statistics.median(lib_rates), statistics.median(bare_rates)
        paired = statistics.median(a / b for a, b in zip(lib_rates, bare_rates))
        report["stages"][stage] = {"library_samples_per_s": lib_rates, "bare_samples_per_s": bare_rates,
                                   "library_median": lib, "bare_median": ref, "ratio": paired,
                                   "ratio_of_medians": lib / ref, "steps_per_run": lib_steps}
        print(f"{stage:<7}{lib:>20.0f}{ref:>18.0f}{paired:>8.3f}", flush=True)
    ratios = [s["ratio"] for s in report["stages"].values()]
    report["min_ratio"] = min(ratios)
    print(f"lowest ratio {min(ratios):.3f} (target >= 0.95)")
    out = Path(args.out or Path(__file__).parent / "results" / f"step_throughput-{args.network}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
