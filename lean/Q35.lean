import Q35.Basic
import Q35.Codes
import Q35.Error
import Q35.Pair
import Q35.Block
import Q35.Length
import Q35.Matmul
import Q35.GroupCode

/-!
# q35: machine-checked invariants of the 3.5-bit weight format

Each file below states SPEC.md facts over `Nat`/`Int` and proves them with core tactics only.
Every theorem is mirrored by a test in `tests/test_mirror_*.py` that checks the same statement
against `pyref` (and the Fortran kernels through `bridge`); `tests/test_lean_meta.py` enforces it.
-/
