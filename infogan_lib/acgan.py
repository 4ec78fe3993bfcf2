"""A conditional GAN from InfoGAN's own networks: AC-GAN (Odena et al., 2017), the supervised contrast.

AC-GAN's discriminator has an auxiliary classifier, here InfoGAN's Q head. It is trained on real
images *with their labels* y as well as on generated ones:

    D, Q:  min −V(D, G) + CE(Q(x), y) + CE(Q(G(z, c)), c)        x real, y its label
    G:     min −E[log D(G(z, c))] + CE(Q(G(z, c)), c)

Without the term CE(Q(x), y) this is InfoGAN with λ_cat = 1 and no continuous codes' term (Q reads
G(z, c) itself, not a moved copy): c would still be used, but which value draws which digit would
be the model's own choice. With it, Q's category k means the label k, so c = 3 draws a 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import Recipe
from .data import to_model_range
from .latent import LatentBatch, LatentSpec
from .losses import discriminator_loss, generator_loss
from .models import Discriminator, Generator


def acgan_step(G, D, opt_g, opt_d, real: torch.Tensor, labels: torch.Tensor,
               latent: LatentBatch) -> dict:
    """One update of D and its Q head, then of G (as `step.infogan_step`); returns the losses."""
    c = latent.categorical[:, 0]
    fake = G(latent.input())
    real_logit, q_real = D(real)
    fake_logit, q_fake = D(fake.detach())
    supervised = F.cross_entropy(q_real.logits[0], labels)                   # CE(Q(x), y)
    loss_d = discriminator_loss(real_logit, fake_logit) + supervised + F.cross_entropy(q_fake.logits[0], c)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    D.requires_grad_(False)
    fake_logit, q_fake = D(fake)
    loss_g = generator_loss(fake_logit) + F.cross_entropy(q_fake.logits[0], c)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), "supervised": supervised.item()}


def train_acgan(images: torch.Tensor, labels: torch.Tensor, steps: int, seed: int = 0,
                recipe: Recipe | None = None) -> tuple[Generator, Discriminator]:
    """`steps` AC-GAN updates on `images` (uint8, (N, 1, 28, 28)) and their `labels`, with the
    recipe's networks, batch size and Adam settings; the same on any machine for a given seed
    and thread count. Returns (G, D) in eval mode."""
    recipe = recipe or Recipe()
    spec: LatentSpec = recipe.spec
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    G, D = Generator(spec, recipe.model), Discriminator(spec, recipe.model)
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr_g, betas=(recipe.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr_d, betas=(recipe.beta1, 0.999))
    for _ in range(steps):
        idx = torch.randint(0, len(images), (recipe.batch_size,), generator=gen)
        acgan_step(G, D, opt_g, opt_d, to_model_range(images[idx]), labels[idx],
                   spec.sample(recipe.batch_size, gen))
    return G.eval(), D.eval()
