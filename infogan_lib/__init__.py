"""infogan_lib: a small, readable InfoGAN in plain PyTorch, for the infogan-course notebooks.

Modules, one idea each:
    latent      LatentSpec: the noise z and the codes c, their priors, H(c), figure grids
    models      Generator; Discriminator with the shared trunk, the D head and the Q head
    losses      the GAN losses and the variational bound L_I on I(c; G(z, c))
    data        MNIST / Fashion-MNIST as in-memory tensors, offline-friendly
    config      Recipe (what changes the maths) and Run (data, folder, budgets, machine)
    step        one InfoGAN update, as in the paper's Algorithm
    loop        train(): the training loop (budgets, resume, atomic checkpoints, Ctrl-C)
    progress    what a run shows while it trains: progress bar, train.log, figures, TensorBoard
    history     the per-step record of a run
    runtime     device, CPU threads, switches from the environment
    checkpoint  saving and loading checkpoints and weights files
    metrics     Q as a classifier (Hungarian accuracy), L_I estimates, sample quality
    viz         the course's three figure kinds, loss curves, histograms, confusion matrix
    weights     the shipped weights (MNIST, Fashion-MNIST), checked by SHA-256 on load
    semantics   what each continuous code controls: image descriptors, Spearman ρ, effect sizes
    transforms  known transforms of real images that check the descriptors
    widgets     ipywidgets viewers: code traversal, Q as a classifier (viewer_parts: their pictures,
                sizes and titles; category_names: each category named by what it draws)
    classifier  a small supervised CNN that judges samples (coverage, Fréchet distance)
    moved_copy  the moved copy T(x) from which Q reads the categorical code (an extra)
    anchor      the anchor that keeps a widened model's old codes (an extra penalty)
    overlap     the penalty on two codes changing the image the same way (an extra penalty)
    acgan       a conditional GAN (AC-GAN) from the same networks: notebook 01's supervised contrast
    exercises   the checks of the notebooks' "your turn" exercises
"""

from .latent import LatentBatch, LatentSpec, SpecError
from .models import Discriminator, Generator, ModelConfig, QOutput
from .losses import discriminator_loss, generator_loss, info_loss, gaussian_nll, InfoTerms, Information
from .data import DataNotFoundError, ImageSet, load_images
from .checkpoint import CheckpointError, load_models
from .config import ConfigError, Recipe, Run
from .step import infogan_step
from .loop import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "LatentBatch", "LatentSpec", "SpecError", "Discriminator", "Generator", "ModelConfig",
    "QOutput", "discriminator_loss", "generator_loss", "info_loss", "gaussian_nll", "InfoTerms",
    "Information",
    "DataNotFoundError", "ImageSet", "load_images", "CheckpointError", "load_models",
    "ConfigError", "Recipe", "Run", "infogan_step", "TrainResult", "train",
]
