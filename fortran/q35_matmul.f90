! q35 fused dequant-matmul kernels (SPEC §5), called from Python through f2py (bridge/).
! Same layout conventions as q35_kernels.f90: x[B, K] is x(k, b), y[B, N] is y(n, b).
module q35_matmul
  use, intrinsic :: iso_fortran_env, only: real32, int8, int32
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_kernels, only: sizes_ok, group_blocks, params_ok
  implicit none
  private
  public :: q35_gemv, q35_gemm

contains

  ! y = W_hat x for one input vector: per group, z*sum(x) + s*sum(x*L) (SPEC §5).
  subroutine q35_gemv(x, packed, scales, zeros, gs, y, info, k, p, n, ng)
    integer(int32), intent(in) :: k, p, n, ng, gs
    real(real32), intent(in) :: x(k)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: y(n)
    integer(int32), intent(out) :: info
    call q35_gemm(x, packed, scales, zeros, gs, y, info, k, 1, p, n, ng)
  end subroutine q35_gemv

  ! y(:, c) = W_hat x(:, c) for a small batch; each block is decoded once for all batch columns.
  subroutine q35_gemm(x, packed, scales, zeros, gs, y, info, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs
    real(real32), intent(in) :: x(k, nb)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: y(n, nb)
    integer(int32), intent(out) :: info
    real(real32) :: sx(ng, nb), acc(nb), lat(weights_per_block)
    integer(int32) :: row, j, b, b0, b1, c0, c, kk
    y = 0.0_real32
    info = 1
    if (.not. sizes_ok(k, p, gs, ng) .or. nb < 1) return
    info = 2
    if (.not. params_ok(scales, zeros) .or. .not. all(ieee_is_finite(x))) return
    info = 0
    ! The zero-point term needs sum(x) per group; it depends on x only, so compute it once.
    do c = 1, nb
      do j = 1, ng
        sx(j, c) = sum(x((j - 1) * gs + 1:min(j * gs, k), c))
      end do
    end do
    do row = 1, n
      do j = 1, ng
        acc = 0.0_real32
        call group_blocks(j, gs, k, b0, b1)
        do b = b0, b1
          call lattice_codes_of_block(packed(b * block_bytes + 1:(b + 1) * block_bytes, row), lat)
          c0 = b * weights_per_block
          kk = min(weights_per_block, k - c0)
          do c = 1, nb
            acc(c) = acc(c) + sum(x(c0 + 1:c0 + kk, c) * lat(1:kk))
          end do
        end do
        y(row, :) = y(row, :) + zeros(j, row) * sx(j, :) + scales(j, row) * acc
      end do
    end do
  end subroutine q35_gemm

end module q35_matmul
