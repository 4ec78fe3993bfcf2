"""One InfoGAN update: the discriminator and Q, then the generator.

    min_{G,Q} max_D  V_InfoGAN(D, G, Q) = V(D, G) − λ L_I(G, Q)       (Chen et al., 2016)

trained as GANs are (Goodfellow et al., 2014, Algorithm 1 with one D step per G step): a step of D
(and Q) on a batch of real and generated images, then a step of G on the same generated batch.

Everything else the kit can add to training plugs in from outside: `info` decides what Q reads
the codes from (`losses.Information`, `moved_copy.ReadsMoved`), and `penalties` are extra terms of
G's loss, each with its own module, equation, name and weight (`anchor.Anchor`,
`overlap.Overlap`). A penalty is any object with a `name`, a `weight` and a call
``penalty(G, fake, latent) -> scalar tensor``.
"""

from __future__ import annotations

import torch

from .latent import LatentBatch
from .losses import Information, discriminator_loss, generator_loss


def infogan_step(G, D, opt_g, opt_d, real: torch.Tensor, latent: LatentBatch,
                 info: Information = Information(), penalties=()) -> dict:
    """One update of D (with its shared trunk and the Q head), then of G; returns the log line.

    D, Q:  min −V(D, G) − λ L_I             on real x and on G(z, c) detached from G
    G:     min −E[log D(G(z, c))] − λ L_I + Σ_k w_k R_k     through D, frozen for this step
    The fake batch is generated once and used by both updates. The log holds the GAN terms
    (d_loss = −V, g_loss), the information term of the D step (q_loss = λ_cat Σ CE + λ_cont Σ NLL),
    the bounds L_I (info_cat, info_cont), D's mean outputs, and each penalty's R_k, unweighted.
    """
    fake = G(latent.input())                                    # x = G(z, c), (B, C, 28, 28)

    real_logit = D.d_head(D.features(real)).squeeze(1)         # D on real images (no code for Q to read), (B,)
    fake_logit, q = D(fake.detach())                           # … on fakes; Q(c | x)
    gan_d = discriminator_loss(real_logit, fake_logit)         # −V(D, G)
    info_d = info(D, fake.detach(), q, latent)                 # −λ L_I (+ const)
    opt_d.zero_grad(set_to_none=True)
    (gan_d + info_d.loss).backward()
    opt_d.step()

    D.requires_grad_(False)                                    # G's gradient flows through D
    fake_logit_g, q_g = D(fake)
    gan_g = generator_loss(fake_logit_g)                       # −E[log D(G(z, c))]
    loss_g = gan_g + info(D, fake, q_g, latent).loss
    extras = {}
    for p in penalties:                                        # + Σ_k w_k R_k
        extras[p.name] = p(G, fake, latent)
        loss_g = loss_g + p.weight * extras[p.name]
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)

    return {
        "d_loss": gan_d.item(), "g_loss": gan_g.item(), "q_loss": info_d.loss.item(),
        "info_cat": info_d.categorical_bound.item(), "info_cont": info_d.continuous_bounds.tolist(),
        "d_real": torch.sigmoid(real_logit).mean().item(),
        "d_fake": torch.sigmoid(fake_logit).mean().item(),
        **{name: value.item() for name, value in extras.items()},
    }
