import Q35.Basic
import Q35.Arith
import Q35.Codes
import Q35.Error
import Q35.F16
import Q35.Pair
import Q35.Block
import Q35.Length
import Q35.Row
import Q35.Matmul
import Q35.GroupCode
import Q35.Compact
import Q35.Perm
import Q35.A8

/-!
# q35: invariants of the 3.5-bit weight format, stated in core Lean 4

Each file below states SPEC.md facts over `Nat`/`Int` and proves them with core tactics only. The proofs
have not been compiled (no Lean toolchain installs on the project's machines; `make verify` runs
`lake build` wherever one is on PATH). Every theorem is checked by a mirror in `tests/formal/test_mirror_*.py`
that evaluates the statement as written here (tests/formal/lean_py.py) and runs it against pyref and the Fortran
kernels; `tests/formal/lean_pins.json` holds the reviewed text of every declaration, so any change here fails CI
until the mirror is reviewed and re-pinned (`python tests/formal/lean_pins.py --repin`).
-/
