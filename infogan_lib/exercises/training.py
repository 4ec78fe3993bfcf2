"""Checks for notebook 03 (training): a shape through a layer, batch norm's running mean, the step's losses."""

from __future__ import annotations

import numbers

import torch

from ..latent import LatentSpec
from ..losses import discriminator_loss, generator_loss, info_loss
from ..models import Discriminator, Generator, ModelConfig
from .verdict import Wrong, exercise


def check_conv_output_size(conv_output_size) -> None:
    """The output size of a convolution, against nn.Conv2d for 60 (size, kernel, stride, padding)."""
    g = torch.Generator().manual_seed(0)
    with exercise("conv_output_size", "D's trunk (28 → 14 → 7) and 60 random convolutions match nn.Conv2d") as ex:
        for size, want in ((28, 14), (14, 7)):
            got = conv_output_size(size, 4, 2, 1)
            ex.expect(got is not None, "conv_output_size returned None: did you forget the `return`?")
            ex.expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
                      f"a size is a whole number: return an int, not {type(got).__name__} "
                                            f"({got!r}); round down with //")
            ex.expect(got == want, f"D's first layers (kernel 4, stride 2, padding 1) take {size} to {want} "
                                   f"pixels, yours gives {got}: ⌊(n + 2p − k) / s⌋ + 1")
        with torch.random.fork_rng():          # nn.Conv2d draws its weights: leave the notebook's RNG alone
            cases = _conv_cases(g)
        for k, s, p, size, want in cases:
            got = conv_output_size(size, k, s, p)
            ex.expect(got == want, f"nn.Conv2d(kernel={k}, stride={s}, padding={p}) takes {size} pixels to "
                                   f"{want}, yours gives {got}: round down, ⌊(n + 2p − k) / s⌋ + 1")


def _conv_cases(g):
    cases = []
    for _ in range(60):
        k, s, p = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 6), (1, 4), (0, 3)))
        size = int(torch.randint(max(k - 2 * p, 1), 40, (1,), generator=g))
        cases.append((k, s, p, size, torch.nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, size, size)).shape[-1]))
    return cases


def check_running_mean(update_running_mean) -> None:
    """One batch-norm update of the running mean, against nn.BatchNorm1d in training mode."""
    g = torch.Generator().manual_seed(0)
    with exercise("update_running_mean", "matches nn.BatchNorm1d after one training batch, for momenta "
                                         "0.1, 0.01 and 0.3") as ex:
        for momentum in (0.1, 0.01, 0.3):
            bn = torch.nn.BatchNorm1d(3, momentum=momentum).train()
            start = torch.randn(3, generator=g)
            bn.running_mean.copy_(start)
            batch = torch.randn(64, 3, generator=g) * 2 + 5
            with torch.no_grad():
                bn(batch)
            got = update_running_mean(start.clone(), batch, momentum)
            got = torch.as_tensor(ex.value(got, "update_running_mean(running_mean, batch, momentum)"))
            ex.expect(tuple(got.shape) == (3,),
                      f"one running mean per feature: shape (3,) for a (64, 3) batch, yours {tuple(got.shape)}"
                      ": average over the batch dimension, dim=0")
            swapped = momentum * start + (1 - momentum) * batch.mean(0)
            ex.expect(not torch.allclose(got.float(), swapped, atol=1e-5),
                      f"with momentum {momentum} the running mean moves only {momentum:g} of the way towards the "
                      "batch mean: (1 − m)·old + m·batch mean (yours has m and 1 − m swapped)")
            ex.close(got, bn.running_mean, f"with momentum {momentum}: new = (1 − m)·old + m·mean of the batch",
                     tol=1e-5)


def _networks():
    with torch.random.fork_rng():           # seed the networks without resetting the notebook's RNG
        torch.manual_seed(0)
        spec = LatentSpec()
        small = ModelConfig(g_channels=8, d_channels=8, fc=64, q_hidden=32)
        return spec, Generator(spec, small), Discriminator(spec, small).train()   # batch statistics, as in training


def _grads(loss, params):
    return [torch.zeros_like(p) if gr is None else gr
            for p, gr in zip(params, torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True))]


def _same(a, b):
    return all(torch.allclose(x, y, atol=1e-6, rtol=1e-4) for x, y in zip(a, b))


