"""A field whose flow blows up from some start states: the rollout and the evaluation survive,
the diverged trajectories are NaN from their blow-up on and score an infinite error."""

import json
import math
import time

import pytest
import torch
from torch import nn

from hnnkit.data import generate
from hnnkit.evaluate import evaluate_corrected
from hnnkit.evaluate.maps import rollout_model
from hnnkit.files import dumps
from hnnkit.integrate import odeint
from hnnkit.systems import Spring


class BlowUp(nn.Module):
    """dq/dt = q², dp/dt = -p: from q0 > 0, q = q0 / (1 - q0 t) blows up at t = 1/q0."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones((), dtype=torch.float64))

    def vector_field(self, t, x):
        return torch.stack([self.w * x[..., 0] ** 2, -x[..., 1]], dim=-1)


def test_rollout_model_makes_a_blown_up_trajectory_nan_after_its_blow_up_time():
    x0 = torch.tensor([[-0.5, 1.0], [0.5, 1.0], [-1.0, 0.3], [0.25, -0.2]], dtype=torch.float64)
    t = torch.linspace(0.0, 6.0, 61, dtype=torch.float64)
    model = BlowUp().double()
    start = time.perf_counter()
    out = rollout_model(model, x0, t, rtol=1e-9, atol=1e-9)
    assert time.perf_counter() - start < 20.0  # a blow-up costs seconds, not minutes
    with pytest.raises(RuntimeError):  # the plain batched solve gives up
        odeint(model.vector_field, x0, t, method="dopri5", rtol=1e-9, atol=1e-9)
    finite = [0, 2]
    alone = odeint(model.vector_field, x0[finite], t, method="dopri5", rtol=1e-9, atol=1e-9)
    assert torch.isfinite(out[:, finite]).all()
    torch.testing.assert_close(out[:, finite], alone, rtol=1e-12, atol=1e-12)
    exact_q = x0[finite, 0] / (1 - x0[finite, 0] * t[:, None])
    torch.testing.assert_close(out[:, finite, 0], exact_q, rtol=1e-7, atol=1e-8)
    for b, blow in ((1, 2.0), (3, 4.0)):  # blow-up at 1/q0
        lost = ~torch.isfinite(out[:, b]).all(-1)
        first = int(lost.float().argmax())
        assert lost[first:].all() and not lost[:first].any()  # NaN from then on
        assert blow <= float(t[first]) <= blow + 0.1 + 1e-12  # within one output interval
        q_exact = x0[b, 0] / (1 - x0[b, 0] * t[:first])
        torch.testing.assert_close(out[:first, b, 0], q_exact, rtol=1e-6, atol=1e-8)


def test_a_field_that_fails_at_its_start_states_is_still_an_error():
    class Broken(BlowUp):
        def vector_field(self, t, x):
            raise RuntimeError("broken model")

    x0 = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="broken model"):
        rollout_model(
            Broken(), x0, torch.linspace(0, 1, 5, dtype=torch.float64), rtol=1e-9, atol=1e-9
        )


def test_evaluate_corrected_counts_the_diverged_rollouts_and_scores_them_infinite():
    data = generate("spring", n_trajectories=20, seed=0, noise_std=0.0)
    t1 = 8.0
    out, roll = evaluate_corrected(
        Spring(), {"blowup": BlowUp()}, data, t_span=(0.0, t1), n_points=41, max_trajectories=5
    )
    q0 = data.test_initial_states[:5, 0].double()
    blows = q0 > 1 / t1
    assert 0 < int(blows.sum()) < len(q0)  # both kinds among the start states
    assert not bool(((q0 - 1 / t1).abs() < 1e-3).any())  # no start state at the edge
    div = out["blowup"]["diverged"]
    assert div["count"] == int(blows.sum()) and div["of"] == len(q0)
    assert div["first_time"] == pytest.approx(float((1 / q0[blows]).min()), abs=0.25 + 1e-9)
    assert out["truth"].get("diverged") is None
    pred = roll.models["blowup"]
    assert torch.isfinite(pred[:, ~blows]).all() and not torch.isfinite(pred[-1, blows]).any()
    for key in ("energy", "rollout_mse", "energy_drift"):
        values = torch.tensor(out["blowup"][key]["values"], dtype=torch.float64)
        assert torch.isinf(values[blows]).all() and torch.isfinite(values[~blows]).all()
        assert out["blowup"][key]["mean"] == math.inf
    valid = torch.tensor(out["blowup"]["valid_time"]["values"], dtype=torch.float64)
    assert (valid[blows] <= 1 / q0[blows] + 0.25 + 1e-9).all()  # invalid once it blew up
    text = dumps(out)  # strict JSON: inf is written as null
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["blowup"]["rollout_mse"]["mean"] is None


def test_nothing_diverged_is_recorded_as_a_zero_count():
    data = generate("spring", n_trajectories=10, seed=0, noise_std=0.0)
    out, _ = evaluate_corrected(
        Spring(), {"blowup": BlowUp()}, data, t_span=(0.0, 0.5), n_points=11
    )
    q0 = data.test_initial_states[:, 0]
    assert float(q0.max()) < 2.0  # every blow-up time 1/q0 is past the span
    assert out["blowup"]["diverged"] == {"count": 0, "of": len(q0), "first_time": None}
    assert math.isfinite(out["blowup"]["rollout_mse"]["mean"])


def test_a_diverged_model_reaches_the_long_horizon_table_as_diverged():
    from hnnkit.report.results import summarise_seeds
    from hnnkit.report.tables import long_horizon_markdown

    data = generate("spring", n_trajectories=20, seed=0, noise_std=0.0)
    corr, _ = evaluate_corrected(
        Spring(), {"blowup": BlowUp()}, data, t_span=(0.0, 8.0), n_points=21, max_trajectories=5
    )
    loss = {"mean": 1.0, "sem": 0.1}
    seed = {  # a per-seed metrics.json as written (strict JSON) and read back
        "models": {
            "blowup": {
                "losses": {"train_loss": loss, "test_loss": loss},
                "original_energy": loss,
                "corrected": corr["blowup"],
                "train_seconds": 1.0,
            }
        },
        "truth": corr["truth"],
    }
    seed = json.loads(dumps(seed))
    entry = summarise_seeds([seed, seed], models=["blowup"], scale=1.0, paper={}, profile="x")
    div = entry["models"]["blowup"]["diverged"]
    assert (div["count"], div["of"]) == (4, 10) and div["first_time"] == pytest.approx(2.0)
    entry = json.loads(dumps(entry))  # results.json stays strict JSON
    table = long_horizon_markdown({"tasks": {"spring": entry}})
    row = next(
        line
        for line in table.splitlines()
        if line.startswith("| spring | ") and "truth" not in line
    )
    assert row.count("diverged (4 of 10)") == 2  # rollout MSE and energy drift
    valid = float(row.split("|")[5].split()[0])  # the valid time is still a number
    assert 0 < valid < 8.0


def test_dopri5_names_the_trajectory_it_gives_up_on_and_where():
    from hnnkit.errors import SolverGaveUpError

    x0 = torch.tensor([[-0.5, 1.0], [0.5, 1.0], [-1.0, 0.3]], dtype=torch.float64)
    t = torch.linspace(0.0, 6.0, 61, dtype=torch.float64)
    with pytest.raises(RuntimeError) as info:  # NonFiniteStateError or SolverGaveUpError
        odeint(BlowUp().double().vector_field, x0, t, method="dopri5", rtol=1e-9, atol=1e-9)
    assert info.value.index == (1,)  # q0 = 0.5 blows up at t = 2
    assert info.value.time == pytest.approx(2.0, abs=1e-3)
    few = dict(method="dopri5", rtol=1e-9, atol=1e-9, max_steps=5)
    with pytest.raises(SolverGaveUpError, match="max_steps=5") as info:
        odeint(BlowUp().double().vector_field, x0, t, **few)
    assert len(info.value.index) == 1 and 0 <= info.value.time < 6.0


def test_a_diverging_batch_is_one_solve_without_searching(monkeypatch):
    import hnnkit.evaluate.maps as maps

    def never(*args, **kwargs):
        raise AssertionError("the rollout fell back to re-solving the batch")

    monkeypatch.setattr(maps, "_split", never)
    x0 = torch.tensor(
        [[-0.5, 1.0], [0.5, 1.0], [-1.0, 0.3], [0.25, -0.2], [-2.0, 0.1]], dtype=torch.float64
    )
    t = torch.linspace(0.0, 6.0, 61, dtype=torch.float64)
    out = rollout_model(BlowUp().double(), x0, t, rtol=1e-9, atol=1e-9)
    finite = [0, 2, 4]
    alone = odeint(BlowUp().double().vector_field, x0[finite], t, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out[:, finite], alone, rtol=1e-12, atol=1e-12)
    assert not torch.isfinite(out[-1, [1, 3]]).any()


class Refuses(BlowUp):
    """BlowUp's field, refusing (as an LNN with a singular mass matrix does) any state with
    q > 1.5, i.e. from q0 > 0 after t = 1/q0 - 1/1.5."""

    def vector_field(self, t, x):
        if bool((x[..., 0] > 1.5).any()):
            from hnnkit.errors import HnnkitValueError

            raise HnnkitValueError("singular mass matrix at 1 of the states")
        return super().vector_field(t, x)


def test_a_field_that_refuses_states_it_reaches_loses_only_those_trajectories():
    x0 = torch.tensor([[-0.5, 1.0], [0.5, 1.0], [-1.0, 0.3]], dtype=torch.float64)
    t = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    out = rollout_model(Refuses().double(), x0, t, rtol=1e-9, atol=1e-9)
    assert torch.isfinite(out[:, [0, 2]]).all()
    exact_q = x0[[0, 2], 0] / (1 - x0[[0, 2], 0] * t[:, None])
    torch.testing.assert_close(out[:, [0, 2], 0], exact_q, rtol=1e-7, atol=1e-8)
    lost = ~torch.isfinite(out[:, 1]).all(-1)
    first = float(t[int(lost.float().argmax())])
    assert lost[-1] and 2.0 - 1 / 1.5 <= first <= 2.0 - 1 / 1.5 + 0.1 + 1e-9  # q = 1.5 there


def test_bad_inputs_are_still_errors_not_divergences():
    x0 = torch.tensor([[-0.5, 1.0], [0.5, 1.0]], dtype=torch.float64)
    backwards = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    with pytest.raises(ValueError):
        rollout_model(Refuses().double(), x0, backwards, rtol=1e-9, atol=1e-9)


def test_the_original_protocol_scores_a_blown_up_model_infinite_and_counts_it():
    from hnnkit.evaluate import OriginalProtocol, evaluate_original

    data = generate("spring", n_trajectories=10, seed=0, noise_std=0.0)
    protocol = OriginalProtocol(span=8.0, n_points=41, n_states=10)
    out, roll = evaluate_original(Spring(), {"blowup": BlowUp()}, data, protocol)
    q0 = roll.true[0, :, 0]
    blows = int((q0 > 1 / 8.0).sum())
    assert 0 < blows < len(q0)
    assert out["blowup"]["diverged"] == {"count": blows, "of": len(q0)}
    assert out["blowup"]["energy"]["mean"] == math.inf


class RefusesNaming(BlowUp):
    """As :class:`Refuses`, naming the refused states as an LNN's singular solve does."""

    def vector_field(self, t, x):
        from hnnkit.errors import SingularMatrixError

        bad = x[..., 0] > 1.5
        if bool(bad.any()):
            rows = tuple(bad.flatten().nonzero().flatten().tolist())
            raise SingularMatrixError("singular mass matrix", rows=rows)
        return super().vector_field(t, x)


