"""The race of solver runs (verify.backends.race): the first proof wins, the others are
stopped and joined before the call returns; a stop request stops every entrant."""
from __future__ import annotations

import threading

from verify import interrupts
from verify.backends import SolveOptions, Status, get_backend
from verify.backends.base import ProblemRun
from verify.backends.race import Entrant, race
from verify.problem import INF, ProblemBuilder


class Waiter:
    """An entrant that runs until it is stopped (then answers ``interrupted``), or answers
    ``answer`` as soon as ``go`` is set."""

    def __init__(self, name: str, answer: Status = Status.INTERRUPTED):
        self.name, self.answer = name, answer
        self.stopped, self.go = threading.Event(), threading.Event()
        self.stops = 0

    def solve(self):
        from verify.backends import SolveResult

        while not self.stopped.is_set():
            if self.go.wait(0.01):
                return SolveResult(self.answer, self.name)
        return SolveResult(Status.INTERRUPTED, self.name)

    def stop(self) -> None:
        self.stops += 1
        self.stopped.set()

    def entrant(self) -> Entrant:
        return Entrant(self.name, self.solve, self.stop)


def test_the_first_proof_wins_and_the_loser_is_stopped_and_joined():
    winner, loser = Waiter("winner", Status.INFEASIBLE), Waiter("loser")
    winner.go.set()
    finished = race([loser.entrant(), winner.entrant()], time_limit=60)
    assert [(i, r.status) for i, r in finished] == [(1, Status.INFEASIBLE), (0, Status.INTERRUPTED)]
    assert loser.stops >= 1 and winner.stops == 0


def test_an_undecided_answer_does_not_end_the_race():
    early, late = Waiter("early", Status.TIME_LIMIT), Waiter("late", Status.OPTIMAL)
    early.go.set()
    threading.Timer(0.2, late.go.set).start()
    finished = race([early.entrant(), late.entrant()], time_limit=60)
    assert [r.status for _, r in finished] == [Status.TIME_LIMIT, Status.OPTIMAL]


def test_entrants_past_the_time_limit_are_stopped():
    a, b = Waiter("a"), Waiter("b")
    finished = race([a.entrant(), b.entrant()], time_limit=0.2)
    assert sorted(i for i, _ in finished) == [0, 1] and a.stops >= 1 and b.stops >= 1


def test_a_stop_request_stops_every_entrant():
    a, b = Waiter("a"), Waiter("b")
    with interrupts.scope():
        threading.Timer(0.2, interrupts.request_stop).start()
        finished = race([a.entrant(), b.entrant()], time_limit=None)
    assert {r.status for _, r in finished} == {Status.INTERRUPTED}
    assert a.stops >= 1 and b.stops >= 1


def test_an_entrant_that_raises_answers_error():
    def boom():
        raise RuntimeError("solver crashed")

    other = Waiter("other", Status.OPTIMAL)
    other.go.set()
    finished = dict(race([Entrant("boom", boom, lambda: None), other.entrant()], time_limit=60))
    assert finished[0].status == Status.ERROR and "solver crashed" in finished[0].message
    assert finished[1].status == Status.OPTIMAL


def knapsack():
    """max 10a + 13b + 7c + 8d with weights 3, 4, 2, 3 and capacity 7: 23 (a and b)."""
    b = ProblemBuilder("knapsack")
    b.add_vars("item", 4, lb=0, ub=1, integer=True, cost=[-10.0, -13.0, -7.0, -8.0])
    b.add_rows([0, 0, 0, 0], [0, 1, 2, 3], [3, 4, 2, 3], -INF, 7)
    return b.build()


def test_problem_runs_race_on_highs_and_agree():
    highs = get_backend("highs")
    runs = [ProblemRun(highs, knapsack(), SolveOptions(threads=1)),
            ProblemRun(highs, knapsack(), SolveOptions(threads=1, presolve=False))]
    finished = race([Entrant(str(i), r.solve, r.stop) for i, r in enumerate(runs)], 30)
    decided = [r for _, r in finished if r.status == Status.OPTIMAL]
    assert decided and abs(decided[0].objective + 23.0) < 1e-6


def test_a_problem_run_stopped_before_it_starts_does_not_start():
    run = ProblemRun(get_backend("highs"), knapsack(), SolveOptions())
    run.stop()
    assert run.solve().status == Status.INTERRUPTED
