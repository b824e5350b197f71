"""Command line: ``hnnkit systems | train | evaluate | reproduce | run | symbolic |
symbolic-bench``."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .errors import (
    DataFileError,
    HnnkitValueError,
    NonFiniteLossError,
    UnknownNameError,
    check_seed,
)


def _given(*options: tuple[str, Any]) -> list[str]:
    """The flags among ``(flag, value)`` pairs that the user gave (value not ``None``)."""
    return [flag for flag, value in options if value is not None]


def _int_list(flag: str, example: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in text.split(","))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{flag} takes comma-separated integers like {example}, got {text!r}"
            ) from exc

    return parse


_hidden = _int_list("--hidden", "200,200")

#: The KAN options of ``hnnkit train`` and their defaults (``--kan-widths`` is the report's).
KAN_DEFAULTS: dict[str, Any] = {
    "kan_widths": (2, 1, 2),
    "grid": 5,
    "l1": 0.0,
    "restarts": 1,
    "prune": False,
    "dissipative": False,
}
#: The files whose presence makes a directory a run (``train`` refuses to overwrite it silently).
RUN_FILES = ("config.json", "checkpoint.pt")
#: The keys every run's ``config.json`` holds (``hidden`` too, unless the model is a KAN).
REQUIRED_CONFIG_KEYS = ("system", "model", "seed")
#: Keys of ``config.json`` that record where and with what a run was made, not what it is:
#: ``--resume`` and ``evaluate`` compare every other key.
VOLATILE_CONFIG_KEYS = ("provenance", "dataset", "plugins")
#: Keys of ``config.json`` derived from the others (the run's Experiment and its hash): the
#: comparisons name the setting that differs instead.
DERIVED_CONFIG_KEYS = ("experiment", "config_hash")
#: Environment variable: comma-separated plugin modules imported before every command.
PLUGINS_ENV = "HNNKIT_PLUGINS"
#: ``evaluate --t-span``: the longest horizon END - START, as a multiple of the length of the
#: system's default span (20 time units for most systems). The reference and model rollouts
#: are solved to a tolerance of 1e-9 to 1e-10, so their cost grows with the horizon; beyond
#: this they take minutes or exhaust the solver's step budget.
MAX_SPAN_FACTOR = 10
#: The fallback default span of ``evaluate`` when the system has no task.
DEFAULT_EVAL_SPAN = (0.0, 20.0)
#: ``--threads`` may be at most this many per CPU core (more only adds contention).
MAX_THREADS_PER_CPU = 4
_ABSENT = "(absent)"


class PluginImportError(HnnkitValueError):
    """A plugin module (``--plugin`` or ``HNNKIT_PLUGINS``) could not be imported."""

    def __init__(self, plugin: str, reason: str):
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plugin {plugin} failed to import: {reason}")


#: Plugins imported in this process: the name recorded in a run's config → the module.
_LOADED_PLUGINS: dict[str, Any] = {}


def _is_plugin_path(plugin: str) -> bool:
    return plugin.endswith(".py") or "/" in plugin or os.sep in plugin


def load_plugin(plugin: str) -> str:
    """Import a plugin module once, so that its ``register_model``/``register_system`` calls run.

    Args:
        plugin: a dotted module name (``mypkg.models``, found on ``sys.path``) or the path of a
            Python file (``./my_models.py``).

    Returns:
        The name to record in a run's ``config.json``: the dotted name, or the file's absolute
        path.

    Raises:
        PluginImportError: if the module cannot be found or raises while it is imported.
    """
    import importlib
    import importlib.util

    if not isinstance(plugin, str) or not plugin.strip():
        raise PluginImportError(repr(plugin), "a plugin is a module name or a .py file's path")
    if _is_plugin_path(plugin):
        key = os.path.abspath(os.path.expanduser(plugin))
    else:
        key = plugin
    if key in _LOADED_PLUGINS:
        return key
    try:
        if _is_plugin_path(plugin):
            if not os.path.isfile(key):
                raise FileNotFoundError(f"no such file {key}")
            stem = Path(key).stem
            name = f"_hnnkit_plugin_{''.join(c if c.isalnum() else '_' for c in stem)}"
            spec = importlib.util.spec_from_file_location(name, key)
            if spec is None or spec.loader is None:
                raise ImportError(f"{key} is not a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            module = importlib.import_module(plugin)
    except Exception as exc:
        raise PluginImportError(plugin, f"{type(exc).__name__}: {exc}") from exc
    _LOADED_PLUGINS[key] = module
    return key


def load_plugins(plugins: list[str]) -> list[str]:
    """Import each plugin (see :func:`load_plugin`); the names to record, without repeats."""
    loaded: list[str] = []
    for plugin in plugins:
        key = load_plugin(plugin)
        if key not in loaded:
            loaded.append(key)
    return loaded


def _requested_plugins(argv: list[str]) -> tuple[str | None, list[str]]:
    """The subcommand and the plugins asked for: ``HNNKIT_PLUGINS``, then each ``--plugin``.

    Read before the full parser is built, since ``--model``'s choices include the plugins'.
    """

    class Quiet(argparse.ArgumentParser):
        def error(self, message: str):  # the full parser reports it
            raise ValueError(message)

    pre = Quiet(add_help=False)
    _add_top_level_options(pre, typed=False)
    pre.add_argument("command", nargs="?")
    pre.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        known, _ = pre.parse_known_args(argv)
    except ValueError:
        return None, []
    env = [p.strip() for p in os.environ.get(PLUGINS_ENV, "").split(",") if p.strip()]
    return known.command, [*env, *known.plugin]


def _add_top_level_options(p: argparse.ArgumentParser, *, typed: bool = True) -> None:
    """``--threads`` and ``--plugin``, the options before the subcommand."""
    p.add_argument(
        "--threads",
        type=int if typed else str,
        default=1,
        help=f"torch intra-op threads, 1 to {MAX_THREADS_PER_CPU} per CPU core (default 1; see "
        "README)",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a dotted name or a .py file) first, so that the models and systems "
        f"it registers reach every command; repeatable; also {PLUGINS_ENV}=A,B",
    )


def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"key: old → new"`` for each non-volatile key whose value differs between two configs."""
    from .files import strict_json

    keys = sorted((set(old) | set(new)) - {*VOLATILE_CONFIG_KEYS, *DERIVED_CONFIG_KEYS})
    diffs = []
    for key in keys:
        a, b = (strict_json(c[key]) if key in c else _ABSENT for c in (old, new))
        if a != b:
            show = [v if v is _ABSENT else json.dumps(v) for v in (a, b)]
            diffs.append(f"{key}: {show[0]} → {show[1]}")
    return diffs


def _read_run_config(path: Path, *, required: tuple[str, ...] = REQUIRED_CONFIG_KEYS) -> dict:
    """A run's ``config.json`` as a dict holding the ``required`` keys.

    Raises:
        DataFileError: if the file is not JSON, not an object, or lacks a required key.
    """
    advice = f"retrain the run with `hnnkit train --force --out {path.parent}`"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataFileError(f"{path} is corrupted ({exc}); {advice}") from exc
    if not isinstance(cfg, dict):
        raise DataFileError(
            f"{path} holds a JSON {type(cfg).__name__}, not a run's settings (a JSON object); "
            f"{advice}"
        )
    if not required:
        return cfg
    from .models import list_models
    from .models.registry import PIXELS

    _import_run_plugins(cfg, path)
    models = list_models()
    entry = models.get(cfg.get("model"))  # type: ignore[arg-type]
    if entry is not None and entry.data == PIXELS:  # no system: its pixel data set instead
        required = (*(k for k in required if k != "system"), "pixels", "options", "eval")
    elif entry is not None and entry.accepts("hidden"):
        required = (*required, "hidden")
    missing = [key for key in required if key not in cfg]
    if missing:
        raise DataFileError(f"{path} lacks {', '.join(missing)}; {advice}")
    if entry is None:
        raise DataFileError(
            f"{path} names an unknown model {cfg['model']!r} (valid: {', '.join(models)}); if a "
            f"plugin registers it, pass it with `hnnkit --plugin MODULE ...` or {PLUGINS_ENV}; "
            f"else {advice}"
        )
    return cfg


def _import_run_plugins(cfg: dict[str, Any], path: Path) -> None:
    """Import the plugins a run's config records, when its model or system is not registered.

    Raises:
        DataFileError: if a recorded plugin fails to import (the message says how to pass it).
    """
    from .models import list_models
    from .systems import list_systems

    plugins = cfg.get("plugins")
    if not plugins:
        return
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise DataFileError(
            f"{path}: 'plugins' must be a list of module names or paths, got {plugins!r}; "
            f"retrain the run with `hnnkit train --force --out {path.parent}`"
        )
    system = cfg.get("system")
    measured = system == "real-pendulum" or "data" in cfg  # no system to register
    if cfg.get("model") in list_models() and (measured or system in list_systems()):
        return
    for plugin in plugins:
        try:
            load_plugin(plugin)
        except PluginImportError as exc:
            raise DataFileError(
                f"{path} records plugin {plugin}, which failed to import ({exc.reason}); pass "
                f"the module that registers model {cfg.get('model')!r} with "
                f"`hnnkit --plugin MODULE ...` or {PLUGINS_ENV}"
            ) from None


