"""The model registry: errors, every registered model's contract, and training defaults in one place."""

import json
import math

import pytest
import torch
from torch import nn

import hnnkit.cli as cli
from hnnkit.cli import main
from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.experiments import reproduce
from hnnkit.models import (
    HNN,
    Baseline,
    DissipativeHNN,
    PixelHNN,
    build_model,
    build_with_shared_options,
    get_model,
    list_models,
    register_model,
    train_defaults,
    unregister_model,
)
from hnnkit.models.registry import DATA_KINDS, PHASE_SPACE, PIXELS

BUILT_IN = ("baseline", "dhnn", "hnn", "kan")
PIXEL_MODELS = ("pixel-baseline", "pixel-hnn")
DEFAULTS = {"optimizer": "adam", "steps": 3, "weight_decay": 0.25}


def _tiny(dim, *, generator=None, hidden=(4,)):
    return HNN(dim, hidden=hidden, generator=generator)


@pytest.fixture
def scratch():
    """Names registered in a test, removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if name in list_models():
            unregister_model(name)


# -- lookups ---------------------------------------------------------------------------------
def test_the_built_in_models_are_registered():
    assert set(BUILT_IN) <= set(list_models())
    assert list(list_models()) == sorted(list_models())


def test_each_model_says_what_data_it_learns_from():
    assert {get_model(name).data for name in BUILT_IN} == {PHASE_SPACE}
    assert {get_model(name).data for name in PIXEL_MODELS} == {PIXELS}
    phase_space, pixels = list_models(data=PHASE_SPACE), list_models(data=PIXELS)
    assert set(BUILT_IN) <= set(phase_space) and set(pixels) == set(PIXEL_MODELS)
    assert {**phase_space, **pixels} == list_models()
    assert list(phase_space) == sorted(phase_space)


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_model("hnm"),
        lambda: build_model("hnm", 2, generator=None),
        lambda: train_defaults("hnm"),
        lambda: unregister_model("hnm"),
    ],
)
def test_an_unknown_name_lists_the_valid_ones(call):
    with pytest.raises(UnknownNameError) as info:
        call()
    message = str(info.value)
    assert "unknown model 'hnm'" in message
    for name in BUILT_IN:
        assert name in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_an_option_the_model_does_not_take_is_refused_with_its_options():
    with pytest.raises(HnnkitValueError, match="takes no option widths; its options are: hidden"):
        build_model("hnn", 2, generator=None, widths=(2, 1))


# -- every registered model ------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("dim", [2, 4])
def test_every_registered_model_builds_with_its_dim(name, dim):
    model = build_model(name, dim, generator=torch.Generator().manual_seed(0))
    dtype = next(model.parameters()).dtype
    x = torch.randn(3, 5, dim, generator=torch.Generator().manual_seed(1)).to(dtype)
    assert model.vector_field(None, x).shape == (3, 5, dim)
    assert model.vector_field(0.0, x[0, 0]).shape == (dim,)


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_generator_makes_the_initialisation_reproducible(name):
    a, b, c = (build_model(name, 2, generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1))
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)


def test_the_built_in_entries_build_what_they_say():
    g = torch.Generator().manual_seed(0)
    assert isinstance(build_model("baseline", 2, generator=g), Baseline)
    assert type(build_model("hnn", 2, generator=g)) is HNN
    dhnn = build_model("dhnn", 2, generator=g)
    assert isinstance(dhnn, DissipativeHNN) and dhnn.form == "helmholtz"
    kan = build_model("kan", 2, generator=g)
    assert type(kan) is HNN and tuple(kan.energy_net.widths) == (2, 1, 2)
    kan_d = build_model("kan", 2, generator=g, dissipative=True)
    assert isinstance(kan_d, DissipativeHNN) and kan_d.form == "rayleigh"
    assert tuple(kan_d.energy_net.widths) == tuple(kan_d.dissipation_net.widths) == (2, 1, 1)
    mlp = build_model("hnn", 4, generator=g, hidden=(7, 5), activation="silu")
    assert mlp.energy_net.sizes == (4, 7, 5, 1) and mlp.energy_net.activation == "silu"


def test_kan_widths_must_start_with_the_dim():
    with pytest.raises(HnnkitValueError, match="must start with the 4 phase-space coordinates"):
        build_model("kan", 4, generator=None, widths=(2, 1, 1))


def test_shared_options_reach_only_the_models_that_take_them():
    g = torch.Generator().manual_seed(0)
    kan = build_with_shared_options("kan", 2, generator=g, hidden=(8,), activation="relu")
    assert tuple(kan.energy_net.widths) == (2, 1, 2)
    hnn = build_with_shared_options("hnn", 2, generator=g, hidden=(8,), activation="relu")
    assert hnn.energy_net.sizes == (2, 8, 1)


def test_reproduce_builds_its_models_through_the_registry(scratch):
    ours = reproduce.build_model("dhnn", 2, (8, 8), 3)
    registry = build_model("dhnn", 2, generator=torch.Generator().manual_seed(3), hidden=(8, 8))
    assert isinstance(ours, DissipativeHNN)
    for a, b in zip(ours.parameters(), registry.parameters(), strict=True):
        assert torch.equal(a, b)
    # a registered model that takes no hidden sizes is built by name, without them
    register_model("scratch-fixed", _fixed, description="fixed", defaults=DEFAULTS)
    scratch.append("scratch-fixed")
    assert isinstance(reproduce.build_model("scratch-fixed", 2, (8, 8), 0), HNN)


def _fixed(dim, *, generator=None):
    return HNN(dim, hidden=(3,), generator=generator)


# -- the pixel models ------------------------------------------------------------------------
@pytest.mark.parametrize("name, baseline", [("pixel-hnn", False), ("pixel-baseline", True)])
def test_the_pixel_models_build_through_the_registry_with_their_shapes(name, baseline):
    entry = get_model(name)
    assert entry.data == PIXELS
    assert dict(entry.options) == {
        "latent_dim": 2,
        "ae_hidden": 200,
        "n_residual": 2,
        "ae_activation": "relu",
        "latent_hidden": (200, 200),
        "latent_activation": "tanh",
        "hnn_weight": 0.1,
        "velocity_weight": 1.0,
    }
    input_dim = 2 * 6 * 6  # two stacked 6×6 frames
    g = torch.Generator().manual_seed(0)
    model = build_model(name, input_dim, generator=g, ae_hidden=16, latent_hidden=(8, 8))
    assert isinstance(model, PixelHNN) and model.baseline is baseline
    assert (model.input_dim, model.latent_dim) == (input_dim, 2)
    assert model.autoencoder.enc_in.out_features == 16
    x = torch.rand(5, input_dim, generator=torch.Generator().manual_seed(1))
    z = model.encode(x)
    assert z.shape == (5, 2)
    assert model.vector_field(None, z).shape == (5, 2)
    assert model.decode(z).shape == model(x).shape == (5, input_dim)
    assert model.loss(x, x).shape == ()


@pytest.mark.parametrize("name, baseline", [("pixel-hnn", False), ("pixel-baseline", True)])
def test_a_registered_pixel_model_is_the_pixelhnn_the_task_built_before(name, baseline):
    """Same class, same generator draws in the same order: the same initial parameters."""
    options = {"ae_hidden": 12, "latent_hidden": (6, 6)}
    ours = build_model(name, 32, generator=torch.Generator().manual_seed(4), **options)
    direct = PixelHNN(32, baseline=baseline, generator=torch.Generator().manual_seed(4), **options)
    pairs = list(zip(ours.state_dict().items(), direct.state_dict().items(), strict=True))
    for (ka, a), (kb, b) in pairs:
        assert ka == kb and torch.equal(a, b)


@pytest.mark.parametrize("name", PIXEL_MODELS)
def test_phase_space_callers_refuse_a_pixel_model(name):
    message = "learns from pixels, not phase-space; it is trained by the pixel pendulum task only"
    with pytest.raises(HnnkitValueError, match=message) as info:
        get_model(name, data=PHASE_SPACE)
    assert "`hnnkit reproduce --tasks pixel-pendulum`" in str(info.value)
    listed = str(info.value).split("(the phase-space models: ")[1].rstrip(")").split(", ")
    assert listed == sorted(list_models(data=PHASE_SPACE))
    assert {"baseline", "dhnn", "hnn", "kan"} <= set(listed)
    with pytest.raises(HnnkitValueError, match=message):
        build_with_shared_options(name, 2, generator=None, hidden=(8,))
    with pytest.raises(HnnkitValueError, match=message):
        reproduce.build_model(name, 2, (8, 8), 0)
    assert get_model(name, data=PIXELS) is get_model(name)


@pytest.mark.parametrize("name", PIXEL_MODELS)
def test_hnnkit_train_refuses_a_pixel_model_in_one_line(name, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--system", "spring", "--model", name, "--out", str(run)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"hnnkit train: error: model '{name}' learns from pixels")
    assert "pixel pendulum task only: `hnnkit reproduce --tasks pixel-pendulum`" in captured.err
    assert not run.exists()


def test_hnnkit_train_offers_only_the_phase_space_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--system", "spring", "--model", "pixel-hmm", "--out", "x"])
    err = capsys.readouterr().err
    choices = err.split("(choose from ")[1]
    assert all(f"'{name}'" in choices for name in BUILT_IN)
    assert not any(name in choices for name in PIXEL_MODELS)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # unwrapped
    assert f"one of {', '.join(list_models(data=PHASE_SPACE))} (default hnn" in text
    assert "not pixel-baseline, pixel-hnn: the pixel pendulum task only" in text


# -- register_model's checks -----------------------------------------------------------------
@pytest.mark.parametrize(
    "name, builder, kwargs, message",
    [
        ("", _tiny, {}, "non-empty string without whitespace"),
        ("my model", _tiny, {}, "non-empty string without whitespace"),
        ("a,b", _tiny, {}, "non-empty string without whitespace"),
        ("--x", _tiny, {}, "not starting with '-'"),
        ("ok", 42, {}, "builder must be callable"),
        ("ok", lambda: None, {}, "cannot be called as builder(dim, generator=...)"),
        ("ok", lambda dim: None, {}, "cannot be called as builder(dim, generator=...)"),
        ("ok", lambda dim, *, generator, h: None, {}, "cannot be called as builder"),
        ("ok", _tiny, {"description": ""}, "description must be one non-empty line"),
        ("ok", _tiny, {"description": "a\nb"}, "description must be one non-empty line"),
        ("ok", _tiny, {"data": "frames"}, "data must be one of phase-space, pixels, got 'frames'"),
        ("ok", _tiny, {"defaults": [1]}, "defaults must be a mapping"),
        ("ok", _tiny, {"defaults": {"optimizer": "adam"}}, "missing steps, weight_decay"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "lr": 1}}, "unknown lr"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "optimizer": ""}}, "an optimizer name"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "steps": 0}}, "integer >= 1, got 0"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "steps": 2.0}}, "integer >= 1, got 2.0"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "weight_decay": -1}}, "finite number >= 0"),
        ("ok", _tiny, {"defaults": {**DEFAULTS, "weight_decay": math.nan}}, "finite number >= 0"),
    ],
)
def test_register_model_refuses_what_it_cannot_use(name, builder, kwargs, message):
    before = dict(list_models())
    arguments = {"description": "a model", "defaults": DEFAULTS, **kwargs}
    with pytest.raises(HnnkitValueError) as info:
        register_model(name, builder, **arguments)
    assert message in str(info.value)
    assert list_models() == before


def test_a_taken_name_is_refused_unless_replaced(scratch):
    entry = register_model("scratch-a", _tiny, description="one", defaults=DEFAULTS)
    scratch.append("scratch-a")
    assert get_model("scratch-a") is entry and dict(entry.options) == {"hidden": (4,)}
    with pytest.raises(HnnkitValueError, match="'hnn' is already registered"):
        register_model("hnn", _tiny, description="mine", defaults=DEFAULTS)
    with pytest.raises(HnnkitValueError, match="'scratch-a' is already registered"):
        register_model("scratch-a", _fixed, description="two", defaults=DEFAULTS)
    # the same definition again (a plugin module imported twice) replaces it quietly
    again = register_model("scratch-a", _tiny, description="one again", defaults=DEFAULTS)
    assert get_model("scratch-a") is again
    register_model("scratch-a", _fixed, description="two", defaults=DEFAULTS, replace=True)
    assert get_model("scratch-a").builder is _fixed
    assert get_model("hnn").description.startswith("Hamiltonian NN")


def test_a_builder_must_return_a_model_with_a_vector_field(scratch):
    register_model(
        "scratch-linear",
        lambda dim, *, generator=None: nn.Linear(dim, dim),
        description="no field",
        defaults=DEFAULTS,
    )
    scratch.append("scratch-linear")
    with pytest.raises(HnnkitValueError, match="returned Linear, which has no vector_field"):
        build_model("scratch-linear", 2, generator=None)


def test_registered_entries_cannot_be_changed_in_place():
    entry = get_model("hnn")
    with pytest.raises(TypeError):
        entry.defaults["steps"] = 1  # type: ignore[index]
    assert train_defaults("hnn") is not train_defaults("hnn")  # copies


# -- training defaults live in the registry only ---------------------------------------------
def test_the_cli_keeps_no_training_defaults_of_its_own():
    assert not hasattr(cli, "TRAIN_DEFAULTS")
    assert train_defaults("kan") == {"optimizer": "lbfgs", "steps": 100, "weight_decay": 0.0}
    assert train_defaults("dhnn") == {"optimizer": "adam", "steps": 2000, "weight_decay": 1e-5}
    assert train_defaults("hnn") == {"optimizer": "adam", "steps": 2000, "weight_decay": 1e-4}


def test_hnnkit_train_takes_the_registered_defaults(scratch, tmp_path, capsys):
    register_model("scratch-defaults", _tiny, description="tiny", defaults=DEFAULTS)
    scratch.append("scratch-defaults")
    run = tmp_path / "run"
    argv = ["train", "--system", "spring", "--model", "scratch-defaults", "--out", str(run)]
    assert main([*argv, "--n-trajectories", "4", "--n-points", "10", "--quiet"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["optimizer"], cfg["steps"], cfg["weight_decay"]) == ("adam", 3, 0.25)
    assert cfg["hidden"] == [4]  # the builder's own default hidden sizes
    assert "activation" not in cfg  # the builder takes none
    log = (run / "log.csv").read_text().splitlines()
    assert log[-1].split(",")[0] == "3"


# -- hnnkit models ---------------------------------------------------------------------------
def test_hnnkit_models_lists_every_model_in_aligned_columns(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:]
    assert header.split()[:4] == ["name", "optimizer", "steps", "weight-decay"]
    assert [r.split()[0] for r in rows] == list(list_models())
    start = {col: header.index(col) for col in ("optimizer", "description")}
    steps_end = header.index("steps") + len("steps")
    wd_end = header.index("weight-decay") + len("weight-decay")
    for row, (name, entry) in zip(rows, list_models().items(), strict=True):
        d = entry.defaults
        assert row[: start["optimizer"]].strip() == name
        assert row[start["optimizer"] :].split()[0] == d["optimizer"]
        assert int(row[:steps_end].split()[-1]) == d["steps"]
        assert float(row[:wd_end].split()[-1]) == pytest.approx(d["weight_decay"], rel=1e-6)
        if entry.data == PHASE_SPACE:
            assert row[start["description"] :] == entry.description
        else:  # marked: what trains it
            mark = f"({entry.data}; {DATA_KINDS[entry.data]})"
            assert row[start["description"] :] == f"{entry.description} {mark}"
    pixel_rows = [r for r in rows if r.split()[0] in PIXEL_MODELS]
    assert len(pixel_rows) == 2
    for row in pixel_rows:
        assert row.endswith(
            "(pixels; the pixel pendulum task only: `hnnkit reproduce --tasks pixel-pendulum`)"
        )


@pytest.mark.parametrize("cost", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_a_model_cost_must_be_a_finite_positive_number(cost):
    from hnnkit.models import register_model

    with pytest.raises(HnnkitValueError, match="cost must be a finite number > 0"):
        register_model(
            "bad-cost",
            lambda dim, *, generator=None: None,
            description="x",
            defaults={"optimizer": "adam", "steps": 1, "weight_decay": 0.0},
            cost=cost,
        )
