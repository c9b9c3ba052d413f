"""fastcalc: a loaded policy set compiled once into a flat program, run over columnar batches.

    from ecorules.fastcalc import compile_program
    program = compile_program(policies, domain="enterprise")
    result = program.score(table, as_of=date(2012, 4, 14), threads=2)

The program is generic: a new or edited policy file needs no new Cython code (see
``_opcodes.py`` for the instruction set, ``_compiler.py`` for how the language maps onto it,
``_validate.py`` for the batch validation, ``_program.py`` for binding and results).
"""

from ._compiled import FindingSlot, RuleSlot, SanctionSlot
from ._program import Program, compile_program
from ._results import PayerTotal, ScoreResult

__all__ = ["FindingSlot", "PayerTotal", "Program", "RuleSlot", "SanctionSlot", "ScoreResult", "compile_program"]
