"""Exceptions with one-line messages meant for the user (the CLI prints them and exits 2)."""


class FpsolverError(Exception):
    """Base class: the message is one line a user can act on."""

    exit_code = 1


class CaseError(FpsolverError, ValueError):
    """A case file (or case dictionary) is invalid. The message names the key."""

    exit_code = 2

    def __init__(self, key: str, why: str):
        self.key = key
        self.why = why
        super().__init__(f"{key}: {why}" if key else why)


class InputError(FpsolverError, ValueError):
    """A result file (.npz) or data file (.npy) given on the command line is unusable."""

    exit_code = 2


class SolverError(FpsolverError, RuntimeError):
    """A solve failed for good (e.g. Newton did not converge even after step halving)."""

    exit_code = 3
