"""The README's Python examples run as written, and what each one claims holds.

Every ``python`` block of the README must have a check below, keyed by a line that only
that block contains: a new example without a check fails ``test_every_example_is_checked``.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _quick_example(ns: dict) -> None:
    # noisy spring (noise std 0.1): the derivative MSE cannot go far below the noise's 0.01·|J|²
    assert 0.005 < ns["result"].test_loss < 0.1
    path = ns["path"]
    assert path.shape == (200, 1, 2)
    energy = path.pow(2).sum(-1).squeeze(-1)  # q² + p², the spring's H up to a factor
    assert torch.all((energy - 1.0).abs() < 0.2)  # the learned flow stays near its orbit


def _own_system(ns: dict) -> None:
    duffing, data = ns["duffing"], ns["data"]
    assert data.x.shape == (20, 30, 2)
    energy = duffing.energy(data.x)  # noise-free: each trajectory keeps its energy
    assert torch.allclose(energy, energy[:, :1].expand_as(energy), rtol=1e-8, atol=1e-10)
    coupled = ns["Coupled"]()
    x = torch.tensor([[0.3, -0.2, 0.1, 0.5]], dtype=torch.float64)
    q1, q2, p1, p2 = x[0]
    expected = torch.stack([p1, p2, -(2 * q1 - q2), -(2 * q2 - q1)])  # J∇H by hand
    assert torch.allclose(coupled.vector_field(None, x)[0], expected)


def _dissipative(ns: dict) -> None:
    model, x = ns["model"], ns["x"]
    with torch.no_grad():
        rate = float(model.dissipation_rate(x).mean())
    assert abs(rate - 0.1) < 0.01  # the true friction γ = 0.1
    assert float(ns["budget"].max()) <= 1e-6  # the learned energy never grows along the flow


def _terms(expr) -> dict[str, float]:
    """Monomial → coefficient of ``expr`` expanded, without the constant (no effect on the flow)."""
    import sympy

    out = {str(t): float(c) for t, c in sympy.expand(expr).as_coefficients_dict().items()}
    out.pop("1", None)
    return out


def _assert_terms(found, expected: dict[str, float]) -> None:
    """``found``'s printed formula has exactly ``expected``'s terms, and so has its raw refit."""
    nice, raw = _terms(found.nice), _terms(found.expr)
    assert set(nice) == set(expected), f"printed terms {nice} != {expected}"
    assert set(raw) == set(expected), f"refit terms {raw} != {expected}"
    for term, value in expected.items():
        assert abs(nice[term] - value) < 1e-9 and abs(raw[term] - value) < 1e-3 * abs(value)


def _kan_spring(ns: dict) -> None:
    _assert_terms(ns["formula"], {"q**2": 1.0, "p**2": 1.0})
    x = torch.tensor([[0.5, -0.3]], dtype=torch.float64)
    field = ns["system"].vector_field(None, x)  # J∇H of the extracted H = q² + p²
    assert torch.allclose(field, torch.tensor([[-0.6, -1.0]], dtype=torch.float64), atol=1e-3)


def _kan_damped(ns: dict) -> None:
    from hnnkit.symbolic import extract_dissipative

    found = extract_dissipative(ns["model"], ns["data"])
    _assert_terms(found.hamiltonian, {"q**2": 1.0, "p**2": 1.0})
    _assert_terms(found, {"p**2": 0.05})  # D = γp²/2 with γ = 0.1


def _pixels(ns: dict) -> None:
    assert ns["data"].train.x.shape == (448, 512)
    assert ns["z"].shape == (50, 1, 2) and ns["frames"].shape == (50, 1, 512)
    history = ns["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def _symplecticity(ns: dict) -> None:
    from hnnkit.integrate import flow_map
    from hnnkit.metrics import symplecticity_error
    from hnnkit.models import HNN, Baseline

    g = torch.Generator().manual_seed(0)
    x0 = ns["x0"]
    hnn = HNN(2, generator=g).double()
    baseline = Baseline(2, generator=g).double()
    assert symplecticity_error(flow_map(hnn.vector_field, 0.1), x0).max() < 1e-12
    assert symplecticity_error(flow_map(baseline.vector_field, 0.1), x0).max() > 1e-6


PLUGINS = Path(__file__).resolve().parent / "plugins"


def _same_as_plugin(name: str) -> Callable[[str], None]:
    def check(block: str) -> None:
        """The block is the plugin file (less its docstring) that the tests run."""
        text = (PLUGINS / name).read_text()
        code = text[text.index('"""', 3) + 4 :].lstrip("\n")
        assert block.split("\n", 1)[1] == code

    return check


def _own_loss(ns: dict) -> None:
    from hnnkit.data import generate
    from hnnkit.models import Baseline
    from hnnkit.train import LOSSES, fit

    try:
        data = generate("spring", n_trajectories=4, n_points=10, noise_std=0.0, seed=0)
        model = Baseline(2, hidden=(8,), generator=torch.Generator().manual_seed(0)).double()
        result = fit(model, data, loss="l1", steps=30)
        x, dx = data.split("train")
        with torch.no_grad():
            l1 = float((model.vector_field(None, x) - dx).abs().mean())
        assert result.history[-1]["train_loss"] == pytest.approx(l1, rel=1e-9)
    finally:
        LOSSES.pop("l1", None)


#: Blocks that are checked without being run (see the function's docstring).
NOT_RUN: dict[str, Callable[[str], None]] = {
    "# my_models.py": _same_as_plugin("quadratic_energy.py"),  # tests/test_plugins.py
    "# my_task.py": _same_as_plugin("quadratic_spring.py"),  # tests/test_tasks.py
}

#: A line unique to each README block → what must hold after it ran.
CHECKS: dict[str, Callable[[dict], None]] = {
    'data = generate("spring", seed=0)': _quick_example,
    'duffing = Custom("p**2/2 + q**2/2 + q**4/4")': _own_system,
    'model = DissipativeHNN(2, form="rayleigh"': _dissipative,
    "formula = extract_hamiltonian(model, data)": _kan_spring,
    "print(extract_dissipative(model, data))": _kan_damped,
    "data = pixel_pendulum_dataset(": _pixels,
    "symplecticity_error(flow_map(model.vector_field, 0.1), x0)": _symplecticity,
    'register_loss("l1", l1': _own_loss,
}


def _check_for(block: str) -> Callable | None:
    found = [check for key, check in {**CHECKS, **NOT_RUN}.items() if key in block]
    return found[0] if len(found) == 1 else None


def test_every_example_is_checked():
    assert len(BLOCKS) >= 2
    unchecked = [i for i, block in enumerate(BLOCKS) if _check_for(block) is None]
    assert not unchecked, f"README python blocks {unchecked} have no (or several) checks"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_and_holds(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    for key, check_text in NOT_RUN.items():
        if key in BLOCKS[index]:
            check_text(BLOCKS[index])
            return
    namespace = {"__name__": "__readme__"}
    exec(compile(BLOCKS[index], f"README.md:python[{index}]", "exec"), namespace)
    out = capsys.readouterr().out
    for expected in re.findall(r"# .*?(torch\.Size\(\[[^\]]*\]\))", BLOCKS[index]):
        assert expected in out
    check = _check_for(BLOCKS[index])
    assert check is not None
    check(namespace)
