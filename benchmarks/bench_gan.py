"""Cost of the spectral loss: one GAN training step with vs without it.

Both variants use the same generator, discriminator and batch in the same
process; steps alternate so that machine load affects both alike. Prints
the median step times and their ratio (goal: at most 1.10).

Usage: ``python benchmarks/bench_gan.py [--size 64] [--ngf 32] [--batch 32] [--steps 20]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--final-convs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from specdetect.gan.config import GanConfig
    from specdetect.gan.losses import (
        discriminator_loss,
        generator_adversarial_loss,
        mean_real_spectrum,
        spectral_loss,
    )
    from specdetect.gan.models import build_discriminator, build_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = GanConfig(size=args.size, ngf=args.ngf, ndf=args.ngf, final_convs=args.final_convs)
    generator = build_generator(config).to(device)
    discriminator = build_discriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    target = mean_real_spectrum(real)

    def step(with_spectral: bool) -> float:
        began = time.perf_counter()
        fake = generator(torch.randn(args.batch, config.nz, device=device))
        d_loss = discriminator_loss("gan", discriminator, real, fake.detach())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = generator_adversarial_loss("gan", discriminator, fake)
        if with_spectral:
            g_loss = g_loss + 1.0 * spectral_loss(fake, target)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - began

    for _ in range(3):  # warm-up (allocations, ring-index cache)
        step(False), step(True)
    without, with_loss = [], []
    for _ in range(args.steps):
        without.append(step(False))
        with_loss.append(step(True))
    base, spec = statistics.median(without), statistics.median(with_loss)
    print(
        f"GAN step, {args.size}x{args.size}, batch {args.batch}, ngf {args.ngf}, "
        f"{args.final_convs} final convs, {torch.get_num_threads()} threads, {device}"
    )
    print(f"  without spectral loss: {base * 1000:8.1f} ms (median of {args.steps})")
    print(f"  with spectral loss:    {spec * 1000:8.1f} ms")
    print(f"  ratio: {spec / base:.3f}x (goal <= 1.10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
