! q35 error-compensating quantizer (SPEC §9, GPTQ/OBQ-style). Standard Fortran 2018.
!
! The bridge (bridge/hessian.py) validates the inputs and hands over the damped Hessian already laid out in
! processing order. q35_gptq_factor computes the upper Cholesky factor U of its inverse; q35_gptq_quantize then
! quantizes every row column by column in processing order, choosing each group's grid when its first column
! arrives and subtracting e*U(p, q) from every later column q. Every binary64 operation happens in the order
! SPEC §9 states (pyref/gptq.py runs the same ones), so the codes are bit-identical; loops are arranged so the
! independent updates run as contiguous vector loops (compiled with -ffp-contract=off: no FMA).
! Status codes (q35_core): status_not_positive_definite when a pivot of the damped Hessian is <= 0,
! status_propagation_overflow when a working value becomes non-finite (the Hessian is too ill-conditioned).
module q35_gptq
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_grid, only: lane_code, lattice_code, minmax_grid, compact_row_scale, search_grid
  implicit none
  private
  public :: q35_gptq_factor, q35_gptq_quantize

contains

  ! SPEC §9.2: ut(q, p) = U(p, q) for q >= p (0 elsewhere), with inverse(A) = transpose(U)*U, U upper.
  ! B = J*A*J (indices reversed) = L*transpose(L); M = inverse(L); U = J*M*J.
  subroutine q35_gptq_factor(a, ut, info, k)
    integer(int32), intent(in) :: k
    real(real64), intent(in) :: a(k, k)
    real(real64), intent(out) :: ut(k, k)
    integer(int32), intent(out) :: info
    real(real64), allocatable :: l(:, :), m(:, :)
    integer(int32) :: i, j
    ut = 0.0_real64
    info = status_bad_sizes
    if (k < 1) return
    info = status_bad_value
    if (.not. all(ieee_is_finite(a))) return
    allocate (l(k, k), m(k, k))
    l = 0.0_real64
    do j = 1, k
      do i = j, k
        l(i, j) = a(k + 1 - i, k + 1 - j)
      end do
    end do
    call cholesky_in_place(l, k, info)
    if (info /= status_ok) return
    call lower_inverse(l, m, k)
    do j = 1, k                 ! U(p, q) = M(k+1-p, k+1-q); column p of ut is row p of U
      do i = j, k
        ut(i, j) = m(k + 1 - j, k + 1 - i)
      end do
    end do
  end subroutine q35_gptq_factor

  ! Right-looking Cholesky on the lower triangle: entry (i, j) receives -l(i,c)*l(j,c) for c = 1..j-1 in
  ! increasing c (as pyref's left-looking loop), then is divided by l(j, j). A pivot <= 0 (or NaN) gives
  ! info = status_not_positive_definite.
  subroutine cholesky_in_place(l, k, info)
    integer(int32), intent(in) :: k
    real(real64), intent(inout) :: l(k, k)
    integer(int32), intent(out) :: info
    integer(int32) :: i, j, c
    real(real64) :: t
    info = status_ok
    do c = 1, k
      if (.not. l(c, c) > 0.0_real64) then
        info = status_not_positive_definite
        return
      end if
      l(c, c) = sqrt(l(c, c))
      do i = c + 1, k
        l(i, c) = l(i, c) / l(c, c)
      end do
      do j = c + 1, k
        t = l(j, c)
        do i = j, k
          l(i, j) = l(i, j) - l(i, c) * t
        end do
      end do
    end do
  end subroutine cholesky_in_place

  ! M = inverse(L), column by column: x(i) starts at 0 and receives -l(i,c)*M(c,j) for c = j..i-1 in order,
  ! then M(i, j) = x(i) / l(i, i); M(j, j) = 1 / l(j, j).
  pure subroutine lower_inverse(l, m, k)
    integer(int32), intent(in) :: k
    real(real64), intent(in) :: l(k, k)
    real(real64), intent(out) :: m(k, k)
    integer(int32) :: i, j, c
    real(real64) :: t
    m = 0.0_real64
    do j = 1, k
      m(j, j) = 1.0_real64 / l(j, j)
      do c = j, k
        if (c > j) m(c, j) = m(c, j) / l(c, c)
        t = m(c, j)
        do i = c + 1, k
          m(i, j) = m(i, j) - l(i, c) * t
        end do
      end do
    end do
  end subroutine lower_inverse

  ! SPEC §9.3. w(k, n): W in stored column order; ut from q35_gptq_factor; order(p) = stored column (0-based)
  ! quantized at position p; a = grid-search weights (compact); compact = 0 (binary16 min-max grids) or 1
  ! (compact codes). Rows are independent: they are processed in blocks of `rows_per_block`, the blocks spread
  ! over `threads` OpenMP threads when the extension is built with OpenMP (the result never depends on either).
  subroutine q35_gptq_quantize(w, ut, order, a, gs, ng, p, compact, rows_per_block, threads, &
                               packed, scales, zeros, row_scales, group_codes, info, k, n)
    integer(int32), intent(in) :: k, n, gs, ng, p, compact, rows_per_block, threads
    real(real32), intent(in) :: w(k, n), a(k)
    real(real64), intent(in) :: ut(k, k)
    integer(int32), intent(in) :: order(k)
    integer(int8), intent(out) :: packed(p, n)
    real(real32), intent(out) :: scales(ng, n), zeros(ng, n), row_scales(n)
    integer(int32), intent(out) :: group_codes(ng, n)
    integer(int32), intent(out) :: info
    integer(int32) :: r0, nb, blk, nthreads, status
    logical :: seen(k)
    packed = 0_int8
    scales = 0.0_real32
    zeros = 0.0_real32
    row_scales = 0.0_real32
    group_codes = 0
    info = status_bad_sizes
    if (k < 1 .or. gs < 1 .or. rows_per_block < 1 .or. ng /= (k + gs - 1) / gs &
        .or. p /= block_bytes * ((k + weights_per_block - 1) / weights_per_block)) return
    seen = .false.
    do r0 = 1, k
      if (order(r0) < 0 .or. order(r0) >= k) return
      if (seen(order(r0) + 1)) return
      seen(order(r0) + 1) = .true.
    end do
    info = status_bad_value
    if (.not. all(ieee_is_finite(w)) .or. .not. all(ieee_is_finite(a)) .or. .not. all(ieee_is_finite(ut))) return
    if (any(abs(real(w, real64)) > f16_max) .or. any(a < 0.0_real32)) return
    info = status_ok
    nb = (n + rows_per_block - 1) / rows_per_block
    nthreads = max(1, threads)
    status = status_ok     ! reduction(max): status_propagation_overflow if any block reports it
    !$omp parallel do num_threads(nthreads) schedule(dynamic, 1) private(r0) reduction(max:status)
    do blk = 1, nb
      r0 = (blk - 1) * rows_per_block + 1
      call quantize_rows(w(:, r0:min(n, r0 + rows_per_block - 1)), ut, order, a, gs, ng, compact, &
                         packed(:, r0:min(n, r0 + rows_per_block - 1)), scales(:, r0:min(n, r0 + rows_per_block - 1)), &
                         zeros(:, r0:min(n, r0 + rows_per_block - 1)), row_scales(r0:min(n, r0 + rows_per_block - 1)), &
                         group_codes(:, r0:min(n, r0 + rows_per_block - 1)), status)
    end do
    !$omp end parallel do
    info = status
  end subroutine q35_gptq_quantize

  ! One block of rows. wp(:, r) holds row r's working values in processing order (position q holds stored
  ! column order(q)); pos(c) is the position of stored column c.
  subroutine quantize_rows(w, ut, order, a, gs, ng, compact, packed, scales, zeros, row_scales, group_codes, status)
    real(real32), intent(in) :: w(:, :), a(:)
    real(real64), intent(in) :: ut(:, :)
    integer(int32), intent(in) :: order(:), gs, ng, compact
    integer(int8), intent(out) :: packed(:, :)
    real(real32), intent(out) :: scales(:, :), zeros(:, :), row_scales(:)
    integer(int32), intent(out) :: group_codes(:, :)
    integer(int32), intent(inout) :: status
    real(real64) :: wp(size(w, 1), size(w, 2)), gz(ng, size(w, 2)), gsc(ng, size(w, 2)), d(size(w, 2))
    real(real64) :: e(size(w, 2)), z, s, vals(gs)
    integer(int32) :: codes(size(w, 1), size(w, 2)), pos(size(w, 1))
    logical :: chosen(ng, size(w, 2))
    integer(int32) :: k, nr, q, r, c, j, k0, k1, code, i
    k = size(w, 1)
    nr = size(w, 2)
    do q = 1, k
      pos(order(q) + 1) = q
    end do
    do r = 1, nr
      do q = 1, k
        wp(q, r) = real(w(order(q) + 1, r), real64)
      end do
      d(r) = 0.0_real64
      if (compact == 1) d(r) = compact_row_scale(real(w(:, r), real64), gs)
    end do
    chosen = .false.
    do q = 1, k
      c = order(q) + 1                    ! 1-based stored column
      j = (c - 1) / gs + 1
      k0 = (j - 1) * gs + 1
      k1 = min(j * gs, k)
      do r = 1, nr
        if (.not. chosen(j, r)) then
          do i = k0, k1
            vals(i - k0 + 1) = wp(pos(i), r)
          end do
          if (.not. all(ieee_is_finite(vals(1:k1 - k0 + 1)))) then
            status = status_propagation_overflow
            return
          end if
          if (compact == 1) then
            call search_grid(vals(1:k1 - k0 + 1), a(k0:k1), k0, d(r), code, z, s)
            group_codes(j, r) = code
          else
            call minmax_grid(vals(1:k1 - k0 + 1), z, s)
            scales(j, r) = real(s, real32)    ! exact: binary16 values
            zeros(j, r) = real(z, real32)
          end if
          gz(j, r) = z
          gsc(j, r) = s
          chosen(j, r) = .true.
        end if
        if (.not. ieee_is_finite(wp(q, r))) then
          status = status_propagation_overflow
          return
        end if
        codes(c, r) = lane_code(wp(q, r), gz(j, r), gsc(j, r), c)
        e(r) = (wp(q, r) - (gz(j, r) + gsc(j, r) * real(lattice_code(codes(c, r), c), real64))) / ut(q, q)
        do i = q + 1, k
          wp(i, r) = wp(i, r) - e(r) * ut(i, q)
        end do
      end do
    end do
    do r = 1, nr
      row_scales(r) = real(d(r), real32)   ! exact: a binary16 value (0 for the min-max grids)
      call pack_row_codes(codes(:, r), packed(:, r))
    end do
  end subroutine quantize_rows

end module q35_gptq
