"""The windowed TPE sampler: exactly plain TPE up to its window, past it TPE fits on the 25 best and
the most recent trials only."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers import TPESampler
from optuna.trial import TrialState, create_trial

from omasgan.search_spaces import MIN_WINDOW, check_window
from omasgan.search_spaces.windowed_tpe import WindowedTPESampler, chosen_numbers, seen_trials

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}


def _finished(values, state=TrialState.COMPLETE):
    trials = []
    for number, value in enumerate(values):
        trial = create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                             params={"x": value % 1.0, "y": 0.5}, distributions=SPACE)
        trial.number = number
        trials.append(trial)
    return trials


def window_of(trials, window, maximize):
    """The trials TPE sees past ``window`` (what the sampler shows it while sampling one trial)."""
    return seen_trials(trials, chosen_numbers(trials, window, maximize))


@pytest.mark.parametrize("window", [1, 100, MIN_WINDOW - 1, -5, True, 300.0])
def test_a_window_below_250_is_refused_by_name(window):
    with pytest.raises(ValueError, match="0 \\(every trial\\) or an integer >= 250"):
        check_window(window)


def test_no_window_and_windows_from_250_are_accepted():
    assert check_window(0) == 0 and check_window(250) == 250 and WindowedTPESampler(window=600).window == 600


def test_up_to_the_window_every_trial_is_seen():
    trials = _finished([float(i) for i in range(250)])
    assert window_of(trials, 250, maximize=True) is trials
    assert window_of(trials, 0, maximize=True) is trials


def test_past_the_window_the_best_and_the_most_recent_trials_are_seen():
    # values peak in the middle, so the 25 best are neither the first nor the most recent trials
    values = [-(i - 150) ** 2 / 1e4 for i in range(400)]
    trials = _finished(values)
    running = create_trial(state=TrialState.RUNNING, params={}, distributions={})
    running.number = 400
    seen = window_of(trials + [running], 250, maximize=True)
    numbers = [t.number for t in seen]
    best = sorted(range(400), key=lambda i: values[i], reverse=True)[:25]
    assert set(best) <= set(numbers)
    assert numbers == sorted(numbers) and numbers[-1] == 400  # in trial order, the running trial kept
    finished = [n for n in numbers if n != 400]
    assert len(finished) == 250
    assert set(finished) - set(best) == set(range(400 - 225, 400))  # the rest: the most recent ones
    lowest = window_of(trials, 250, maximize=False)  # minimising: the 25 smallest values are kept
    assert set(sorted(range(400), key=lambda i: values[i])[:25]) <= {t.number for t in lowest}


def _objective(trial):
    return -((trial.suggest_float("x", 0, 1) - 0.3) ** 2) - (trial.suggest_float("y", 0, 1) - 0.7) ** 2


def test_a_study_within_the_window_samples_exactly_what_plain_tpe_samples():
    params = []
    for sampler in (TPESampler(seed=3, multivariate=True, n_startup_trials=5),
                    WindowedTPESampler(seed=3, multivariate=True, n_startup_trials=5, window=250)):
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(_objective, n_trials=30)
        params.append([t.params for t in study.trials])
    assert params[0] == params[1]


def test_past_the_window_tpe_fits_its_estimators_on_the_window(monkeypatch):
    fitted = []
    build = TPESampler._build_parzen_estimator

    def spy(self, study, search_space, trials, handle_below):
        fitted.append((handle_below, [t.number for t in trials]))
        return build(self, study, search_space, trials, handle_below)

    monkeypatch.setattr(TPESampler, "_build_parzen_estimator", spy)
    values = [-(i - 150) ** 2 / 1e4 for i in range(300)]
    study = optuna.create_study(direction="maximize",
                                sampler=WindowedTPESampler(seed=0, multivariate=True, window=250))
    study.add_trials(_finished(values))
    study.optimize(_objective, n_trials=1)
    below = next(n for h, n in fitted if h)
    above = next(n for h, n in fitted if not h)
    assert set(below) == set(sorted(range(300), key=lambda i: values[i], reverse=True)[:25])
    assert len(below) + len(above) == 250 and set(above) == set(range(50, 300)) - set(below)  # the best lie among the recent
    assert study.trials[-1].state == TrialState.COMPLETE
