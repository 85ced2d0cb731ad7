! q35 fused dequant-matmul kernels (SPEC §5), called from Python through f2py (bridge/).
! Same layout conventions as q35_kernels.f90: x[B, K] is x(k, b), y[B, N] is y(n, b).
!
! How the inner loop is made fast without leaving standard Fortran or IEEE semantics:
! * A 7-byte block (SPEC §4) is the 56-bit little-endian value V; its low 28 bits hold pairs 0-3 and its high
!   28 bits pairs 4-7, with the same layout in both halves: lattice code l of a half-word h (l = 1..8) is
!   iand(shiftr(h, half_shift(l)), half_mask(l)) (even lane q4 = bits 7p..7p+3; odd lane 2*q3 = bits 7p+3..7p+6
!   with bit 7p+3 masked off). That is one variable shift and one mask per code, which gfortran vectorises.
! * V is read as one 8-byte word with transfer() when the processor is little-endian with two's complement
!   integers (checked at run time, once per call; otherwise the byte-by-byte reader of q35_core's layout is used).
!   The last block of a row reads the 8 bytes that end at its last byte and shifts the extra byte out, so no read
!   ever leaves the row.
! * Sums are binary32, one group at a time as SPEC §5 describes (z*sum(x) + s*sum(x*L), then over groups), with
!   several independent elementwise accumulators (acc(16, 4)) so the additions vectorise and pipeline without
!   reassociation flags. No fused multiply-add (the build uses -ffp-contract=off); the SPEC §5 bound holds for
!   any summation order.
module q35_matmul
  use, intrinsic :: iso_fortran_env, only: real32, int8, int32, int64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_kernels, only: sizes_ok, params_ok
  implicit none
  private
  public :: q35_gemv, q35_gemm

  integer(int32), parameter :: half_shift(8) = [0, 3, 7, 10, 14, 17, 21, 24]
  integer(int32), parameter :: half_mask(8) = [15, 14, 15, 14, 15, 14, 15, 14]
  integer(int64), parameter :: mask28 = 2_int64**28 - 1_int64
  integer(int32), parameter :: wpb = weights_per_block, bpb = block_bytes
  integer(int32), parameter :: nacc = 4   ! independent accumulators (blocks in flight) for one batch column

contains

  ! True when transfer() of bytes gives the little-endian two's complement value the fast reader assumes.
  logical function fast_reader_ok()
    integer(int8), parameter :: probe(8) = [int(-127, int8), 2_int8, 3_int8, 4_int8, 5_int8, 6_int8, 7_int8, &
                                            int(-128, int8)]
    integer(int64) :: t
    t = transfer(probe, t)
    fast_reader_ok = iand(t, 2_int64**56 - 1) == 129_int64 + 2_int64 * 256 + 3_int64 * 256**2 &
                     + 4_int64 * 256**3 + 5_int64 * 256**4 + 6_int64 * 256**5 + 7_int64 * 256**6 &
                     .and. shiftr(t, 56) == 128_int64
  end function fast_reader_ok

  ! Block b (0-based) of a row as its 56-bit value, byte by byte (portable reader).
  pure integer(int64) function block_value(row, b) result(v)
    integer(int8), intent(in) :: row(:)
    integer(int32), intent(in) :: b
    integer(int32) :: i
    v = 0_int64
    do i = bpb, 1, -1
      v = v * 256_int64 + int(byte_value(row(b * bpb + i)), int64)
    end do
  end function block_value

  ! The 16 lattice codes of a block value, as reals.
  pure subroutine decode(v, lat)
    integer(int64), intent(in) :: v
    real(real32), intent(out) :: lat(wpb)
    integer(int32) :: h0, h1, l
    h0 = int(iand(v, mask28), int32)
    h1 = int(iand(shiftr(v, 28), mask28), int32)
    do l = 1, 8
      lat(l) = real(iand(shiftr(h0, half_shift(l)), half_mask(l)), real32)
      lat(l + 8) = real(iand(shiftr(h1, half_shift(l)), half_mask(l)), real32)
    end do
  end subroutine decode

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
    real(real32), allocatable :: xp(:, :), sx(:, :)
    integer(int32) :: nblk, c, j
    y = 0.0_real32
    info = 1
    if (.not. sizes_ok(k, p, gs, ng) .or. nb < 1) return
    info = 2
    if (.not. params_ok(scales, zeros) .or. .not. all(ieee_is_finite(x))) return
    info = 0
    nblk = p / bpb
    ! x padded with zeros to whole blocks (padding codes are 0, so the padded lanes add exact zeros).
    allocate(xp(nblk * wpb, nb), sx(ng, nb))
    xp = 0.0_real32
    xp(1:k, :) = x
    ! The zero-point term needs sum(x) per group; it depends on x only, so compute it once.
    do c = 1, nb
      do j = 1, ng
        sx(j, c) = sum(x((j - 1) * gs + 1:min(j * gs, k), c))
      end do
    end do
    if (nb == 1) then
      call gemv_rows(xp(:, 1), sx(:, 1), packed, scales, zeros, gs, y(:, 1), nblk, fast_reader_ok())
    else
      call gemm_rows(xp, sx, packed, scales, zeros, gs, y, nblk, fast_reader_ok())
    end if
  end subroutine q35_gemm

  ! One batch column: nacc blocks in flight, each with its own 16-lane accumulator.
  subroutine gemv_rows(xp, sx, packed, scales, zeros, gs, y, nblk, fast)
    real(real32), intent(in) :: xp(:), sx(:), scales(:, :), zeros(:, :)
    integer(int8), intent(in) :: packed(:, :)
    integer(int32), intent(in) :: gs, nblk
    real(real32), intent(inout) :: y(:)
    logical, intent(in) :: fast
    real(real32) :: acc(wpb, nacc), lat(wpb, nacc)
    integer(int64) :: v(nacc)
    integer(int32) :: row, j, b, b0, b1, bf, i, ng
    ng = size(sx)
    do row = 1, size(y)
      do j = 1, ng
        b0 = ((j - 1) * gs) / wpb
        b1 = min(b0 + gs / wpb, nblk) - 1
        if (ng == 1) b1 = nblk - 1
        ! Blocks that may be read forward as 8 bytes: all but the row's last.
        bf = merge(min(b1, nblk - 2), -1, fast)
        acc = 0.0_real32
        b = b0
        do while (b + nacc - 1 <= bf)
          do i = 1, nacc
            v(i) = transfer(packed((b + i - 1) * bpb + 1:(b + i - 1) * bpb + 8, row), v(i))
            call decode(v(i), lat(:, i))
          end do
          do i = 1, nacc
            acc(:, i) = acc(:, i) + xp((b + i - 1) * wpb + 1:(b + i) * wpb) * lat(:, i)
          end do
          b = b + nacc
        end do
        do while (b <= b1)
          v(1) = read_block(packed(:, row), b, nblk, fast)
          call decode(v(1), lat(:, 1))
          acc(:, 1) = acc(:, 1) + xp(b * wpb + 1:(b + 1) * wpb) * lat(:, 1)
          b = b + 1
        end do
        acc(:, 1) = (acc(:, 1) + acc(:, 2)) + (acc(:, 3) + acc(:, 4))
        y(row) = y(row) + zeros(j, row) * sx(j) + scales(j, row) * sum(acc(:, 1))
      end do
    end do
  end subroutine gemv_rows

  ! Several batch columns: one decode per block, one 16-lane accumulator per column.
  subroutine gemm_rows(xp, sx, packed, scales, zeros, gs, y, nblk, fast)
    real(real32), intent(in) :: xp(:, :), sx(:, :), scales(:, :), zeros(:, :)
    integer(int8), intent(in) :: packed(:, :)
    integer(int32), intent(in) :: gs, nblk
    real(real32), intent(inout) :: y(:, :)
    logical, intent(in) :: fast
    real(real32) :: acc(wpb, size(xp, 2)), lat(wpb)
    integer(int32) :: row, j, b, b0, b1, c, ng, nb, c0
    ng = size(sx, 1)
    nb = size(xp, 2)
    do row = 1, size(y, 1)
      do j = 1, ng
        b0 = ((j - 1) * gs) / wpb
        b1 = min(b0 + gs / wpb, nblk) - 1
        if (ng == 1) b1 = nblk - 1
        acc = 0.0_real32
        do b = b0, b1
          call decode(read_block(packed(:, row), b, nblk, fast), lat)
          c0 = b * wpb
          do c = 1, nb
            acc(:, c) = acc(:, c) + xp(c0 + 1:c0 + wpb, c) * lat
          end do
        end do
        do c = 1, nb
          y(row, c) = y(row, c) + zeros(j, row) * sx(j, c) + scales(j, row) * sum(acc(:, c))
        end do
      end do
    end do
  end subroutine gemm_rows

  ! Block b of a row: one 8-byte read on the fast path (the last block reads the 8 bytes ending at its end).
  pure integer(int64) function read_block(row, b, nblk, fast) result(v)
    integer(int8), intent(in) :: row(:)
    integer(int32), intent(in) :: b, nblk
    logical, intent(in) :: fast
    integer(int32) :: o
    o = b * bpb
    if (.not. fast .or. nblk < 2) then
      v = block_value(row, b)
    else if (b < nblk - 1) then
      v = transfer(row(o + 1:o + 8), v)
    else
      v = shiftr(transfer(row(o:o + 7), v), 8)
    end if
  end function read_block

end module q35_matmul
