"""The GAN losses and the information term L_I, checked against hand computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from infogan_lib import LatentSpec, discriminator_loss, gaussian_nll, generator_loss, info_loss
from infogan_lib.latent import LatentBatch
from infogan_lib.losses import LOGVAR_MIN
from infogan_lib.models import QOutput


def _batch(spec, cats, cont):
    n = len(cats)
    return LatentBatch(spec, torch.zeros(n, spec.noise_dim), torch.tensor(cats).view(n, -1),
                       torch.tensor(cont, dtype=torch.float32).view(n, spec.n_continuous))


def test_gan_losses_match_the_value_function_and_stay_finite_for_extreme_logits():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected_d = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert generator_loss(fake).item() == pytest.approx(-torch.log(torch.sigmoid(fake)).mean().item(), rel=1e-6)
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(discriminator_loss(big, big)) and torch.isfinite(generator_loss(big))
    assert discriminator_loss(torch.tensor([1e4]), torch.tensor([-1e4])).item() == pytest.approx(0, abs=1e-6)


def test_info_loss_equals_a_hand_computed_value():
    spec = LatentSpec(noise_dim=1, categorical=(3,), n_continuous=1)
    latent = _batch(spec, [0, 2], [0.5, -1.0])
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    mean, logvar = torch.tensor([[0.0], [-1.0]]), torch.tensor([[0.0], [math.log(4.0)]])
    terms = info_loss(QOutput([logits], mean, logvar), latent, spec, lambda_cat=1.0, lambda_cont=0.5)
    # by hand: CE_1 = -log(e/(e+2)), CE_2 = -log(e²/(e²+2))
    ce = (-math.log(math.e / (math.e + 2)) - math.log(math.e ** 2 / (math.e ** 2 + 2))) / 2
    # NLL of N(0.5; 0, 1) and N(-1; -1, 4)
    nll = ((0.5 * math.log(2 * math.pi) + 0.125) + (0.5 * math.log(2 * math.pi) + 0.5 * math.log(4))) / 2
    assert terms.loss.item() == pytest.approx(ce + 0.5 * nll, rel=1e-5)
    assert terms.categorical_bound.item() == pytest.approx(math.log(3) - ce, rel=1e-5)
    assert terms.continuous_bounds.tolist() == pytest.approx([math.log(2) - nll], rel=1e-5)


def test_categorical_bound_reaches_h_c_when_q_is_exact():
    spec = LatentSpec(noise_dim=1, categorical=(10,), n_continuous=0)
    cats = torch.arange(10).repeat(20)
    latent = _batch(spec, cats.tolist(), [[]] * 200)
    exact = QOutput([50.0 * F.one_hot(cats, 10).float()], torch.zeros(200, 0), torch.zeros(200, 0))
    gap = spec.entropy() - info_loss(exact, latent, spec).categorical_bound.item()
    assert gap == pytest.approx(0.0, abs=1e-6)
    uniform = QOutput([torch.zeros(200, 10)], torch.zeros(200, 0), torch.zeros(200, 0))
    assert info_loss(uniform, latent, spec).categorical_bound.item() == pytest.approx(0.0, abs=1e-6)


def test_categorical_bound_equals_mutual_information_at_the_true_posterior():
    # a noisy channel: x = c with prob 0.7, else uniform over 4 symbols; Q = the exact posterior
    torch.manual_seed(0)
    k, n, keep = 4, 200_000, 0.7
    spec = LatentSpec(noise_dim=1, categorical=(k,), n_continuous=0)
    c = torch.randint(k, (n,))
    x = torch.where(torch.rand(n) < keep, c, torch.randint(k, (n,)))
    p_x_given_c = torch.full((k, k), (1 - keep) / k) + keep * torch.eye(k)
    posterior = p_x_given_c.T / p_x_given_c.T.sum(1, keepdim=True)        # p(c|x), uniform prior
    q = QOutput([posterior[x].log()], torch.zeros(n, 0), torch.zeros(n, 0))
    bound = info_loss(q, _batch(spec, c.tolist(), [[]] * n), spec).categorical_bound.item()
    p_joint = p_x_given_c / k
    mi = (p_joint * (p_joint / (p_joint.sum(1, keepdim=True) * p_joint.sum(0, keepdim=True))).log()).sum()
    assert bound == pytest.approx(mi.item(), abs=0.01)


def test_gaussian_bound_equals_mutual_information_at_the_true_posterior():
    # c ~ N(0,1), x = c + ε with ε ~ N(0, s²): posterior N(x/(1+s²), s²/(1+s²)), I = ½ ln(1 + 1/s²)
    torch.manual_seed(0)
    s2, n = 0.25, 200_000
    spec = LatentSpec(noise_dim=1, categorical=(), n_continuous=1, priors=("gaussian",))
    c = torch.randn(n, 1)
    x = c + math.sqrt(s2) * torch.randn(n, 1)
    q = QOutput([], x / (1 + s2), torch.full((n, 1), math.log(s2 / (1 + s2))))
    latent = LatentBatch(spec, torch.zeros(n, 1), torch.zeros(n, 0, dtype=torch.long), c)
    bound = info_loss(q, latent, spec).continuous_bounds.item()
    assert bound == pytest.approx(0.5 * math.log(1 + 1 / s2), abs=0.01)
    # a worse Q (variance too large) gives a strictly lower bound
    q_bad = QOutput([], x / (1 + s2), torch.zeros(n, 1))
    assert info_loss(q_bad, latent, spec).continuous_bounds.item() < bound - 0.1


def test_gaussian_nll_clamps_the_log_variance():
    c, mean = torch.tensor([0.3]), torch.tensor([0.3])
    assert torch.isfinite(gaussian_nll(c, mean, torch.tensor([-1e4])))
    assert gaussian_nll(c, mean, torch.tensor([-1e4])).item() == pytest.approx(
        gaussian_nll(c, mean, torch.tensor([LOGVAR_MIN])).item())


def test_info_loss_weights_each_code_type_by_its_lambda():
    spec = LatentSpec(noise_dim=1, categorical=(3,), n_continuous=2)
    latent = _batch(spec, [1, 2], [[0.1, 0.2], [-0.3, 0.4]])
    q = QOutput([torch.randn(2, 3)], torch.randn(2, 2), torch.zeros(2, 2))
    cat_only = info_loss(q, latent, spec, 1.0, 0.0).loss
    cont_only = info_loss(q, latent, spec, 0.0, 1.0).loss
    assert info_loss(q, latent, spec, 2.0, 0.3).loss.item() == pytest.approx(
        2 * cat_only.item() + 0.3 * cont_only.item(), rel=1e-5)


def test_a_fixed_std_turns_the_continuous_term_into_a_squared_error_that_ignores_q_s_variance():
    spec = LatentSpec(noise_dim=2, categorical=(3,), n_continuous=2)
    latent = LatentBatch(spec, torch.zeros(4, 2), torch.tensor([[0], [1], [2], [0]]),
                         torch.tensor([[0.5, -1.0], [0.0, 0.2], [1.0, 1.0], [-0.3, 0.1]]))
    mean = torch.tensor([[0.4, -0.5], [0.1, 0.2], [0.0, 1.0], [-0.3, 0.4]])
    logits = [torch.zeros(4, 3)]
    sigma = 0.5
    out = info_loss(QOutput(logits, mean, torch.full((4, 2), 3.0)), latent, spec,
                    lambda_cat=0.0, lambda_cont=1.0, cont_std=sigma)
    # −log N(c; μ, σ²) = ½ log 2π + log σ + (c − μ)² / 2σ², averaged over the batch, summed over codes
    sq = (latent.continuous - mean).pow(2) / (2 * sigma ** 2) + 0.5 * math.log(2 * math.pi) + math.log(sigma)
    assert out.loss.item() == pytest.approx(sq.mean(0).sum().item(), rel=1e-6)
    other = info_loss(QOutput(logits, mean, torch.full((4, 2), -3.0)), latent, spec,
                      lambda_cat=0.0, lambda_cont=1.0, cont_std=sigma)
    assert other.loss.item() == pytest.approx(out.loss.item())          # Q's logvar is not used
    learned = info_loss(QOutput(logits, mean, torch.full((4, 2), 3.0)), latent, spec,
                        lambda_cat=0.0, lambda_cont=1.0)
    assert learned.loss.item() != pytest.approx(out.loss.item())
