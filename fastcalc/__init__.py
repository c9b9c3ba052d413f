"""fastcalc: a loaded policy set compiled once into a flat program, run over columnar batches.

    from ecorules.fastcalc import compile_program
    program = compile_program(policies, domain="enterprise")
    result = program.score(table, as_of=date(2012, 4, 14), threads=2)

The program is generic: a new or edited policy file needs no new Cython code. Where to read:

* ``_opcodes.py``: the instruction set (the kernel's opcode table);
* ``_rule_compiler.py``: how the language maps onto it, rule by rule; ``_compiler.py``: the
  whole policy set compiled and assembled; ``_compiled.py``: the resulting program as data;
* ``_validate.py``: the batch validation (kinds in ``_validate_numbers.py`` and
  ``_validate_coded.py``, shared helpers in ``_validate_common.py``);
* ``_program.py``: ``Program.score``; ``_binding.py``: patching and binding a batch;
  ``_results.py``: ``ScoreResult`` and the roll-ups.
"""

from ecorules.rules import _uscc

from ._compiled import FindingSlot, RuleSlot, SanctionSlot
from ._kernel import uscc_codes
from ._program import Program, compile_program
from ._results import PayerTotal, ScoreResult

_uscc.use_kernel_codes(uscc_codes)  # rules/ checks USCCs with the kernel from now on

__all__ = ["FindingSlot", "PayerTotal", "Program", "RuleSlot", "SanctionSlot", "ScoreResult", "compile_program"]
