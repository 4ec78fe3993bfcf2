"""The checks of the notebooks' "your turn" exercises.

Each exercise cell asks the reader for a function; the cell after it calls its check, which runs
that function on cases whose answers are known from elsewhere (a grid search, a PyTorch layer, the
library, SciPy) and prints one line: ✓ and what was checked, or ✗ and what to look at. A check
never raises, so a notebook run top to bottom goes on past an exercise that is not done yet, and it
never prints an answer: the reference solutions are in the notebook itself, folded under each
exercise ("Reference solution").

    from infogan_lib.exercises import check_kl
    check_kl(kl)        # ✓ kl: 4 cases right …   or   ✗ kl is not right yet: …
"""

from __future__ import annotations

from .codes import check_spearman, check_sweep_latents, check_tilt
from .gan import check_best_discriminator, check_generator_loss, check_jsd
from .information import check_batch_bound, check_gaussian_log_density, check_kl
from .training import check_conv_output_size, check_infogan_losses, check_running_mean

__all__ = ["check_best_discriminator", "check_jsd", "check_generator_loss",
           "check_kl", "check_batch_bound", "check_gaussian_log_density",
           "check_conv_output_size", "check_running_mean", "check_infogan_losses",
           "check_sweep_latents", "check_tilt", "check_spearman"]