def test_dopri5_names_the_trajectory_whose_state_the_field_refused():
    from hnnkit.errors import HnnkitValueError, SolverGaveUpError, StateRefusedError

    x0 = torch.tensor([[-0.5, 1.0], [-1.0, 0.3], [0.5, 1.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    with pytest.raises(StateRefusedError, match="singular mass matrix") as info:
        odeint(RefusesNaming().double().vector_field, x0, t, method="dopri5", rtol=1e-9)
    assert isinstance(info.value, SolverGaveUpError) and isinstance(info.value, HnnkitValueError)
    assert info.value.index == (2,)
    assert info.value.time == pytest.approx(2.0 - 1 / 1.5, abs=0.05)


def test_a_refused_state_that_names_its_trajectory_is_lost_in_the_same_solve(monkeypatch):
    import hnnkit.evaluate.maps as maps

    def never(*args, **kwargs):
        raise AssertionError("the rollout fell back to re-solving the batch")

    monkeypatch.setattr(maps, "_split", never)
    x0 = torch.tensor([[-0.5, 1.0], [0.5, 1.0], [-1.0, 0.3], [-2.0, 0.1]], dtype=torch.float64)
    t = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    out = rollout_model(RefusesNaming().double(), x0, t, rtol=1e-9, atol=1e-9)
    assert torch.isfinite(out[:, [0, 2, 3]]).all()
    lost = ~torch.isfinite(out[:, 1]).all(-1)
    first = float(t[int(lost.float().argmax())])
    assert lost[-1] and 2.0 - 1 / 1.5 <= first <= 2.0 - 1 / 1.5 + 0.1 + 1e-9


def test_a_singular_solve_names_the_states_and_pickles():
    import pickle

    from hnnkit.errors import SingularMatrixError
    from hnnkit.phase_space import solve_symmetric

    mass = torch.eye(2, dtype=torch.float64).repeat(5, 1, 1)
    mass[3] = 0.0
    mass[1, 1, 1] = 0.0
    with pytest.raises(SingularMatrixError, match="2 of 5 states") as info:
        solve_symmetric(mass, torch.ones(5, 2, dtype=torch.float64), what="M", advice="fix it")
    assert info.value.rows == (1, 3)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is SingularMatrixError and again.rows == (1, 3)


class TwoSpeeds(nn.Module):
    """A rotation at ω = 1 inside the unit circle and ω = 40 outside (each orbit keeps its
    radius): the fast orbits need many more steps."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones((), dtype=torch.float64))

    def omega(self, x):
        return 1.0 + 39.0 * (x.pow(2).sum(-1) > 1.0)

    def vector_field(self, t, x):
        w = self.w * self.omega(x)
        return torch.stack([w * x[..., 1], -w * x[..., 0]], dim=-1)


def test_trajectories_that_only_ran_out_of_steps_are_integrated_again_not_lost(monkeypatch):
    import hnnkit.evaluate.maps as maps

    again = []
    by_interval = maps._by_interval

    def counted(f, x0, t, *args):
        again.append(x0.clone())
        return by_interval(f, x0, t, *args)

    monkeypatch.setattr(maps, "_by_interval", counted)
    monkeypatch.setattr(maps, "ROLLOUT_MAX_STEPS", 300)
    x0 = torch.tensor([[0.5, 0.0], [1.5, 0.0], [0.0, 0.7], [0.0, -2.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    model = TwoSpeeds().double()
    out = rollout_model(model, x0, t, rtol=1e-9, atol=1e-9)
    assert [a.tolist() for a in again] == [[[1.5, 0.0]], [[0.0, -2.0]]]  # the two fast orbits
    w = model.omega(x0)  # the exact rotation: x(t) = R(-w t) x0
    c, s = torch.cos(w * t[:, None]), torch.sin(w * t[:, None])
    exact = torch.stack([c * x0[:, 0] + s * x0[:, 1], -s * x0[:, 0] + c * x0[:, 1]], -1)
    torch.testing.assert_close(out, exact, rtol=0, atol=1e-6)  # nothing lost: slow, not diverged


def test_solver_gave_up_errors_pickle_with_every_named_trajectory():
    import pickle

    from hnnkit.errors import SolverGaveUpError, StateRefusedError

    for cls in (SolverGaveUpError, StateRefusedError):
        err = cls("gave up", time=1.5, index=(2,), others=((0,), (3,)))
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is cls and str(again) == "gave up"
        assert (again.time, again.index, again.others) == (1.5, (2,), ((0,), (3,)))


def test_losing_nothing_gives_the_plain_solve_bit_for_bit():
    from hnnkit.integrate import Dopri5

    x0 = torch.tensor([[-0.5, 1.0], [-1.0, 0.3], [-0.2, -0.4]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    f = BlowUp().double().vector_field
    plain = odeint(f, x0, t, method="dopri5", rtol=1e-9, atol=1e-9)
    solver = Dopri5(f, rtol=1e-9, atol=1e-9, lose_failing=True)
    assert torch.equal(solver.integrate(x0, t), plain) and solver.ran_out == []


def test_a_trajectory_integrated_alone_is_lost_where_its_step_budget_ends(monkeypatch):
    import hnnkit.evaluate.maps as maps

    monkeypatch.setattr(maps, "ROLLOUT_MAX_STEPS", 300)
    monkeypatch.setattr(maps, "ALONE_MAX_STEPS", 400)
    x0 = torch.tensor([[0.5, 0.0], [1.5, 0.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    out = rollout_model(TwoSpeeds().double(), x0, t, rtol=1e-9, atol=1e-9)
    assert torch.isfinite(out[:, 0]).all()  # the slow orbit: within the batch's budget
    lost = ~torch.isfinite(out[:, 1]).all(-1)
    assert not lost[:3].any() and lost[-1]  # the fast one: followed a while, then given up
    assert lost[int(lost.float().argmax()) :].all()
