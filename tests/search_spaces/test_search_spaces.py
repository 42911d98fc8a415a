"""Search spaces: 500 samples of the full space are admissible configs, branch parameter names
never collide, the paper's defaults round-trip as starting points, sensitivity grids stay admissible."""

import optuna
import pytest

from omasgan.config import DIVERGENCES, default_config
from omasgan.errors import ConfigError
from omasgan.search_spaces import (
    SENSITIVITY_PARAMS,
    build_space,
    paper_point,
    points_to_evaluate,
    resolve_params,
    seed_list,
    sensitivity_grid,
)
from omasgan.trainables.trial import trial_config

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(space, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    samples = []
    for _ in range(n):
        trial = study.ask()
        constants = space(trial)
        samples.append({**trial.params, **constants})
        study.tell(trial, 0.0)
    return samples


def test_500_samples_of_the_full_space_are_admissible_configs():
    base = default_config("synthetic").to_dict()
    samples = _sample(build_space("full", with_optimizer=True, with_batch=True), 500)
    seen = set()
    for params in samples:
        config = trial_config(base, params)  # validates: raises on any inadmissible value
        t3 = config.task3
        assert 0.0 <= t3.alpha + t3.delta <= 1.0 + 1e-12
        assert t3.gamma >= t3.alpha + t3.delta - 1.0 - 1e-12
        assert 0.0 <= config.j.zeta <= 1.0 and config.task2.mu > 0 and config.task2.nu > 0
        seen.add(config.divergence.name)
    assert seen == set(DIVERGENCES)


def test_branch_parameters_never_collide():
    # one Optuna study across all branches raises if a name is reused with another distribution
    distributions: dict[str, object] = {}
    for params in _sample(build_space("full"), 300, seed=1):
        branch = params["divergence.name"]
        if branch != "klwgan":
            assert "divergence.klwgan_tau" not in params
        if branch != "wasserstein":
            assert "divergence.gp_weight" not in params
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(100):
        trial = study.ask()
        build_space("full")(trial)
        for name, distribution in trial.distributions.items():
            assert distributions.setdefault(name, distribution) == distribution, name
        study.tell(trial, 0.0)


@pytest.mark.parametrize("space", ["task2", "task3", "j"])
def test_stage_spaces_touch_only_their_stage(space):
    for params in _sample(build_space(space), 20):
        keys = {k.lstrip("_").split(".")[0] for k in resolve_params(params)}
        assert keys == {space}


def test_paper_defaults_round_trip_as_points_to_evaluate():
    for dataset in ("synthetic", "mnist", "digits"):
        point = points_to_evaluate(dataset)[0]
        config = trial_config(default_config(dataset).to_dict(), {**point, **resolve_params(point)})
        assert config.task3.alpha == pytest.approx(0.3) and config.task3.delta == pytest.approx(0.4)
        assert config.task3.gamma == pytest.approx(0.7) and config.j.zeta == 0.5
        assert config.task2.mu == default_config(dataset).task2.mu
    assert points_to_evaluate("mnist")[0]["divergence.klwgan_tau"] == 5.0
    # the point lies inside the space's ranges, so OptunaSearch accepts it
    study = optuna.create_study()
    study.enqueue_trial(paper_point(default_config("mnist"), "full"))
    trial = study.ask()
    build_space("full")(trial)
    assert trial.params["task2.mu"] == 0.2


@pytest.mark.parametrize("param", SENSITIVITY_PARAMS)
def test_sensitivity_grids_include_the_default_and_stay_admissible(param):
    base = default_config("mnist")
    grid = sensitivity_grid(param, base)
    section, name = param.split(".")
    assert getattr(getattr(base, section), name) in grid and len(grid) >= 4
    for value in grid:
        base.with_overrides({param: value})


def test_unknown_sensitivity_parameter_and_space():
    with pytest.raises(ConfigError, match="unknown sensitivity parameter 'task2.muu'; choose one of"):
        sensitivity_grid("task2.muu", default_config("digits"))
    with pytest.raises(ValueError, match="unknown search space 'task4'"):
        build_space("task4")
    assert seed_list(3) == [0, 1, 2]


# ---- issue 12: the variants --------------------------------------------------------------------

def test_full_space_samples_every_variant_branch_with_its_own_parameters():
    base = default_config("digits").to_dict()
    seen = {"boundaries": set(), "feature_space": set(), "refine_steps": set(), "score": set()}
    for params in _sample(build_space("full"), 300, seed=3):
        config = trial_config(base, params)  # validates every value
        t2, j = config.task2, config.j
        seen["boundaries"].add(t2.boundaries)
        seen["feature_space"].add(t2.feature_space)
        seen["refine_steps"].add(j.refine_steps)
        seen["score"].add(j.score)
        assert ("task2.diversity" in params) == (t2.boundaries > 1)
        assert ("task2.ae_epochs" in params) == (t2.feature_space == "autoencoder")
        assert ("j.refine_weight" in params) == ("j.refine_margin" in params) == (j.refine_steps > 0)
        assert ("j.fusion_scaling" in params) == (j.score == "fusion")
    assert seen == {"boundaries": {1, 2, 3}, "feature_space": {"pixel", "critic", "autoencoder"},
                    "refine_steps": {0, 1, 2}, "score": {"j", "critic", "fusion"}}


def test_variants_space_samples_only_the_switches():
    switches = {"task2.boundaries", "task2.feature_space", "j.refine_steps", "j.score"}
    for params in _sample(build_space("variants"), 40, seed=4):
        assert set(resolve_params(params)) == switches
    base = default_config("mnist")
    assert paper_point(base, "variants") == {"task2.boundaries": 1, "task2.feature_space": "pixel",
                                             "j.refine_steps": 0, "j.score": "j"}
    point = paper_point(base, "full")
    assert {k: point[k] for k in switches} == paper_point(base, "variants")
    on = base.with_overrides({"task2.boundaries": 2, "j.score": "fusion"})
    assert paper_point(on, "full")["task2.diversity"] == 1.0 and paper_point(on, "full")["j.fusion_scaling"] == "standard"
    # the paper point lies inside the variants space, so OptunaSearch accepts it
    study = optuna.create_study()
    study.enqueue_trial(paper_point(base, "variants"))
    trial = study.ask()
    build_space("variants")(trial)
    assert trial.params == paper_point(base, "variants")


def test_variants_is_a_search_choice_on_the_command_line():
    from omasgan.distributed.commands.studies import SPACES
    from omasgan.search_spaces import SPACE_NAMES

    assert "variants" in SPACES and set(SPACES) == set(SPACE_NAMES)


def test_branches_space_tunes_the_base_variant_and_keeps_its_switches():
    """``branches``: the base config's switches are never sampled; mu, nu, alpha..delta and exactly the
    branch parameters of the switches the base has on are, and every sample is an admissible config."""
    import pickle

    base = default_config("mnist").with_overrides({"task2.boundaries": 2, "task2.feature_space": "autoencoder",
                                                   "j.refine_steps": 2, "j.score": "critic"})
    space = build_space("branches", base=base)
    expected = {"task2.mu", "task2.nu", "task2.diversity", "task2.ae_epochs", "j.refine_weight",
                "j.refine_margin", "task3.alpha", "task3.beta", "task3.gamma", "task3.delta"}
    for params in _sample(space, 40, seed=5):
        overrides = resolve_params(params)
        assert set(overrides) == expected
        config = trial_config(base.to_dict(), overrides)
        assert (config.task2.boundaries, config.task2.feature_space, config.j.refine_steps, config.j.score) == (
            2, "autoencoder", 2, "critic")
    paper = {"task2.mu", "task2.nu", "task3.alpha", "task3.beta", "task3.gamma", "task3.delta"}
    for params in _sample(build_space("branches"), 10, seed=6):  # the paper's config: no branch is on
        assert set(resolve_params(params)) == paper
    fusion = base.with_overrides({"task2.boundaries": 1, "task2.feature_space": "pixel", "j.refine_steps": 0,
                                  "j.score": "fusion"})
    assert set(resolve_params(_sample(build_space("branches", base=fusion), 1)[0])) == paper | {"j.fusion_scaling"}
    # the base's own values are the search's first point, inside the space; the space pickles (Tune saves it)
    study = optuna.create_study()
    study.enqueue_trial(paper_point(base, "branches"))
    trial = study.ask()
    pickle.loads(pickle.dumps(space))(trial)
    assert trial.params == paper_point(base, "branches")
    again = trial_config(base.to_dict(), resolve_params(trial.params))
    assert again.task2 == base.task2 and again.j == base.j  # alpha..delta round-trip up to float rounding:
    assert again.task3.delta == pytest.approx(base.task3.delta) and again.task3.gamma == pytest.approx(base.task3.gamma)