def check_infogan_losses(infogan_losses) -> None:
    """The two losses of one InfoGAN update: values and which networks each one trains."""
    with exercise("infogan_losses", "both values match the library's losses, D's loss does not reach G, "
                                    "G's loss does, and both include the information term") as ex:
        spec, G, D = _networks()
        latent = spec.sample(16, torch.Generator().manual_seed(1))
        real = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
        fake = G(latent.input())
        out = infogan_losses(D, real, fake, latent)
        ex.expect(isinstance(out, (tuple, list)) and len(out) == 2,
                  f"return two losses, (loss of D and Q, loss of G); yours returned {type(out).__name__}")
        loss_d, loss_g = out
        with torch.no_grad():
            real_logit, _ = D(real)
            fake_logit, q = D(fake)
            info = info_loss(q, latent, spec).loss
            want_d = discriminator_loss(real_logit, fake_logit) + info
            want_g = generator_loss(fake_logit) + info
            both_logit, _ = D(torch.cat([real, fake]))
            together = discriminator_loss(both_logit[:16], both_logit[16:]) + info
        ex.expect(torch.is_tensor(loss_d) and torch.is_tensor(loss_g), "both losses must be torch tensors")
        ex.expect(not torch.allclose(loss_d.detach(), want_d - info, atol=1e-5),
                  "D's loss has no information term: D and Q minimize −V − λ L_I, that is "
                  "discriminator_loss + info_loss(…).loss (this is how Q learns)")
        ex.expect(not torch.allclose(loss_d.detach(), together, atol=1e-5),
                  "D saw the real and the generated images in one batch: in training mode batch norm then mixes "
                  "their statistics; call D on each batch separately, as the kit's step does")
        ex.close(loss_d, want_d.item(), "D and Q minimize discriminator_loss(D(real), D(fake)) + info_loss(q, latent, "
                                        "latent.spec).loss", tol=1e-5)
        ex.expect(not torch.allclose(loss_g.detach(), want_g - info, atol=1e-5),
                  "G's loss has no information term: G minimizes generator_loss − λ L_I, which is what "
                  "makes it put c into its images")
        ex.close(loss_g, want_g.item(), "G minimizes generator_loss(D(fake)) + info_loss(q, latent, latent.spec).loss "
                                        "(the non-saturating loss, notebook 01)", tol=1e-5)
        ex.expect(loss_d.grad_fn is not None, "D's loss is not connected to D: no torch.no_grad(), .detach() or .item() "
                                              "on it; detach only the images, D(fake.detach())")
        ex.expect(loss_g.grad_fn is not None, "G's loss is not connected to G: compute it on D(fake), without "
                                              "torch.no_grad() or .detach()")
        g_params, d_params = list(G.parameters()), list(D.parameters())
        try:
            d_grads, g_grads = _grads(loss_d, g_params + d_params), _grads(loss_g, g_params)
        except RuntimeError as err:
            if "second time" in str(err):
                raise Wrong("do not call .backward() inside infogan_losses: return the two losses, the training "
                            "step calls backward") from None
            raise
        ex.expect(not any(gr.abs().sum() > 0 for gr in d_grads[:len(g_params)]),
                  "D's loss reaches G's weights: D's step must see the fakes detached from G, "
                  "D(fake.detach()), or the D step would also train G (against itself)")
        fake_d = fake.detach()
        real_logit, _ = D(real)
        fake_logit, q = D(fake_d)
        ref_d = _grads(discriminator_loss(real_logit, fake_logit) + info_loss(q, latent, spec).loss, d_params)
        ref_adv = _grads(discriminator_loss(real_logit, fake_logit), d_params)
        mine_d = d_grads[len(g_params):]
        ex.expect(_same(mine_d, ref_d),
                  "D's loss has the right value but does not train D and Q fully: "
                  + ("the information term does not reach Q (no .detach() or torch.no_grad() on it or on D(fake.detach()))"
                     if _same(mine_d, ref_adv) else
                     "D must learn from the fakes too: detach the images, D(fake.detach()), not D's output "
                     "(no fake_logit.detach(), no torch.no_grad() around D)"))
        fake_logit, q = D(fake)
        ref_g = _grads(generator_loss(fake_logit) + info_loss(q, latent, spec).loss, g_params)
        ref_g_adv = _grads(generator_loss(fake_logit), g_params)
        ex.expect(_same(g_grads, ref_g),
                  "G's loss has the right value but does not train G through both terms: "
                  + ("the information term must come from D(fake), not from the detached pass of D's loss"
                     if _same(g_grads, ref_g_adv) else
                     "compute both generator_loss and the information term from D(fake), not D(fake.detach())"))
