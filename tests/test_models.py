"""Networks: shapes, ranges, and the batch-norm placement the course explains."""

import pytest
import torch
from torch import nn

from infogan_lib import Discriminator, Generator, LatentSpec, ModelConfig
from infogan_lib.models import QOutput


@pytest.mark.parametrize("spec", [LatentSpec(), LatentSpec(n_continuous=3)], ids=["default", "3-continuous"])
@pytest.mark.parametrize("config", [ModelConfig(), ModelConfig(16, 16, 128, 32)], ids=["default", "small"])
def test_shapes_and_ranges_follow_the_spec(spec, config):
    torch.manual_seed(0)
    G, D = Generator(spec, config), Discriminator(spec, config)
    latent = spec.sample(6, torch.Generator().manual_seed(0))
    x = G(latent.input())
    assert x.shape == (6, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1                                  # tanh range = data range
    d_logit, q = D(x)
    assert d_logit.shape == (6,)
    assert isinstance(q, QOutput) and len(q.logits) == 1 and q.logits[0].shape == (6, 10)
    assert q.mean.shape == q.logvar.shape == (6, spec.n_continuous)
    assert G.fc[0].in_features == spec.input_dim


def test_paper_widths_are_the_papers():
    G, D = Generator(LatentSpec(), ModelConfig.paper()), Discriminator(LatentSpec(), ModelConfig.paper())
    assert G.fc[0].out_features == 1024 and G.fc[3].out_features == 7 * 7 * 128
    assert [m.out_channels for m in G.deconv if isinstance(m, nn.ConvTranspose2d)] == [64, 1]
    assert [m.out_channels for m in D.trunk if isinstance(m, nn.Conv2d)] == [64, 128]
    assert D.q_hidden[0].out_features == 128


def test_no_batch_norm_on_discriminators_first_layer_nor_generators_last():
    G, D = Generator(LatentSpec()), Discriminator(LatentSpec())
    assert isinstance(D.trunk[0], nn.Conv2d) and isinstance(D.trunk[1], nn.LeakyReLU)
    assert isinstance(G.deconv[-2], nn.ConvTranspose2d) and isinstance(G.deconv[-1], nn.Tanh)
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.trunk)              # but BN elsewhere


def test_q_head_shares_the_discriminator_trunk():
    D = Discriminator(LatentSpec())
    x = torch.randn(4, 1, 28, 28)
    d_logit, q = D(x)
    q.logits[0].sum().backward()
    assert D.trunk[0].weight.grad is not None and D.trunk[0].weight.grad.abs().sum() > 0
    assert D.d_head.weight.grad is None


def test_batch_norm_differs_between_train_and_eval_mode():
    torch.manual_seed(0)
    G = Generator(LatentSpec())
    latent = LatentSpec().sample(8, torch.Generator().manual_seed(0)).input()
    train_out = G.train()(latent)
    eval_out = G.eval()(latent)
    assert not torch.allclose(train_out, eval_out, atol=1e-3)
