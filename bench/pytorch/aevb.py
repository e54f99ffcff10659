"""The paper's MNIST AEVB step (784-500-20, estimator B, L = 1, the N(0, I) weight prior, Adagrad) written as one
would in PyTorch: nn.Linear layers, autograd on the loss, torch.optim.Adagrad. Vae.Bench runs it beside Vae's step.

  aevb.py worker --data train.npy --m 100 --threads 1 [--bf16]
      prints "ready", then for each line N on stdin runs N steps and prints the seconds they took.
  aevb.py train --data train.npy --test test.npy --samples 10000000 --eval-every 1000000 --out curve.csv [--bf16]
      trains and writes samples,seconds,test_bound (seconds of training only; the bound is estimator B's mean over the
      test set with one draw of the noise per image, as Vae's metrics.csv).

--bf16: the forward pass under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision (the linear
layers' multiplies in bfloat16; weights, Adagrad and the loss in float32).
"""
import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Vae(nn.Module):
    """Appendix C: a Gaussian MLP encoder and a Bernoulli MLP decoder, one tanh hidden layer each, N(0, 0.01^2) init."""

    def __init__(self, d=784, h=500, j=20):
        super().__init__()
        self.hidden = nn.Linear(d, h)
        self.mean = nn.Linear(h, j)
        self.logvar = nn.Linear(h, j)
        self.decoder_hidden = nn.Linear(j, h)
        self.logits = nn.Linear(h, d)
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 0.01)

    def bound(self, x):
        """Per-datapoint estimator B (eq. 10): log p(x|z) for one z ~ q(z|x), minus Appendix B's KL."""
        h = torch.tanh(self.hidden(x))
        mu, logvar = self.mean(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.logits(torch.tanh(self.decoder_hidden(z)))
        log_likelihood = -F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar.float() - mu.float() ** 2 - logvar.float().exp()).sum(1)
        return log_likelihood - kl

    def weights(self):
        return [m.weight for m in (self.hidden, self.mean, self.logvar, self.decoder_hidden, self.logits)]


class Trainer:
    def __init__(self, data, m, bf16, seed=1, step_size=0.02):
        torch.manual_seed(seed)
        self.data, self.m, self.bf16 = data, m, bf16
        self.model = Vae()
        self.optimizer = torch.optim.Adagrad(self.model.parameters(), lr=step_size)

    def step(self):
        x = self.data[torch.randint(0, self.data.shape[0], (self.m,))]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            bound = self.model.bound(x).sum()
        # The paper's N(0, I) prior on the weights, scaled by M/N.
        log_prior = -0.5 * sum((w ** 2).sum() for w in self.model.weights()) * (self.m / self.data.shape[0])
        loss = -(bound + log_prior) / self.m
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def test_bound(self, test):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return float(torch.cat([self.model.bound(test[i:i + 1000]) for i in range(0, test.shape[0], 1000)]).mean())


def load(path):
    a = np.load(path)
    if a.dtype != np.float32 or a.ndim != 2:
        sys.exit(f"{path}: expected a float32 matrix, got {a.dtype} of shape {a.shape}")
    return torch.from_numpy(a)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["worker", "train"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--test")
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--samples", type=float, default=1e7)
    parser.add_argument("--eval-every", type=float, default=1e6)
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    trainer = Trainer(load(a.data), a.m, a.bf16, a.seed)
    if a.mode == "worker":
        print("ready", flush=True)
        for line in sys.stdin:
            n = int(line)
            start = time.perf_counter()
            for _ in range(n):
                trainer.step()
            print(f"{time.perf_counter() - start:.6f}", flush=True)
        return
    if not a.test or not a.out:
        sys.exit("train needs --test and --out")
    test = load(a.test)
    steps, every = int(a.samples) // a.m, int(a.eval_every) // a.m
    seconds = 0.0
    with open(a.out, "w") as out:
        out.write("samples,seconds,test_bound\n")
        for s in range(1, steps + 1):
            start = time.perf_counter()
            trainer.step()
            seconds += time.perf_counter() - start
            if s % every == 0 or s == steps:
                out.write(f"{s * a.m},{seconds:.1f},{trainer.test_bound(test):.4f}\n")
                out.flush()


if __name__ == "__main__":
    main()
