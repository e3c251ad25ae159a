"""The two status vocabularies, typed, and the one mapping between them.

* :class:`Status` says why a *solver* stopped (every backend maps its native statuses to it
  through its own status table, see :mod:`verify.backends.base`).
* :class:`Outcome` says how a *task* ended (the ``status`` of a result's JSON).
* :class:`ExplanationStatus` is the ``status`` of an explanation
  (:func:`verify.explain`): it says how far the explanation is proven, not whether an
  example exists, so it has words of its own (``minimal``, ``unproven``; ``minimum`` for the
  smallest-explanation search); time limits and interruptions use the :class:`Outcome` words.

Both are :class:`enum.StrEnum`: a member *is* its string (``Status.OPTIMAL == "optimal"``,
``json.dumps(Outcome.VERIFIED) == '"verified"'``), so results and their JSON read as before.
A solver's word reaches a task result only through :func:`outcome_of` (table
:data:`OUTCOME_OF_STATUS`). This module imports nothing from the package: any layer may use it.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Why the solver stopped. The same words for every backend."""

    OPTIMAL = "optimal"          # proven optimal (within the relative gap asked for)
    INFEASIBLE = "infeasible"    # proven: no feasible point
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"    # stopped by the time limit; x/objective are the incumbent if any
    CUTOFF = "cutoff"            # proven: no solution better than the cutoff given
    INTERRUPTED = "interrupted"  # stopped on request (Ctrl-C, SIGTERM; see verify.interrupts)
    #                              or by a node/solution limit; x/objective/bound as for TIME_LIMIT
    ERROR = "error"
    #: Only in backends' status tables, never in a result: the solver could not tell
    #: infeasible from unbounded, and :meth:`verify.backends.Backend.solve` settles it.
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"


class Outcome(StrEnum):
    """How an exact task ended (the ``status`` of its result)."""

    OPTIMAL = "optimal"          # proven minimal (within the relative gap asked for)
    INFEASIBLE = "infeasible"    # proven: no adversarial example exists in the region
    TIME_LIMIT = "time_limit"    # stopped by the time limit: best example found + proven bound
    VERIFIED = "verified"        # certify: proven robust
    COUNTEREXAMPLE = "counterexample"
    UNKNOWN = "unknown"          # undecided (certify: within the time limit; a solver's proof
    #                              the task could not use, e.g. an example Keras rejected)
    #: stopped on request (Ctrl-C, SIGTERM: :mod:`verify.interrupts`): as ``time_limit``, the
    #: best example found and the proven bound (certify: undecided)
    INTERRUPTED = "interrupted"
    ERROR = "error"              # the solver failed (or answered something meaningless here)


class ExplanationStatus(StrEnum):
    """How far an explanation (:func:`verify.explain`) is proven."""

    MINIMAL = "minimal"          # subset-minimal: every kept pixel has a confirmed witness
    UNPROVEN = "unproven"        # sound, but some kept pixel has no confirmed witness
    TIME_LIMIT = "time_limit"    # stopped by the time limit (still sound)
    INTERRUPTED = "interrupted"  # stopped on request (Ctrl-C, SIGTERM; still sound)
    MINIMUM = "minimum"          # ``minimum=True``: proven a smallest sound explanation


#: The task outcome a solver status gives when the task takes the solver's word for it.
#: ``cutoff`` is a proof that nothing better than the known answer exists (infeasible below
#: it); an unbounded minimal distance cannot happen for a well-built query, so it is an error.
OUTCOME_OF_STATUS: dict[Status, Outcome] = {
    Status.OPTIMAL: Outcome.OPTIMAL,
    Status.INFEASIBLE: Outcome.INFEASIBLE,
    Status.CUTOFF: Outcome.INFEASIBLE,
    Status.UNBOUNDED: Outcome.ERROR,
    Status.TIME_LIMIT: Outcome.TIME_LIMIT,
    Status.INTERRUPTED: Outcome.INTERRUPTED,
    Status.ERROR: Outcome.ERROR,
    Status.INFEASIBLE_OR_UNBOUNDED: Outcome.ERROR,
}


def outcome_of(status: str, settled: bool = True) -> Outcome:
    """The :class:`Outcome` of solver ``status`` (:data:`OUTCOME_OF_STATUS`).

    ``settled=False``: the task could not use the solver's answer as a proof (its example
    failed the Keras check, or a gap remained): a proof (``optimal``/``infeasible``) then
    becomes ``unknown``; time limits, interruptions and errors keep their word. An unknown
    solver word is an :attr:`Outcome.ERROR`.
    """
    try:
        outcome = OUTCOME_OF_STATUS[Status(status)]
    except ValueError:
        return Outcome.ERROR
    if not settled and outcome in (Outcome.OPTIMAL, Outcome.INFEASIBLE):
        return Outcome.UNKNOWN
    return outcome
