"""The lesson notebooks' "your turn" exercises, each run through its own check cell.

Every exercise is three tagged cells: the reader's stub (``exercise-NAME``), the check
(``exercise-check-NAME``) and the reference solution folded in a markdown ``<details>`` block
(``exercise-solution-NAME``). Here each check cell runs on the blank stub (it must say the
function is not written yet), on a typical mistake (it must give the hint for that mistake), and
on the reference solution taken from the notebook itself (it must pass). The namespace is the
notebook's own imports, so a solution that leans on something the notebook does not import fails.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ["01_gan_recap.ipynb", "02_mutual_information_bound.ipynb",
           "03_training_infogan.ipynb", "04_exploring_codes.ipynb"]


@dataclass
class Exercise:
    notebook: str
    name: str
    stub: str
    check: str
    solution_cell: str
    imports: str

    @property
    def solution(self) -> str:
        found = re.search(r"```python\n(.*?)```", self.solution_cell, re.S)
        return found.group(1) if found else ""


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _imports(nb) -> str:
    """The import statements of the notebook's first code cell (its setup)."""
    setup = next(c for c in nb.cells if c.cell_type == "code")
    tree = ast.parse(setup.source)
    return "\n".join(ast.get_source_segment(setup.source, node) for node in tree.body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def exercises_of(notebook: str) -> list[Exercise]:
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    cells = {}
    for cell in nb.cells:
        for tag in _tags(cell):
            cells[tag] = cell
    names = [t[len("exercise-"):] for c in nb.cells for t in _tags(c)
             if t.startswith("exercise-") and not t.startswith(("exercise-check-", "exercise-solution-"))]
    return [Exercise(notebook, n, cells[f"exercise-{n}"].source, cells[f"exercise-check-{n}"].source,
                     cells[f"exercise-solution-{n}"].source, _imports(nb))
            for n in names if f"exercise-check-{n}" in cells and f"exercise-solution-{n}" in cells]


ALL = [e for nb in LESSONS for e in exercises_of(nb)]
BY_NAME = {e.name: e for e in ALL}

WRONG = {  # a typical mistake for each exercise, and a fragment of the hint its check must give
    "best_discriminator": ("def best_discriminator(p_data, p_g):\n    return p_g / (p_data + p_g)",
                           "probability that x is *real*"),
    "jsd": ("def jsd(p, q, dx):\n    m = 0.5 * (p + q)\n"
            "    return 0.5 * (p * np.log(p / m)).sum() * dx + 0.5 * (q * np.log(q / m)).sum() * dx",
            "0·ln 0 = 0"),
    "g_loss_from_logits": ("def g_loss_from_logits(fake_logit):\n"
                           "    return -torch.log(torch.sigmoid(fake_logit)).mean()", "softplus"),
    "kl": ("def kl(p, q):\n    p, q = np.asarray(p, float), np.asarray(q, float)\n"
           "    return float((q * np.log(q / p)).sum())", "p first"),
    "batch_bound": ("def batch_bound(q, c, x, h_c):\n    return float(np.log(q[c, x]).mean())", "H(c)"),
    "gaussian_log_density": ("def gaussian_log_density(c, mean, logvar):\n"
                             "    s = torch.exp(logvar)\n"
                             "    return -0.5 * math.log(2 * math.pi) - torch.log(s) - (c - mean) ** 2 / (2 * s ** 2)",
                             "logvar is log σ²"),
    "conv_output_size": ("def conv_output_size(size, kernel, stride, padding):\n"
                         "    return (size + 2 * padding - kernel) / stride + 1", "round down"),
    "update_running_mean": ("def update_running_mean(running_mean, batch, momentum):\n"
                            "    return momentum * running_mean + (1 - momentum) * batch.mean(0)", "swapped"),
    "infogan_losses": ("def infogan_losses(D, real, fake, latent):\n"
                       "    real_logit, _ = D(real)\n    fake_logit, q = D(fake)\n"
                       "    info = info_loss(q, latent, latent.spec).loss\n"
                       "    return discriminator_loss(real_logit, fake_logit) + info, generator_loss(fake_logit) + info",
                       "detached"),
    "sweep_latents": ("from infogan_lib.latent import LatentBatch\n"
                      "def sweep_latents(spec, code, values, seed):\n"
                      "    g = torch.Generator().manual_seed(seed)\n    n = 10 * len(values)\n"
                      "    z = torch.randn(1, spec.noise_dim, generator=g).repeat(n, 1)\n"
                      "    cont = torch.zeros(n, spec.n_continuous); cont[:, code] = values.repeat(10)\n"
                      "    return LatentBatch(spec, z, torch.arange(10).repeat(len(values))[:, None], cont)",
                      "change along each row"),
    "tilt": ("def tilt(images):\n    x = images[:, 0].double()\n"
             "    ys = torch.arange(28.).view(1, -1, 1); xs = torch.arange(28.).view(1, 1, -1)\n"
             "    m = x.sum((1, 2)); dx = xs - ((x * xs).sum((1, 2)) / m).view(-1, 1, 1)\n"
             "    dy = ys - ((x * ys).sum((1, 2)) / m).view(-1, 1, 1)\n"
             "    c = lambda a, b: (x * a * b).sum((1, 2)) / m\n"
             "    return c(dx, dy) / (c(dx, dx) * c(dy, dy)).sqrt()", "wrong sign"),
    "spearman": ("def spearman(a, b):\n    a, b = a - a.mean(), b - b.mean()\n"
                 "    return float((a * b).sum() / np.sqrt((a ** 2).sum() * (b ** 2).sum()))", "ranks"),
}


MORE_MISTAKES = [  # (exercise, wrong code, hint): mistakes a red team found that looked right by value
    ("infogan_losses", "def infogan_losses(D, real, fake, latent):\n    rl, _ = D(real); fl, _ = D(fake)\n"
     "    fd, qd = D(fake.detach())\n    il = info_loss(qd, latent, latent.spec).loss\n"
     "    return discriminator_loss(rl, fd) + il, generator_loss(fl) + il", "must come from D(fake)"),
    ("infogan_losses", "def infogan_losses(D, real, fake, latent):\n    rl, _ = D(real); fl, q = D(fake)\n"
     "    il = info_loss(q, latent, latent.spec).loss\n"
     "    return discriminator_loss(rl, fl.detach()) + il.detach(), generator_loss(fl) + il", "does not train D and Q fully"),
    ("infogan_losses", "def infogan_losses(D, real, fake, latent):\n    n = len(real)\n"
     "    both, _ = D(torch.cat([real, fake.detach()])); fd, q = D(fake.detach()); fl, qg = D(fake)\n"
     "    return (discriminator_loss(both[:n], both[n:]) + info_loss(q, latent, latent.spec).loss,\n"
     "            generator_loss(fl) + info_loss(qg, latent, latent.spec).loss)", "in one batch"),
    ("sweep_latents", "from infogan_lib.latent import LatentBatch\n"
     "def sweep_latents(spec, code, values, seed):\n    g = torch.Generator().manual_seed(seed)\n"
     "    z = torch.randn(1, spec.noise_dim, generator=g).repeat(70, 1)\n"
     "    cont = torch.zeros(70, 2); cont[:, 1] = torch.linspace(-2, 2, 7).repeat(10)\n"
     "    return LatentBatch(spec, z, torch.arange(10).repeat_interleave(7)[:, None], cont)", "not 7"),
    ("g_loss_from_logits", "def g_loss_from_logits(t):\n    return F.softplus(-t).sum()", "not a sum"),
    ("kl", "def kl(p, q):\n    p, q = np.asarray(p, float), np.asarray(q, float)\n"
     "    p, q = p[:2], q[:2]; nz = p > 0\n    return float((p[nz] * np.log(p[nz] / q[nz])).sum())", "every"),
]


def run_check(exercise: Exercise, code: str) -> str:
    """What the check cell prints after `code` (the stub, a mistake, the solution) has run."""
    ns: dict = {}
    exec(compile(exercise.imports, f"<{exercise.notebook} imports>", "exec"), ns)
    exec(compile(code, f"<{exercise.name}>", "exec"), ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(exercise.check, f"<check {exercise.name}>", "exec"), ns)   # a check never raises
    return out.getvalue()


@pytest.mark.parametrize("notebook", LESSONS)
def test_every_lesson_has_at_least_three_exercises_with_check_and_folded_solution(notebook):
    found = exercises_of(notebook)
    assert len(found) >= 3, f"{notebook} has {len(found)} exercises"
    for e in found:
        assert "raise NotImplementedError" in e.stub and "YOUR CODE HERE" in e.stub
        assert f"({e.name})" in e.check, "the check cell checks the reader's function by its name"
        assert e.solution_cell.startswith("<details>") and "</details>" in e.solution_cell, (
            "the reference solution is folded (one click away), not shown by default")
        assert e.solution and "NotImplementedError" not in e.solution


def test_every_exercise_has_a_typical_mistake_here():
    assert sorted(BY_NAME) == sorted(WRONG)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_blank_stub_is_reported_as_not_written(name):
    out = run_check(BY_NAME[name], BY_NAME[name].stub)
    assert out.startswith("✗ ") and "not written yet" in out and "✓" not in out, out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # some mistakes divide by zero, as a reader's would
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_a_typical_mistake_gets_its_hint(name):
    wrong, hint = WRONG[name]
    out = run_check(BY_NAME[name], wrong)
    assert out.startswith(f"✗ {name} is not right yet") and hint in out, out


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_reference_solution_passes(name):
    out = run_check(BY_NAME[name], BY_NAME[name].solution)
    assert out.startswith(f"✓ {name}: "), out


@pytest.mark.parametrize("name, wrong, hint", MORE_MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MORE_MISTAKES)])
def test_mistakes_that_look_right_by_value_are_caught(name, wrong, hint):
    out = run_check(BY_NAME[name], wrong)
    assert out.startswith(f"✗ {name} is not right yet") and hint in out, out