def _check_config_matches_checkpoint(cfg: dict, state: dict, cfg_path: Path, advice: str) -> None:
    """Refuse a ``config.json`` that does not describe the checkpoint's own stored config."""
    stored = state.get("config")
    if not isinstance(stored, dict) or not stored:
        return  # a checkpoint written by fit() without a config: nothing to compare
    diffs = _config_differences(stored, cfg)
    if diffs:
        raise DataFileError(
            f"{cfg_path} does not describe the model in {cfg_path.parent / 'checkpoint.pt'} "
            f"(checkpoint → config.json: {'; '.join(diffs)}); {advice}"
        )


#: The longest Hamiltonian ``hnnkit systems`` prints in its table without ``--full``.
FORMULA_WIDTH = 80


def cmd_systems(args: argparse.Namespace) -> int:
    """``hnnkit systems``: every registered system, the measured real pendulum and ``custom``."""
    from .data.real_pendulum import ENERGY_K
    from .systems import list_systems

    rows = [("name", "class", "dof", "H(q, p)", "defaults")]
    for name, cls in list_systems().items():
        if name == "custom":
            rows.append(
                (
                    name,
                    "Custom",
                    "n",
                    'yours: --hamiltonian "p**2/2 + q**2/2 + q**4/4" [--dof n] [--param k=2]',
                    "",
                )
            )
            continue
        try:
            s = cls()
        except TypeError:
            rows.append((name, getattr(cls, "__name__", "?"), "?", "(needs arguments)", ""))
            continue
        rows.append((name, cls.__name__, str(s.dof), str(s.formula), repr(s)))
    rows.append(
        (
            "real-pendulum",
            "measured",
            "1",
            f"a recording; its energy {ENERGY_K:g}*(1 - cos(q)) + p**2",
            "hnnkit.data.real_pendulum()",
        )
    )
    shortened = False
    if not args.full:
        for i, r in enumerate(rows):
            if len(r[3]) > FORMULA_WIDTH:
                rows[i] = (*r[:3], r[3][: FORMULA_WIDTH - 1] + "…", r[4])
                shortened = True
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2])]
        print(f"{'  '.join(cells)}  {r[3].ljust(widths[3])}  {r[4]}".rstrip())
    if shortened:
        print(f"(…: a formula longer than {FORMULA_WIDTH} characters; --full prints them whole)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``hnnkit models``: each registered model, its training defaults (loss included), its
    kind (a ``field`` with ``vector_field`` or a one-step ``map`` with ``step``) and its
    description; a model that does not learn from phase-space states says what trains it."""
    from .models import list_models
    from .models.registry import DATA_KINDS, OPTIONAL_DEFAULTS, PHASE_SPACE

    def loss(defaults: Any) -> str:
        name = defaults.get("loss", OPTIONAL_DEFAULTS["loss"])
        options = defaults.get("loss_options") or {}
        if not options:
            return name
        return f"{name}({','.join(f'{k}={v}' for k, v in options.items())})"

    header = ("name", "optimizer", "steps", "weight-decay", "kind", "loss", "description")
    rows = [
        (
            name,
            e.defaults["optimizer"],
            str(e.defaults["steps"]),
            f"{e.defaults['weight_decay']:g}",
            e.kind,
            loss(e.defaults),
            e.description
            if e.data == PHASE_SPACE
            else f"{e.description} ({e.data}; {DATA_KINDS[e.data]})",
        )
        for name, e in list_models().items()
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(6)]
    for row in (header, *rows):
        name, optimizer, steps, wd, kind, loss_name, description = row
        print(
            f"{name:<{widths[0]}}  {optimizer:<{widths[1]}}  {steps:>{widths[2]}}  "
            f"{wd:>{widths[3]}}  {kind:<{widths[4]}}  {loss_name:<{widths[5]}}  {description}"
        )
    return 0


#: The ``system`` of a run trained with ``--data FILE`` (its config's ``data`` names the file).
DATA_SYSTEM = "data"


def _dataset_from_config(cfg: dict[str, Any]):
    """The dataset a run's config describes: its file, the real pendulum, or a simulation.

    Raises:
        DataFileError: if a ``--data`` run's file is missing or has changed (SHA-256).
    """
    from .data import generate, load_trajectories, real_pendulum

    if "data" in cfg:
        entry = cfg["data"]
        if not isinstance(entry, dict) or not {"path", "sha256"} <= set(entry):
            raise DataFileError("config.json of a --data run lacks data.path or data.sha256")
        return load_trajectories(
            entry["path"], test_fraction=entry.get("test_fraction"), sha256=entry["sha256"]
        )
    if cfg["system"] == "real-pendulum":
        return real_pendulum()
    return generate(
        _system_from_config(cfg),
        n_trajectories=cfg.get("n_trajectories"),
        n_points=cfg.get("n_points"),
        noise_std=cfg.get("noise_std"),
        seed=cfg["seed"],
        test_fraction=cfg.get("test_fraction"),
        energy_range=cfg.get("energy_range"),
        cache=True,
    )


def _system_from_config(cfg: dict[str, Any]):
    """The true system of a run's config; ``None`` for measured data (``--data``, real-pendulum)."""
    from .systems import Custom, get_system

    if "data" in cfg or cfg["system"] == "real-pendulum":
        return None
    if cfg["system"] == "custom":
        if not isinstance(cfg.get("hamiltonian"), str):
            raise DataFileError(
                "config.json of a --system custom run lacks its 'hamiltonian'; retrain the run"
            )
        return Custom(cfg["hamiltonian"], cfg.get("dof", 1), parameters=cfg.get("params") or {})
    return get_system(cfg["system"], **(cfg.get("params") or {}))  # e.g. a kan-spring run's


def _parse_params(items: list[str] | None) -> dict[str, float]:
    """``--param NAME=VALUE`` options as a dict (one-line errors for malformed ones)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.isidentifier() or not math.isfinite(number):
            raise HnnkitValueError(
                f"--param takes NAME=VALUE with a finite number, e.g. --param k=2; got {item!r}"
            )
        if name in out:
            raise HnnkitValueError(f"--param {name} is given twice; pass each name once")
        out[name] = number
    return out


def _option_value(text: str) -> Any:
    """A ``--loss-option`` value: an integer, a number, true/false, else the string."""
    for parse in (int, float):
        try:
            value = parse(text)
        except ValueError:
            continue
        if parse is int or math.isfinite(value):
            return value
    return {"true": True, "false": False}.get(text.lower(), text)


def _parse_loss_options(items: list[str] | None) -> dict[str, Any]:
    """``--loss-option KEY=VALUE`` options as a dict (one-line errors for malformed ones)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not value.strip():
            raise HnnkitValueError(
                f"--loss-option takes KEY=VALUE, e.g. --loss-option k=5; got {item!r}"
            )
        if name in out:
            raise HnnkitValueError(f"--loss-option {name} is given twice; pass each key once")
        out[name] = _option_value(value.strip())
    return out


def _source_config(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Check ``--system``/``--data`` and their options; the config keys they add, and the state size.

    A ``--data`` run records ``data: {path, sha256[, test_fraction]}`` and ``system: "data"``;
    a custom system ``hamiltonian``, ``dof`` and ``params``; ``energy_range`` and
    ``test_fraction`` are recorded when given.
    """
    from .data import load_trajectories
    from .data.sampling import check_energy_range

    own = _given(
        ("--hamiltonian", args.hamiltonian),
        ("--dof", args.dof),
        ("--param", args.param),
    )
    if args.test_fraction is not None and not 0 < args.test_fraction < 1:
        raise HnnkitValueError(
            f"--test-fraction must be in (0, 1) (the share of whole trajectories held out), got "
            f"{args.test_fraction}"
        )
    if args.data is not None:
        simulation = _given(
            ("--n-trajectories", args.n_trajectories),
            ("--n-points", args.n_points),
            ("--noise-std", args.noise_std),
            ("--energy-range", args.energy_range),
        )
        if args.system is not None:
            raise HnnkitValueError(
                f"--data and --system {args.system}: pass one of them (with --data the "
                "trajectories come from the file)"
            )
        if simulation or own:
            raise HnnkitValueError(
                f"{', '.join(simulation + own)}: not for --data, whose trajectories come from the "
                "file; drop them"
            )
        data = load_trajectories(args.data, test_fraction=args.test_fraction)
        entry: dict[str, Any] = {"path": data.config["source"], "sha256": data.config["sha256"]}
        if args.test_fraction is not None:
            entry["test_fraction"] = args.test_fraction
        args.system = DATA_SYSTEM
        return {"data": entry}, data.dim
    if args.system is None:
        raise HnnkitValueError(
            "hnnkit train needs --system NAME (see `hnnkit systems`; your own H with --system "
            'custom --hamiltonian "p**2/2 + q**2/2") or --data FILE (.csv or .npz)'
        )
    extra: dict[str, Any] = {}
    if args.system == "custom":
        if args.hamiltonian is None:
            raise HnnkitValueError(
                '--system custom needs --hamiltonian FORMULA, e.g. --hamiltonian "p**2/2 + '
                'q**2/2 + q**4/4", or with --dof 2 "(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2"'
            )
        if args.dof is not None and args.dof < 1:
            raise HnnkitValueError(f"--dof must be >= 1 (degrees of freedom), got {args.dof}")
        extra = {
            "hamiltonian": args.hamiltonian,
            "dof": 1 if args.dof is None else args.dof,
            "params": _parse_params(args.param),
        }
        dim = _system_from_config({"system": "custom", **extra}).dim
    elif own:
        raise HnnkitValueError(
            f"{', '.join(own)}: only for --system custom (your own Hamiltonian), not --system "
            f"{args.system}"
        )
    else:
        dim = _system_dim(args.system)
    measured = args.system == "real-pendulum"
    for flag, value in (
        ("--energy-range", args.energy_range),
        ("--test-fraction", args.test_fraction),
    ):
        if measured and value is not None:
            raise HnnkitValueError(
                f"{flag}: not for --system real-pendulum, whose data are a fixed recording; drop it"
            )
    if args.energy_range is not None:
        try:
            extra["energy_range"] = list(check_energy_range(args.energy_range))
        except HnnkitValueError:
            raise HnnkitValueError(
                f"--energy-range LO HI needs finite numbers with LO < HI, e.g. 0.02 0.1; got "
                f"{args.energy_range[0]:g} {args.energy_range[1]:g}"
            ) from None
    if args.test_fraction is not None:
        extra["test_fraction"] = args.test_fraction
    return extra, dim


def _recorded_rollouts(name: str, model, data):
    """Rollouts of ``model`` from the first state of each held-out trajectory over its recorded
    times, scored against the recorded states (no true system: ``--data`` runs).

    Returns ``({name: {rollout_mse, valid_time}}, Rollouts)``; the energy panel shows the
    model's learned H (along the recording and the rollout) when it has one.
    """
    import torch

    from .evaluate import Rollouts, as_float64, rollout
    from .metrics import mean_sem, rollout_mse, valid_prediction_time

    m64 = as_float64(model)
    states = data.x_clean if data.x_clean is not None else data.x
    idx = data.test_trajectories[:25]
    t0 = (data.t[idx] - data.t[idx, :1]).to(torch.float64)  # (B, T), each from 0
    true = states[idx].to(torch.float64).transpose(0, 1)  # (T, B, d)
    pred = torch.stack(
        [rollout(m64, true[:1, b], t0[b], rtol=1e-9, atol=1e-9)[:, 0] for b in range(len(idx))],
        dim=1,
    )
    per = {
        "rollout_mse": rollout_mse(true, pred).mean(0),
        "valid_time": torch.stack(
            [
                valid_prediction_time(t0[b], true[:, b : b + 1], pred[:, b : b + 1])[0]
                for b in range(len(idx))
            ]
        ),
    }
    if hasattr(m64, "hamiltonian"):
        with torch.no_grad():
            e_true, e_pred = m64.hamiltonian(true), m64.hamiltonian(pred)
    else:
        e_true = e_pred = torch.full(true.shape[:2], math.nan, dtype=torch.float64)
    scores = {k: {**mean_sem(v), "values": v.tolist()} for k, v in per.items()}
    rollouts = Rollouts(
        t=t0[0], true=true, models={name: pred}, true_energy=e_true, model_energy={name: e_pred}
    )
    return {name: scores}, rollouts


def _resolve_train_args(args: argparse.Namespace) -> None:
    """Fill the model-dependent defaults in ``args`` and check the KAN options (before any work).

    ``--optimizer``, ``--steps`` and ``--weight-decay`` default to the model's registered training
    defaults; ``--hidden`` and ``--activation`` to its builder's, for a model that takes them.
    """
    from .experiments.spec import train_settings
    from .models import DEFAULT_KEYS, get_model
    from .models.registry import PHASE_SPACE

    entry = get_model(args.model, data=PHASE_SPACE)  # a pixel model: where it is trained
    args.loss_options = _parse_loss_options(args.loss_option)
    if args.through_step:
        if args.loss not in (None, "through-step"):
            raise HnnkitValueError(
                f"--through-step is --loss through-step, not --loss {args.loss}: pass one of them"
            )
        args.loss = "through-step"
    if args.model == "kan" and args.through_step:
        raise HnnkitValueError("--through-step is for --model hnn, baseline or dhnn, not kan")
    if args.model == "kan" and (args.loss not in (None, "derivative") or args.loss_options):
        raise HnnkitValueError(
            "--loss and --loss-option: not for --model kan, whose schedule (restarts, grid, "
            "L1, pruning) trains with the derivative loss; drop them"
        )
    given = {key: getattr(args, key) for key in DEFAULT_KEYS}
    for key, value in train_settings(args.model, **given).items():
        setattr(args, key, value)
    args.through_step = args.loss == "through-step"
    for key in ("hidden", "activation"):
        if getattr(args, key) is None and entry.accepts(key):
            setattr(args, key, entry.options[key])
    given = ["--" + key.replace("_", "-") for key in KAN_DEFAULTS if getattr(args, key) is not None]
    if args.model != "kan":
        if given:
            raise HnnkitValueError(
                f"{', '.join(given)}: only for --model kan, not --model {args.model}"
            )
        return
    if args.dissipative and args.kan_widths is None:
        args.kan_widths = (2, 1, 1)  # one output each for H and D
    for key, default in KAN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    if args.dissipative:
        if args.kan_widths[-1] != 1:
            raise HnnkitValueError(
                f"--dissipative needs KANs with one output (H and D each), got --kan-widths "
                f"{','.join(map(str, args.kan_widths))}; e.g. --kan-widths {args.kan_widths[0]},1,1"
            )
        unsupported = [f for f, on in (("--l1", args.l1 > 0), ("--prune", args.prune)) if on]
        if unsupported:
            raise HnnkitValueError(
                f"{', '.join(unsupported)}: not supported with --dissipative yet (they act on one "
                "KAN); drop them"
            )
    if args.restarts < 1:
        raise HnnkitValueError(
            f"--restarts must be >= 1 (the number of KAN initialisations to try), got {args.restarts}"
        )
    if args.grid < 1:
        raise HnnkitValueError(f"--grid must be >= 1 (spline intervals per edge), got {args.grid}")
    if not (math.isfinite(args.l1) and args.l1 >= 0):
        raise HnnkitValueError(
            f"--l1 must be >= 0 and finite (the L1 weight λ, e.g. 5e-5), got {args.l1}"
        )
    if len(args.kan_widths) < 2 or min(args.kan_widths) < 1:
        raise HnnkitValueError(
            f"--kan-widths needs at least two positive sizes (inputs,...,outputs), e.g. 2,1,2; "
            f"got {','.join(map(str, args.kan_widths))}"
        )
    if args.steps < 1:
        raise HnnkitValueError(f"--steps must be >= 1 for --model kan, got {args.steps}")


def _check_train_args(args: argparse.Namespace) -> None:
    """Refuse unusable numbers and options of ``hnnkit train`` before any work or file."""

    def positive_int(flag: str, value: int | None, minimum: int, what: str) -> None:
        if value is not None and value < minimum:
            raise HnnkitValueError(f"{flag} must be >= {minimum} ({what}), got {value}")

    if not (math.isfinite(args.lr) and args.lr > 0):
        raise HnnkitValueError(f"--lr must be a finite number > 0, e.g. 1e-3; got {args.lr}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise HnnkitValueError(
            f"--weight-decay must be a finite number >= 0, e.g. 1e-4; got {args.weight_decay}"
        )
    positive_int("--steps", args.steps, 1, "the number of optimisation steps")
    positive_int("--batch-size", args.batch_size, 1, "omit it for full batch")
    positive_int("--log-every", args.log_every, 1, "steps between logged losses")
    check_seed("--seed", args.seed)
    if args.hidden is not None and (not args.hidden or min(args.hidden) < 1):
        raise HnnkitValueError(
            f"--hidden takes positive layer sizes like 200,200, got "
            f"{','.join(map(str, args.hidden))}"
        )
    if args.system == "real-pendulum":
        given = _given(
            ("--n-trajectories", args.n_trajectories),
            ("--n-points", args.n_points),
            ("--noise-std", args.noise_std),
        )
        if given:
            raise HnnkitValueError(
                f"{', '.join(given)}: not for --system real-pendulum, whose data are a fixed "
                "recording; drop them"
            )
    positive_int("--n-trajectories", args.n_trajectories, 2, "a train and a test trajectory")
    positive_int("--n-points", args.n_points, 2, "time points per trajectory")
    if args.noise_std is not None and not (math.isfinite(args.noise_std) and args.noise_std >= 0):
        raise HnnkitValueError(
            f"--noise-std must be a finite number >= 0 (a standard deviation), got {args.noise_std}"
        )
    if args.resume and args.force:
        raise HnnkitValueError(
            "--resume continues the run in --out and --force overwrites it: pass one of them"
        )


def _check_out_path(out: Path) -> None:
    """Refuse an ``--out`` that is a file or lies under a file."""
    from .experiments.reproduce import check_out_dir

    check_out_dir(out)
    for parent in out.absolute().parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise HnnkitValueError(
                    f"--out {out}: {parent} is a file, not a directory; choose another path"
                )
            return


def _system_dim(name: str) -> int:
    """The phase-space dimension of ``--system name`` (an error listing the valid names)."""
    from .systems import get_system

    if name == "real-pendulum":
        return 2
    try:
        return 2 * get_system(name).dof
    except UnknownNameError as exc:
        raise UnknownNameError("system", name, [*exc.valid, "real-pendulum"]) from None


def _kan_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "widths": list(args.kan_widths),
        "grid": args.grid,
        "k": 3,
        "grid_range": [-2.0, 2.0],
        "output_index": args.kan_widths[-1] - 1,
        "dtype": "float64",
        "l1": args.l1,
        "restarts": args.restarts,
        "prune": args.prune,
        **({"dissipative": True, "form": "rayleigh"} if args.dissipative else {}),
    }


def model_from_config(cfg: dict[str, Any], dim: int, system: Any = None):
    """The untrained model that a run's ``config.json`` describes, built through the model registry.

    A ``kan`` run's options come from its ``kan`` section; ``hidden`` and ``activation`` go to the
    models that take them; ``system`` (the run's true system) to a model that needs it (``lnn``).

    Raises:
        DataFileError: if a ``kan`` run's config has no ``kan`` section.
        UnknownNameError: if the model is not registered.
    """
    from .experiments.run import kan_model, model_from_spec
    from .experiments.spec import ModelSpec

    if cfg["model"] == "kan":
        spec = cfg.get("kan")
        if not isinstance(spec, dict) or "widths" not in spec:
            raise DataFileError("config.json of a kan run has no 'kan' section; retrain the run")
        return kan_model(spec, dim)
    kwargs = {k: cfg[k] for k in ("hidden", "activation") if cfg.get(k) is not None}
    return model_from_spec(ModelSpec(cfg["model"], kwargs), dim, cfg["seed"], system=system)


def _remove_swap_leftovers(out: Path) -> None:
    """Finish or undo what a killed ``train --force`` swap left beside ``out`` (hold its lock).

    A fresh run is built in ``.OUT.tmp-PID`` and swapped in by renaming ``OUT`` to
    ``.OUT.old-PID``, the new run to ``OUT``, and deleting the old one. A leftover whose
    owner still runs (its lock is held) is left alone. If ``OUT`` holds no run but an old
    one was set aside, the kill came between the renames: the old run is put back.
    """
    from .files import LOCK_NAME, DirectoryLock, DirectoryLockedError

    parent, name = out.parent, out.name
    leftovers = sorted(
        (p for p in parent.iterdir() if p.name.startswith((f".{name}.old-", f".{name}.tmp-"))),
        key=lambda p: (".tmp-" in p.name, p.name),  # old runs first: they may be restored
    )
    for path in leftovers:
        if not path.is_dir() or path.is_symlink():
            continue
        try:
            with DirectoryLock(path, "hnnkit train (cleanup)"):
                old_run = ".old-" in path.name and (path / "config.json").is_file()
                if old_run and not any((out / f).exists() for f in RUN_FILES):
                    for entry in path.iterdir():
                        if entry.name != LOCK_NAME:
                            os.replace(entry, out / entry.name)
                shutil.rmtree(path)
        except DirectoryLockedError:
            continue


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` by the finished run in ``staging``: rename aside, rename in, delete."""
    aside = out.parent / f".{out.name}.old-{os.getpid()}"
    os.rename(out, aside)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _check_resume(out: Path, cfg: dict[str, Any]) -> None:
    """Refuse ``--resume`` unless the run in ``out`` was made with exactly ``cfg``."""
    from .train import CHECKPOINT, load_checkpoint

    cfg_path = out / "config.json"
    if not cfg_path.is_file():
        raise DataFileError(
            f"cannot resume: {out} holds a checkpoint but no config.json; pass --force to "
            "overwrite it"
        )
    old = _read_run_config(cfg_path)
    advice = "pass the same options to continue it, --force to overwrite it, or another --out"
    diffs = _config_differences(old, cfg)
    if diffs:
        raise HnnkitValueError(
            f"cannot resume {out}: it was trained with other settings (old → new: "
            f"{'; '.join(diffs)}); {advice}"
        )
    if (out / CHECKPOINT).exists():
        _check_config_matches_checkpoint(cfg, load_checkpoint(out / CHECKPOINT), cfg_path, advice)


def _train_into(work: Path, args: argparse.Namespace, exp, cfg: dict[str, Any], data, device):
    """Train ``exp`` into the run directory ``work`` (:func:`hnnkit.experiments.run.train_run`)."""
    from .experiments.run import train_run

    res, metrics = train_run(
        exp,
        data,
        work,
        device,
        config=cfg,
        resume=args.resume,
        log_every=args.log_every,
        quiet=args.quiet,
    )
    kan = metrics.get("kan")
    if kan and not args.quiet:
        if args.restarts > 1:
            objectives = ", ".join(f"{v:.3e}" for v in kan["restart_objectives"])
            print(f"restarts: objectives [{objectives}]; kept #{kan['restart_chosen']}")
        if args.prune:
            print(f"pruned edges {kan['pruned_edges']}, nodes {kan['pruned_nodes']}")
    return res, metrics


def _experiment(args: argparse.Namespace, cfg: dict[str, Any]):
    """The :class:`~hnnkit.experiments.spec.Experiment` of ``hnnkit train``'s checked options."""
    from .experiments.spec import DataSpec, Experiment, ModelSpec, TrainSpec

    if "data" in cfg:
        data = DataSpec(file=cfg["data"]["path"], test_fraction=args.test_fraction)
    elif args.system == "real-pendulum":
        data = DataSpec(system=args.system)
    else:
        custom = {k: cfg[k] for k in ("hamiltonian", "dof") if k in cfg}
        data = DataSpec(
            system=args.system,
            params={**custom, **cfg.get("params", {})},
            n_trajectories=args.n_trajectories,
            n_points=args.n_points,
            noise_std=args.noise_std,
            test_fraction=args.test_fraction,
            energy_range=cfg.get("energy_range"),
        )
    kwargs = {k: cfg[k] for k in ("hidden", "activation") if cfg.get(k) is not None}
    train = TrainSpec(
        optimizer=args.optimizer,
        lr=args.lr,
        steps=args.steps,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        loss=args.loss,
        loss_options=args.loss_options,
    )
    return Experiment(data, ModelSpec(args.model, kwargs), train, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> int:
    """``hnnkit train``: validate everything, lock OUT, then resume in place or build and swap in.

    A new run (or ``--force``) is built in the hidden sibling ``.OUT.tmp-PID`` and renamed
    onto ``OUT`` only when complete, so a failure or a kill leaves an earlier run intact and
    no partial directory. ``--resume`` continues in place, only if every setting matches.
    """
    from .experiments.reproduce import resolve_device
    from .files import LOCK_NAME, DirectoryLock, remove_stale_temporaries

    _resolve_train_args(args)
    _check_train_args(args)
    out = Path(args.out)
    _check_out_path(out)
    device = resolve_device(args.device)
    source, dim = _source_config(args)  # the system or data file, validated before any work
    if args.model == "kan" and args.kan_widths[0] != dim:
        raise HnnkitValueError(
            f"--kan-widths must start with the {dim} phase-space coordinates of {args.system}, "
            f"got {','.join(map(str, args.kan_widths))}; e.g. --kan-widths {dim},1,1"
        )
    cfg: dict[str, Any] = {
        "system": args.system,
        "model": args.model,
        "seed": args.seed,
        "hidden": None if args.hidden is None else list(args.hidden),
        "activation": args.activation,
        "steps": args.steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "n_trajectories": args.n_trajectories,
        "n_points": args.n_points,
        "noise_std": args.noise_std,
        "optimizer": args.optimizer,
    }
    cfg.update(source)
    from .models import get_model

    for key in ("hidden", "activation"):  # recorded for the models that take them
        if not get_model(args.model).accepts(key):
            del cfg[key]
    if args.model == "kan":
        cfg["kan"] = _kan_config(args)
    if getattr(args, "plugins", None):
        cfg["plugins"] = list(args.plugins)
    if args.through_step and args.model == "kan":
        raise HnnkitValueError("--through-step is for --model hnn, baseline or dhnn, not kan")
    from .experiments.run import check_loss, load_data, loss_config

    exp = _experiment(args, cfg)
    cfg.update(loss_config(exp.train))
    cfg.update(experiment=exp.to_dict(), config_hash=exp.config_hash())
    data = load_data(exp.data, exp.data_seed, sha256=cfg.get("data", {}).get("sha256"))
    if args.through_step and data.step is None:
        raise HnnkitValueError(
            f"--through-step needs targets that are forward differences (as real-pendulum's); "
            f"{args.system} data hold exact derivatives: drop --through-step"
        )
    check_loss(exp.train, data)  # e.g. a rollout longer than the trajectories, before any file
    out = Path(os.path.abspath(out))  # its parent and name place the sibling build directory
    created = not out.exists()
    with DirectoryLock(out, "hnnkit train"):
        try:
            remove_stale_temporaries(out)
            _remove_swap_leftovers(out)
            has_run = any((out / f).exists() for f in RUN_FILES)
            if has_run and args.resume:
                _check_resume(out, cfg)
                res, metrics = _train_into(out, args, exp, cfg, data, device)
            elif has_run and not args.force:
                raise HnnkitValueError(
                    f"{out} already holds a run; pass --resume to continue it or --force to "
                    "overwrite it (or choose another --out)"
                )
            else:
                others = [p.name for p in out.iterdir() if not p.name.startswith(".")]
                if others and not has_run:
                    raise HnnkitValueError(
                        f"{out} is not empty ({', '.join(sorted(others)[:5])}) and holds no "
                        "hnnkit run; choose a new or empty --out"
                    )
                args.resume = False
                staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
                with DirectoryLock(staging, "hnnkit train"):
                    try:
                        res, metrics = _train_into(staging, args, exp, cfg, data, device)
                        _swap_in(staging, out)
                        created = False
                    except BaseException as exc:
                        shutil.rmtree(staging, ignore_errors=True)
                        if isinstance(exc, NonFiniteLossError):
                            raise HnnkitValueError(
                                f"loss became non-finite ({exc.loss}) at step {exc.step}; nothing "
                                f"was written to {out}. Lower --lr, or check the data for NaN/inf"
                            ) from exc
                        raise
        except BaseException:
            if created:  # this call made OUT only to lock it: leave no empty directory behind
                try:
                    (out / LOCK_NAME).unlink(missing_ok=True)
                    out.rmdir()
                except OSError:
                    pass
            raise
    if not args.quiet:
        train, test = metrics["train_loss"]["mean"], metrics["test_loss"]["mean"]
        print(f"train loss {train:.4e}  test loss {test:.4e}  ({res.seconds:.1f} s)")
        if "dissipation_rate" in metrics:
            print(f"learned dissipation rate {metrics['dissipation_rate']['mean']:.4g}")
        files = "config.json, checkpoint.pt, log.csv, metrics.json, loss.png"
        if args.model == "kan":
            files += f"; `hnnkit symbolic {out}` prints its formula"
        print(f"wrote {out}/{files}")
    return 0


def _check_t_span(t_span: list[float] | None, system: str | None) -> tuple[float, float]:
    """The span of ``evaluate --t-span`` (default: the system's), refused unless usable.

    END must exceed START, both finite, and END - START at most :data:`MAX_SPAN_FACTOR`
    times the length of the system's default span (not checked when ``system`` is ``None``).
    """
    from .experiments.tasks import TASKS

    task = TASKS.get(system or "")
    default = tuple(task.eval_span) if task else DEFAULT_EVAL_SPAN
    if t_span is None:
        return default
    start, end = t_span
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise HnnkitValueError(
            f"--t-span START END needs finite numbers with END > START, got {start} {end}; "
            f"e.g. --t-span {default[0]:g} {default[1]:g}"
        )
    longest = MAX_SPAN_FACTOR * (default[1] - default[0])
    if system is not None and end - start > longest:
        raise HnnkitValueError(
            f"--t-span {start:g} {end:g} spans {end - start:g} time units; evaluate allows at "
            f"most {longest:g} for {system} ({MAX_SPAN_FACTOR}× its default span "
            f"{default[0]:g} {default[1]:g}), since the reference and model rollouts are solved "
            "to high accuracy and their cost grows with the horizon; pass a shorter span"
        )
    return (start, end)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .files import DirectoryLock, remove_stale_temporaries
    from .models import get_model
    from .models.registry import PIXELS
    from .train import load_checkpoint

    run = Path(args.run_dir)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise DataFileError(
            f"{cfg_path} not found; {run} is not a run directory made by `hnnkit train`"
        )
    if args.t_span is not None:
        _check_t_span(args.t_span, None)  # finite and ordered, before any work
    with DirectoryLock(run, "hnnkit evaluate"):
        remove_stale_temporaries(run)
        cfg = _read_run_config(cfg_path)
        if get_model(cfg["model"]).data == PIXELS:
            if args.t_span is not None:
                raise HnnkitValueError(
                    "--t-span: not for a pixel model, whose rollouts span its recorded "
                    "evaluation frames; drop it"
                )
            state = load_checkpoint(run / "checkpoint.pt")
            _check_config_matches_checkpoint(
                cfg, state, cfg_path, "the run is mislabelled: rerun the task that made it"
            )
            return _evaluate_pixel_run(run, cfg, state)
        if "data" in cfg and args.t_span is not None:
            raise HnnkitValueError(
                "--t-span: not for a --data run, whose rollouts follow the recorded times of "
                "its held-out trajectories; drop it"
            )
        span = _check_t_span(args.t_span, cfg["system"])
        state = load_checkpoint(run / "checkpoint.pt")
        _check_config_matches_checkpoint(
            cfg,
            state,
            cfg_path,
            f"the run is mislabelled: retrain it with `hnnkit train --force --out {run}`",
        )
        return _evaluate_run(run, cfg, state, span)


def _evaluate_pixel_run(run: Path, cfg: dict[str, Any], state: dict[str, Any]) -> int:
    """``hnnkit evaluate`` of a pixel model's directory (a ``data="pixels"`` model): the
    losses and the energy metric its task records, recomputed from config.json and the weights."""
    from .experiments.pixel_pendulum import evaluate_pixel_run
    from .files import atomic_write_json

    try:
        metrics = evaluate_pixel_run(cfg, state["model"])
    except DataFileError as exc:
        raise DataFileError(f"{run}: {exc}") from exc
    previous: dict[str, Any] = {}
    try:
        loaded = json.loads((run / "metrics.json").read_text())
        previous = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass  # missing or corrupt: rewritten from scratch
    atomic_write_json(run / "metrics.json", {**previous, **metrics})
    for k in ("train_loss", "test_loss", "energy"):
        v = metrics[k]
        print(f"{k:<14} {v['mean']:.4e} ± {v['sem']:.2e}")
    print(f"{'coord_mse':<14} {metrics['coord_mse']:.4e}")
    print(f"wrote {run}/metrics.json")
    return 0


def _evaluate_run(run: Path, cfg: dict[str, Any], state: dict[str, Any], span) -> int:
    """The body of ``hnnkit evaluate`` once the run is locked and its files checked."""
    from .evaluate import evaluate_corrected, loss_metrics
    from .experiments.protocols import MEASURED_ENERGY
    from .files import atomic_write_json
    from .report import rollout_panels

    data = _dataset_from_config(cfg)
    system = _system_from_config(cfg)
    model = model_from_config(cfg, data.dim, system)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise DataFileError(
            f"{run / 'checkpoint.pt'} does not match the model in config.json ({exc})"
        ) from exc
    try:
        if "data" in cfg:  # a file of trajectories, no true system: scored against the file
            corr, rollouts = _recorded_rollouts(cfg["model"], model, data)
        else:
            corr, rollouts = evaluate_corrected(
                system,
                {cfg["model"]: model},
                data,
                t_span=span,
                energy=MEASURED_ENERGY.get(cfg["system"]),
            )
    except RuntimeError as exc:
        if "max_steps" not in str(exc):
            raise
        raise HnnkitValueError(
            f"the rollouts over --t-span {span[0]:g} {span[1]:g} did not finish ({exc}); pass a "
            "shorter --t-span"
        ) from exc
    metrics = loss_metrics(model, data, through_step=bool(cfg.get("through_step")))
    metrics.update(
        {
            k: {kk: vv for kk, vv in v.items() if kk != "values"}
            for k, v in corr[cfg["model"]].items()
        }
    )
    # Keep what training recorded (train_seconds, the kan section) and refresh the rest.
    previous: dict[str, Any] = {}
    try:
        loaded = json.loads((run / "metrics.json").read_text())
        previous = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass  # missing or corrupt: rewritten from scratch
    atomic_write_json(run / "metrics.json", {**previous, **metrics})
    orbit = cfg["system"] in ("two-body", "three-body")
    rollout_panels(rollouts, run / "rollouts", title=f"{cfg['system']} {cfg['model']}", orbit=orbit)
    for k, v in metrics.items():
        if k == "diverged":
            if v["count"]:
                print(
                    f"{'diverged':<14} {v['count']} of {v['of']} rollouts blew up (the first "
                    f"by t={v['first_time']:g}); their errors count as inf"
                )
            continue
        mean, sem = (math.nan if v[key] is None else v[key] for key in ("mean", "sem"))
        print(f"{k:<14} {mean:.4e} ± {sem:.2e}")
    if "data" in cfg:
        print(
            "no true system for a --data run: rollouts start from the held-out trajectories' "
            "first states and are scored against their recorded states"
        )
    print(f"wrote {run}/metrics.json and rollouts.png/svg")
    return 0


def _kan_run_file(run: Path) -> Path:
    """What ``hnnkit symbolic`` reads: a KAN run directory (its ``checkpoint.pt``, or an older
    run's ``kan_run.pt``) or a file, or a helpful error."""
    from .symbolic import RUN_FILE
    from .train import CHECKPOINT

    train_hint = f"train one with `hnnkit train --system spring --model kan --out {run}`"
    if run.is_file():
        return run
    if not run.is_dir():
        raise DataFileError(f"{run} does not exist; {train_hint}")
    cfg_path = run / "config.json"
    if cfg_path.is_file():
        cfg = _read_run_config(cfg_path, required=())
        model, system = cfg.get("model"), cfg.get("system", "spring")
        if model is not None and model != "kan":
            raise DataFileError(
                f"{run} is a --model {model} run; symbolic extraction needs a KAN energy: train "
                f"one with `hnnkit train --system {system} --model kan --out {run}-kan`"
            )
    if (run / RUN_FILE).is_file() or (run / CHECKPOINT).is_file():
        return run
    nested = sorted({p.parent for name in (RUN_FILE, CHECKPOINT) for p in run.glob(f"*/{name}")})
    if nested:
        raise DataFileError(
            f"{run} holds no KAN run, but these subdirectories do: "
            f"{', '.join(str(p) for p in nested)}; pass one of them"
        )
    raise DataFileError(f"{run} holds no KAN run ({CHECKPOINT} or {RUN_FILE}); {train_hint}")


def cmd_symbolic(args: argparse.Namespace) -> int:
    from .files import atomic_write_json
    from .symbolic import (
        DEFAULT_LIBRARY,
        POLYNOMIAL_LIBRARY,
        QUADRATIC_LIBRARY,
        SymbolicDissipative,
        extract_from_run,
    )

    path = _kan_run_file(Path(args.run_dir))
    library = {
        "polynomial": POLYNOMIAL_LIBRARY,
        "quadratic": QUADRATIC_LIBRARY,
    }.get(args.library, DEFAULT_LIBRARY)
    found = extract_from_run(path, library=library, denoise=args.denoise)
    if args.json:
        atomic_write_json(args.json, found.to_dict())
    dissipative = isinstance(found, SymbolicDissipative)
    sym = found.hamiltonian if dissipative else found
    info = sym.to_dict()
    print(found)
    if dissipative:
        print(f"raw refit: D = {sympy_sstr(found.expr)}  ({found.form} form)")
        losses = found.losses
        print(
            f"loss of the closed-form field J∇H + f_D: train {losses['train']:.3e}  "
            f"test {losses['test']:.3e}"
        )
    print(f"raw refit: H = {info['formula_raw']}")
    print("coefficients (raw; '1' is the constant, which has no effect on the dynamics):")
    for term, value in info["coefficients"].items():
        print(f"  {term:<16} {value: .12g}")
    print(f"LaTeX: {sym.latex()}")
    losses = info["losses"]
    against = " (against the targets minus the learned friction)" if dissipative else ""
    print(
        f"HNN loss of H{against}: train {losses['nice_train']:.3e}  test {losses['nice_test']:.3e}"
    )
    _print_trust(found)
    print("edge fits (layer, input, output):")
    for e in sym.edges:
        print(f"  ({e.layer}, {e.i}, {e.j})  {e.name:<8} R² = {e.r2:.8f}  {e.expr}")
    if args.python:
        print()
        print(sym.python_source(), end="")
    return 0


def _print_trust(found: Any) -> None:
    """The formula's held-out loss next to the network's, a warning when it is worse beyond
    the noise, and each kept term's confidence (how much the held-out loss rises without it)."""
    losses, checks = found.losses, found.checks
    smoothing = checks.get("denoise", {})
    if smoothing.get("method", "none") != "none":
        print(
            f"states smoothed before the refit ({smoothing['method']}; their scatter about the "
            f"smoothed path, an estimate of the noise: {smoothing['noise_rms']:.3g})"
        )
    print(
        f"held-out loss: formula {losses['formula_heldout']:.3e}  "
        f"network {losses['network_heldout']:.3e}"
    )
    if found.failed:
        v = checks["versus_network"]
        print(
            "warning: the formula is worse than the network on held-out data by more than the "
            f"noise (log-likelihood ratio {v['log_ratio']:.3g} ± {v['log_ratio_se']:.2g} per "
            "trajectory): the library cannot express these data; this is the closest formula, "
            "not the system's. Try --library default, a wider KAN or more training.",
            file=sys.stderr,
        )
    print("terms (confidence: held-out loss rise without the term over the noise; > 1 kept):")
    for t in found.terms:
        print(f"  {t.part}  {t.name:<16} {t.coefficient: .12g}  confidence {t.confidence:.3g}")


def sympy_sstr(expr: Any) -> str:
    """Full-precision text of a SymPy expression."""
    import sympy

    return sympy.sstr(expr, full_prec=True)


def cmd_reproduce(args: argparse.Namespace) -> int:
    import functools

    from .experiments.reproduce import reproduce

    plugins = list(getattr(args, "plugins", None) or [])
    reproduce(
        args.out,
        tasks=args.tasks,
        profile=args.profile,
        seeds=args.seeds,
        device=args.device,
        force=args.force,
        quiet=args.quiet,
        protocol=args.protocol,
        workers=args.workers,
        models=args.models,
        # each worker process imports the plugins this one did
        worker_setup=functools.partial(load_plugins, plugins) if plugins else None,
    )
    return 0


def _float_list(flag: str, example: str):
    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{flag} takes comma-separated numbers like {example}, got {text!r}"
            ) from exc

    return parse


def cmd_symbolic_bench(args: argparse.Namespace) -> int:
    """``hnnkit symbolic-bench``: run (or resume) the recovery grid, then write OUT/table.md."""
    import dataclasses
    import shlex

    from .experiments import symbolic_bench as sb

    settings = sb.PROFILES["quick" if args.quick else "default"]
    if args.steps is not None:
        if args.steps < 1:
            raise HnnkitValueError(f"--steps must be >= 1 (L-BFGS steps per KAN), got {args.steps}")
        settings = dataclasses.replace(settings, steps=args.steps)
    quick = sb.QUICK_GRID if args.quick else None
    systems = args.systems or (quick["systems"] if quick else list(sb.SYSTEMS))
    noise = args.noise or (quick["noise"] if quick else sb.NOISE_LEVELS)
    seeds = args.seeds or (quick["seeds"] if quick else tuple(range(10)))
    if not args.report_only:
        sb.run_bench(args.out, systems, noise, seeds, settings, sindy=not args.no_sindy, log=print)
    command = (
        f"hnnkit symbolic-bench --systems {','.join(systems)} "
        f"--noise {','.join(f'{v:g}' for v in noise)} --seeds {','.join(map(str, seeds))}"
        + (" --quick" if args.quick else "")
        + (f" --steps {args.steps}" if args.steps is not None else "")
        + (" --no-sindy" if args.no_sindy else "")
        + f" --out {shlex.quote(str(args.out))}"
    )
    print(sb.write_report(args.out, command=command))
    print(f"wrote {Path(args.out) / 'table.md'}")
    if args.sindy_sweep:
        from .files import atomic_write_text
        from .report.symbolic_bench import bench_table

        rows = sb.sindy_sweep(systems, noise, seeds, settings, args.sindy_sweep)
        sweep = bench_table(rows)
        atomic_write_text(
            Path(args.out) / "sindy_sweep.md",
            f"# SINDy by STLSQ threshold\n\n```\n{command} --sindy-sweep "
            f"{','.join(f'{t:g}' for t in args.sindy_sweep)}\n```\n\n{sweep}",
        )
        print(sweep)
        print(f"wrote {Path(args.out) / 'sindy_sweep.md'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``hnnkit run EXPERIMENT.toml``: train and evaluate one experiment into OUT/<name or hash>."""
    from .experiments.reproduce import resolve_device
    from .experiments.run import run_experiment
    from .experiments.spec import Experiment, resolve_train

    exp = resolve_train(Experiment.from_toml(args.experiment))  # the hash of the settings used
    device = resolve_device(args.device)
    run_dir, metrics = run_experiment(exp, args.out, device=device, quiet=args.quiet)
    for key, cell in metrics.items():
        if isinstance(cell, dict) and "mean" in cell:
            mean, sem = (math.nan if cell[k] is None else cell[k] for k in ("mean", "sem"))
            print(f"{key:<14} {mean:.4e} ± {sem:.2e}")
    print(f"experiment {exp.config_hash()}: wrote {run_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``hnnkit bench GRID --out DIR``: run a grid of experiments and write its leaderboard."""
    import functools

    from .experiments.bench import bench

    plugins = list(getattr(args, "plugins", None) or [])
    summary = bench(
        args.grid,
        args.out,
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        rerun=args.rerun or (),
        quiet=args.quiet,
        # each worker imports the plugins this process did
        setup=functools.partial(load_plugins, plugins) if plugins else None,
    )
    return 1 if summary["failed"] else 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help where it has a default worth showing (not
    ``None``, not a flag's ``False``) and the help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or isinstance(action.default, list)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def _names(names: Any) -> str:
    return ", ".join(names)


def _by_data(names: Any) -> dict[str, list[str]]:
    """Registered model names grouped by the data they learn from."""
    from .models import get_model

    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(get_model(name).data, []).append(name)
    return groups


class _ModelChoices(list):
    """``train --model``'s choices: the phase-space models (listed in argparse's "invalid choice"
    message); a registered model of other data passes the parser, so that ``train`` refuses it
    with one line saying what trains it."""

    def __init__(self, trainable: Any, others: Any) -> None:
        super().__init__(trainable)
        self.others = frozenset(others)

    def __contains__(self, name: object) -> bool:
        return list.__contains__(self, name) or name in self.others


def build_parser() -> argparse.ArgumentParser:
    """The ``hnnkit`` parser; ``--model``'s choices are the models registered when it is built,
    and ``--system``'s and ``--tasks``' help lists the registered systems and tasks (the
    plugins' included: :func:`main` imports them first)."""
    from .experiments.grid import builtin_grids
    from .experiments.tasks import PROFILES, list_tasks
    from .integrate import SOLVERS
    from .models import list_models
    from .models.registry import DATA_KINDS, PHASE_SPACE
    from .systems import list_systems
    from .train import LOSSES

    p = argparse.ArgumentParser(
        prog="hnnkit",
        description="Hamiltonian neural networks: train, evaluate, reproduce, extract a formula.",
        epilog="`hnnkit COMMAND --help` lists a command's options, their defaults and choices.",
        formatter_class=_HelpFormatter,
    )
    _add_top_level_options(p)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "systems", help="list the registered physical systems and their Hamiltonians"
    )
    s.add_argument(
        "--full",
        action="store_true",
        help=f"print every Hamiltonian whole (default: shortened to {FORMULA_WIDTH} characters)",
    )
    s.set_defaults(func=cmd_systems)

    m = sub.add_parser(
        "models", help="list the registered models, their training defaults and descriptions"
    )
    m.set_defaults(func=cmd_models)

    t = sub.add_parser("train", help="train one model on one system")
    t.add_argument(
        "--system",
        default=None,
        metavar="NAME",
        help="the system to simulate: one of "
        f"{_names(n for n in list_systems() if n != 'custom')} (`hnnkit systems` describes "
        "them); real-pendulum (the measured recording); or custom with --hamiltonian. One of "
        "--system and --data is needed",
    )
    u = t.add_argument_group("your own system or data")
    u.add_argument(
        "--hamiltonian",
        default=None,
        metavar="FORMULA",
        help="--system custom only: H in q, p (one degree of freedom) or q1..qn, p1..pn, e.g. "
        '"p**2/2 + q**2/2 + q**4/4"',
    )
    u.add_argument(
        "--dof", type=int, default=None, help="--system custom: degrees of freedom n (default 1)"
    )
    u.add_argument(
        "--param",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="--system custom: a named constant of the formula, e.g. --param k=2 (repeatable)",
    )
    u.add_argument(
        "--energy-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="simulated systems: start states whose true energy lies in [LO, HI] (rays from the "
        "minimum of H, bisection on the radius)",
    )
    u.add_argument(
        "--data",
        default=None,
        metavar="FILE",
        help="train on your own trajectories: a .csv (columns trajectory, t, q1..qn, p1..pn, "
        "optional dq1..dqn, dp1..dpn) or an .npz written by Dataset.save; instead of --system",
    )
    u.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="fraction of whole trajectories held out (default: the system's; 0.2 for a CSV)",
    )
    trainable = list_models(data=PHASE_SPACE)
    others = [name for name in list_models() if name not in trainable]
    t.add_argument(
        "--model",
        choices=_ModelChoices(trainable, others),
        default="hnn",
        metavar="NAME",
        help=f"the model, one of {_names(trainable)} (default hnn; `hnnkit models` "
        "describes them): baseline, an MLP of the vector field; hnn, the Hamiltonian network; "
        "dhnn, an HNN plus a learned dissipation, for friction; kan, an HNN whose energy is a "
        "Kolmogorov–Arnold network; a --plugin may register more"
        + "".join(
            f"; not {_names(names)}: {DATA_KINDS[kind]}" for kind, names in _by_data(others).items()
        ),
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the data, the initialisation and the minibatches; the same seed gives the "
        "same run",
    )
    t.add_argument("--out", required=True, help="run directory (created; required)")
    t.add_argument(
        "--steps", type=int, default=None, help="default: the model's (see `hnnkit models`)"
    )
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument(
        "--optimizer",
        choices=["adam", "lbfgs"],
        default=None,
        help="default: the model's (see `hnnkit models`); lbfgs is full batch",
    )
    t.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    t.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="default: the model's (see `hnnkit models`)",
    )
    t.add_argument(
        "--hidden",
        type=_hidden,
        default=None,
        metavar="N,N",
        help="hidden layer sizes, e.g. 200,200 (default: the model's); for models that take them",
    )
    t.add_argument(
        "--activation",
        default=None,
        choices=["tanh", "relu", "softplus", "silu"],
        help="default: the model's; for models that take one",
    )
    t.add_argument(
        "--n-trajectories",
        type=int,
        default=None,
        help="simulated trajectories to generate (default: the system's, e.g. 50 for spring)",
    )
    t.add_argument(
        "--n-points",
        type=int,
        default=None,
        help="points per trajectory (default: the system's, e.g. 30 for spring)",
    )
    t.add_argument(
        "--noise-std",
        type=float,
        default=None,
        help="standard deviation of the Gaussian noise added to the simulated states (default: "
        "the system's, 0.1 for spring and pendulum as in the paper)",
    )
    t.add_argument(
        "--log-every",
        type=int,
        default=100,
        help="write train and test loss to OUT/log.csv every this many steps",
    )
    t.add_argument("--device", default="cpu", help="where to train: cpu, cuda or auto")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from its checkpoint (every setting must match the run's)",
    )
    t.add_argument(
        "--force",
        action="store_true",
        help="overwrite a run already in OUT; the old run is replaced only once the new one is "
        "complete",
    )
    t.add_argument(
        "--through-step",
        action="store_true",
        help="targets are forward differences (real-pendulum): train and score one RK4 step of "
        "the model over each point's sampling interval instead of its derivative",
    )
    t.add_argument(
        "--loss",
        default=None,
        metavar="NAME",
        help="the training loss, one of "
        f"{_names(LOSSES)} (default: the model's, see `hnnkit models`): derivative, the "
        "field against the target derivatives; through-step, see --through-step; rollout, "
        "k steps of an integrator (or a one-step map's own step) from each window of k+1 "
        "consecutive observed states",
    )
    t.add_argument(
        "--loss-option",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="an option of the loss (repeatable; default: the model's, then the loss's); "
        "rollout: k=STEPS (default 5), method=one of "
        f"{_names([*SOLVERS, 'model'])} (default: model for a one-step map, rk4 for a field), "
        "substeps=N per observed interval (fixed-step methods), rtol=, atol= (dopri5)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    k = t.add_argument_group("KAN options (--model kan only)")
    k.add_argument(
        "--kan-widths",
        type=_int_list("--kan-widths", "2,1,2"),
        default=None,
        help="node counts, inputs to outputs; the energy is the last output "
        "(default 2,1,2, the seed report's, whose output 0 is unused)",
    )
    k.add_argument("--grid", type=int, default=None, help="spline intervals per edge (default 5)")
    k.add_argument(
        "--l1",
        type=float,
        default=None,
        metavar="LAMBDA",
        help="L1 weight on the mean |activation| of the edges (default 0; the seed's is 5e-5)",
    )
    k.add_argument(
        "--restarts",
        type=int,
        default=None,
        metavar="N",
        help="train N initialisations for a quarter of the steps, keep the one with the lowest "
        "training objective and continue it (default 1); candidate r uses seed 1000*SEED + r",
    )
    k.add_argument(
        "--prune",
        action="store_true",
        default=None,
        help="after training, mask edges whose mean |activation| is below 0.01, and dead nodes",
    )
    k.add_argument(
        "--dissipative",
        action="store_true",
        default=None,
        help="train a dissipative HNN whose energy H and dissipation D are both KANs "
        "(rayleigh form; default widths 2,1,1); `hnnkit symbolic` then prints H and D",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics and figures for a trained run directory")
    e.add_argument("run_dir", help="a run directory written by `hnnkit train --out DIR`")
    e.add_argument(
        "--t-span",
        type=float,
        nargs=2,
        default=None,
        metavar=("START", "END"),
        help="rollout span (default: the system's, e.g. 0 20); END - START at most "
        f"{MAX_SPAN_FACTOR}× the default span's length",
    )
    e.set_defaults(func=cmd_evaluate)

    y = sub.add_parser(
        "symbolic", help="print the closed-form H(q, p) extracted from a trained KAN run"
    )
    y.add_argument(
        "run_dir",
        help="a run directory of `hnnkit train --model kan [--dissipative] --out DIR` (a "
        "dissipative run prints H and D), or a kan-spring model directory such as OUT/kan-hnn",
    )
    y.add_argument(
        "--library",
        choices=["default", "polynomial", "quadratic"],
        default="default",
        help="edge functions to try: default (polynomials, sin, cos, exp, log, sqrt, tanh, 1/x), "
        "polynomial (x, x², x³, x⁴) or quadratic (x, x²; keeps a dissipation D clean on noisy "
        "data)",
    )
    y.add_argument(
        "--denoise",
        choices=["auto", "integrate", "savgol", "none"],
        default="auto",
        help="smooth noisy states along their trajectories before the refit: auto (integrate "
        "the derivatives where the states are noisy, then refine each trajectory's offset), "
        "integrate, savgol (states alone) or none (docs/kan.md, 'Noise')",
    )
    y.add_argument("--python", action="store_true", help="also print H as Python (torch) source")
    y.add_argument("--json", metavar="FILE", default=None, help="also write the result as JSON")
    y.set_defaults(func=cmd_symbolic)

    r = sub.add_parser(
        "reproduce",
        help="regenerate Table 1, the figures and report.html",
        description="Train and evaluate the paper's tasks and write OUT/results.json, "
        "OUT/table.md and OUT/report.html (a summary with one line per task at the top). "
        "Finished seeds and tasks are reused; a killed run continues where it stopped. The "
        "default profile is quick (all tasks in minutes on a laptop CPU).",
    )
    r.add_argument(
        "--tasks",
        default=None,
        metavar="A,B",
        help=f"comma-separated tasks, from: {_names(list_tasks())} (default: all of them)",
    )
    r.add_argument(
        "--profile",
        default="quick",
        help=f"one of {_names(PROFILES)}. smoke: seconds, checks the pipeline; quick: minutes, "
        "reduced data and steps; paper: the paper's settings",
    )
    r.add_argument(
        "--protocol",
        default="corrected",
        help="corrected or original: the protocol of the headline metrics; table.md and report.html show both beside "
        "the paper",
    )
    r.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per task (default: 1 for smoke and quick, 3 for paper)",
    )
    r.add_argument(
        "--models",
        default=None,
        metavar="A,B",
        help="registered phase-space models to add to every task trained on phase-space data "
        f"(from: {_names(list_models(data=PHASE_SPACE))}); they join the "
        "long-horizon table and the figures, Table 1 keeps the baseline and the HNN. A model a "
        "task cannot take (an LNN on measured data) is left out with the reason",
    )
    r.add_argument("--device", default="cpu", help="where to train: cpu, cuda or auto")
    r.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="directory for results.json, table.md, report.html and one folder per task "
        "(TASK/seedN: checkpoints and metrics; TASK/figures); created if missing, and what it "
        "already holds is reused",
    )
    r.add_argument(
        "--force", action="store_true", help="recompute tasks already in OUT/results.json"
    )
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the tasks in N processes, each with one torch thread (default: one per CPU "
        "core and at most one per task on the CPU, 1 on a GPU; 1: one task after the other in "
        "this process). The numbers and the order of results.json and table.md do not depend "
        "on N",
    )
    r.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars in a terminal and no progress lines in a log file (the table and "
        "the final summary are still printed)",
    )
    r.set_defaults(func=cmd_reproduce)

    from .experiments.symbolic_bench import NOISE_LEVELS, SYSTEMS

    b = sub.add_parser(
        "symbolic-bench",
        help="success rates of formula recovery (KAN-HNN vs SINDy) over systems, noise, seeds",
        description="Run the symbolic-recovery grid (systems x noise levels x seeds): for each "
        "cell, train a KAN-HNN and extract H (and D), fit SINDy on the same data and library, and "
        "judge both (exactly the true terms, every coefficient within 1%%). Each cell is written "
        "to OUT/cells/SYSTEM/noise-L/seed-S.json; a rerun skips finished cells. OUT/table.md "
        "tabulates every cell in OUT.",
    )
    b.add_argument(
        "--systems",
        type=lambda t: tuple(t.split(",")),
        default=None,
        metavar="A,B",
        help=f"comma-separated, from: {_names(SYSTEMS)} (default: all)",
    )
    b.add_argument(
        "--noise",
        type=_float_list("--noise", "0,0.01"),
        default=None,
        metavar="L,M",
        help="noise levels, fractions of each state's std, from: "
        f"{','.join(f'{v:g}' for v in NOISE_LEVELS)} (default: all)",
    )
    b.add_argument(
        "--seeds",
        type=_int_list("--seeds", "0,1,2"),
        default=None,
        metavar="S,T",
        help="comma-separated seeds (default: 0,...,9; cells run seed by seed)",
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help="a minute's check: spring and damped spring at noise 0 and 5%%, seed 0, short "
        "training (options given explicitly override the grid)",
    )
    b.add_argument(
        "--steps", type=int, default=None, help="L-BFGS steps per KAN (default 20; --quick 10)"
    )
    b.add_argument("--no-sindy", action="store_true", help="skip the SINDy baseline")
    b.add_argument(
        "--sindy-sweep",
        type=_float_list("--sindy-sweep", "0.02,0.05,0.2"),
        default=None,
        metavar="T,U",
        help="also fit SINDy alone at each of these STLSQ thresholds on the grid's data (seconds) "
        "and write OUT/sindy_sweep.md",
    )
    b.add_argument(
        "--report-only", action="store_true", help="only rewrite OUT/table.md from OUT's cells"
    )
    b.add_argument("--out", default="symbolic-bench", metavar="DIR", help="output directory")
    b.set_defaults(func=cmd_symbolic_bench)

    x = sub.add_parser(
        "run", help="train and evaluate one experiment described by a TOML file (data, model, …)"
    )
    x.add_argument("experiment", help="EXPERIMENT.toml: tables [data], [model], [train], [eval]")
    x.add_argument(
        "--out",
        default="runs",
        help="parent directory; the run goes to OUT/<name or config hash> (default runs); a "
        "finished run of the same experiment there is reused",
    )
    x.add_argument("--device", default="cpu", help="where to train: cpu, cuda or auto")
    x.add_argument("--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "bench",
        help="run a grid of systems × models × seeds and write its leaderboard",
        description="Run every cell (one experiment) of a grid and write OUT/leaderboard.md and "
        "OUT/leaderboard.html: per system and metric each model's mean over seeds, 95% "
        "confidence interval and rank, error-against-time and data-efficiency figures, and the "
        "failed cells. Finished cells are reused, so a killed sweep continues where it stopped. "
        "Grid format and Ray clusters: docs/bench.md.",
    )
    b.add_argument(
        "grid",
        help="GRID.toml, or a built-in grid: " + _names(builtin_grids()),
    )
    b.add_argument(
        "--out",
        default="bench",
        metavar="DIR",
        help="directory of the sweep (cells/HASH.json, leaderboard.md, leaderboard.html, "
        "figures/); created if missing, and the finished cells it holds are reused",
    )
    b.add_argument(
        "--engine",
        default="local",
        choices=("local", "ray"),
        help="local: a pool of processes on this machine (nothing to install); ray: Ray tasks, "
        "on this machine or a cluster (pip install 'hnnkit[ray]'). Both give the same numbers",
    )
    b.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="cells run at once, one torch thread each (default: one per CPU core, at most one "
        "per cell to run; 1: one after the other in this process); with --engine ray and no "
        "--address, the CPUs of the Ray instance started here",
    )
    b.add_argument(
        "--address",
        default=None,
        metavar="A",
        help="with --engine ray: the cluster to join, auto (the one this machine belongs to) or "
        "HOST:PORT of the head node (default: start Ray on this machine)",
    )
    b.add_argument(
        "--rerun",
        action="append",
        metavar="CELL",
        help="redo this cell even if finished: its config hash or a unique prefix (see "
        "OUT/cells.csv); may be repeated",
    )
    b.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    b.set_defaults(func=cmd_bench)
    for command in sub.choices.values():  # every subcommand shows its defaults
        command.formatter_class = _HelpFormatter
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hnnkit`` console script."""
    from .files import describe_os_error

    argv = sys.argv[1:] if argv is None else list(argv)
    command, plugins = _requested_plugins(argv)
    try:
        loaded = load_plugins(plugins)
    except PluginImportError as exc:
        print(f"hnnkit{'' if command is None else ' ' + command}: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    args.plugins = loaded
    try:
        _set_threads(args.threads)
        return args.func(args)
    except (HnnkitValueError, UnknownNameError, DataFileError, NonFiniteLossError) as exc:
        print(f"hnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only directory, a full disk, a path under a file
        print(f"hnnkit {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2


def _set_threads(threads: int) -> None:
    """``--threads``: between 1 and :data:`MAX_THREADS_PER_CPU` per CPU core."""
    import torch

    most = MAX_THREADS_PER_CPU * (os.cpu_count() or 1)
    if not 1 <= threads <= most:
        raise HnnkitValueError(
            f"--threads must be between 1 and {most} ({MAX_THREADS_PER_CPU} per CPU core), got "
            f"{threads}"
        )
    # The paper's networks are small (200 units): intra-op threading costs more than it gains
    # and collapses under contention, so one thread is the default; raise it with --threads.
    torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
