"""One optimizer step of a model whose loss dominates, fastloss.torch against
torch's own loss (issue: "use fastloss from PyTorch training loops").

``impl`` picks the loss: ``torch`` (``F.cross_entropy`` / ``F.ctc_loss`` on
``log_softmax``) or ``fastloss`` (``fastloss.torch.cross_entropy`` /
``ctc_loss(..., from_logits=True)``); the ratio of the two ``time_step``
results is the speed-up a training loop sees. Float32, fastloss's default
backend, 1 and 2 threads.
"""
from .common import THREADS


class OptimizerStep:
    params = [["ce 512x256->32000", "ctc T200 N16 C64 S40"], ["torch", "fastloss"], THREADS]
    param_names = ["case", "impl", "threads"]
    timeout = 300

    def setup(self, case, impl, threads):
        import torch
        import torch.nn.functional as F

        import fastloss
        import fastloss.torch as ft

        torch.set_num_threads(threads)
        fastloss.set_num_threads(threads)
        torch.manual_seed(0)
        if case.startswith("ce"):
            n, d, c = 512, 256, 32000
            self.x = torch.randn(n, d)
            y = torch.randint(0, c, (n,))
            self.model = torch.nn.Linear(d, c)
            self.loss = ((lambda z: F.cross_entropy(z, y)) if impl == "torch"
                         else (lambda z: ft.cross_entropy(z, y)))
        else:
            t, n, d, c, s = 200, 16, 256, 64, 40
            self.x = torch.randn(t, n, d)
            targets = torch.randint(1, c, (n, s))
            il = torch.full((n,), t)
            tl = torch.randint(s // 2, s + 1, (n,))
            self.model = torch.nn.Linear(d, c)
            self.loss = ((lambda z: F.ctc_loss(z.log_softmax(-1), targets, il, tl))
                         if impl == "torch"
                         else (lambda z: ft.ctc_loss(z, targets, il, tl, from_logits=True)))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        self.time_step(case, impl, threads)  # warm-up (Numba compiles or loads its cache)

    def time_step(self, case, impl, threads):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x))
        loss.backward()
        self.opt.step()
