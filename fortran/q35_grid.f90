! q35 grid of a group and codes on it (SPEC §3 steps 1-4, §8 steps 1-3), shared by both quantizers (q35_kernels'
! q35_quantize / q35_quantize_compact and q35_gptq). Standard Fortran 2018; every routine is pure.
!
! Column numbering: `col` is always the 1-based Fortran index of the stored column, so SPEC's 0-based column is
! col - 1. An odd col is SPEC's even lane (4-bit code q4, L = q4), an even col its odd lane (3-bit q3, L = 2*q3).
!
! Values are any finite binary64 numbers: GPTQ's working values (SPEC §9.3) are not bounded by 65504. Every real is
! clamped before its conversion to an integer, at bounds that cannot change the clamped result, so each conversion
! is defined; for q35_quantize's checked inputs (|w| <= 65504) the clamps never fire.
module q35_grid
  use, intrinsic :: iso_fortran_env, only: real32, real64, int32, int64
  use q35_core, only: lo4, hi4, lo3, hi3, sc_max, zp_max, min_scale, f16_max, f16_down, f16_up
  implicit none
  private
  public :: even_lane, lane_code, lattice_code, minmax_grid, compact_row_scale, search_grid

contains

  ! True on SPEC's even (4-bit) lane: 1-based column col, 0-based col - 1 even.
  elemental logical function even_lane(col)
    integer(int32), intent(in) :: col
    even_lane = mod(col, 2) == 1
  end function even_lane

  ! SPEC §3 step 4 on t = (w - z)/s, 4-bit lane: clamp(floor(t + 0.5), 0, 15) as a binary64 integer. Clamping the
  ! real to [0, 15.5] first leaves the clamped floor unchanged and makes the truncating conversion equal to floor
  ! (its argument is >= 0) and defined for any t, +-Inf included; in this form the search's loop over candidates
  ! vectorises.
  elemental real(real64) function level4(t) result(q)
    real(real64), intent(in) :: t
    q = real(int(min(max(t + 0.5_real64, real(lo4, real64)), real(hi4, real64) + 0.5_real64), int32), real64)
  end function level4

  ! The same on the 3-bit lane: clamp(floor(t*0.5 + 0.5), 0, 7) (the multiplication by 0.5 is exact).
  elemental real(real64) function level3(t) result(q)
    real(real64), intent(in) :: t
    q = real(int(min(max(t * 0.5_real64 + 0.5_real64, real(lo3, real64)), real(hi3, real64) + 0.5_real64), &
                 int32), real64)
  end function level3

  ! SPEC §3 step 4: the code of value w in column col on the grid (z, s): t = (w - z)/s, then q4 or q3.
  elemental integer(int32) function lane_code(w, z, s, col) result(q)
    real(real64), intent(in) :: w, z, s
    integer(int32), intent(in) :: col
    real(real64) :: t
    t = (w - z) / s
    if (even_lane(col)) then
      q = int(level4(t), int32)
    else
      q = int(level3(t), int32)
    end if
  end function lane_code

  ! SPEC §2: the lattice code L of code q in column col: q4 on the even lane, 2*q3 on the odd one.
  elemental integer(int32) function lattice_code(q, col) result(l)
    integer(int32), intent(in) :: q, col
    l = merge(q, 2 * q, even_lane(col))
  end function lattice_code

  ! SPEC §3 steps 1-3 on the group's values clamped to +-65504 (SPEC §9.3): z = f16_down(m),
  ! s = max(f16_up((M - z)/15), 2**-24).
  pure subroutine minmax_grid(v, z, s)
    real(real64), intent(in) :: v(:)
    real(real64), intent(out) :: z, s
    z = f16_down(min(max(minval(v), -f16_max), f16_max))
    s = max(f16_up((min(max(maxval(v), -f16_max), f16_max) - z) / 15.0_real64), min_scale)
  end subroutine minmax_grid

  ! SPEC §8 step 1 for one group: lo = min(min(v), 0), hi = max(max(v), 0).
  pure subroutine group_span(v, lo, hi)
    real(real64), intent(in) :: v(:)
    real(real64), intent(out) :: lo, hi
    lo = min(minval(v), 0.0_real64)
    hi = max(maxval(v), 0.0_real64)
  end subroutine group_span

  ! SPEC §8 steps 1-2 on a row w cut into groups of gs columns: d = max(f16_up(max_j s0_j / 63), 2**-24) with
  ! s0_j = (hi_j - lo_j) / 15.
  pure real(real64) function compact_row_scale(w, gs) result(d)
    real(real64), intent(in) :: w(:)
    integer(int32), intent(in) :: gs
    real(real64) :: lo, hi, s0max
    integer(int32) :: k0
    s0max = 0.0_real64
    do k0 = 1, size(w), gs
      call group_span(w(k0:min(k0 + gs - 1, size(w))), lo, hi)
      s0max = max(s0max, (hi - lo) / 15.0_real64)
    end do
    d = max(f16_up(s0max / real(sc_max, real64)), min_scale)
  end function compact_row_scale

  ! SPEC §8 step 3 for the group v with importance a, v(1) in column col0, row scale d: the candidate grids in
  ! pyref.search_group's order (sc ascending, then zp ascending) and the first with the strictly smallest
  ! error. Returns its group code sc + 64*zp and grid s = d*sc, z = -(zp*s). Every candidate's error is
  ! accumulated in column order as in pyref.group_error; the candidates are independent, so the inner loop over
  ! them vectorises (vdivpd, vminpd, vcvttpd2dq, ... across candidates).
  pure subroutine search_grid(v, a, col0, d, code, z, s)
    real(real64), intent(in) :: v(:), d
    real(real32), intent(in) :: a(:)
    integer(int32), intent(in) :: col0
    integer(int32), intent(out) :: code
    real(real64), intent(out) :: z, s
    integer(int32), parameter :: max_cand = 3 * sc_max
    real(real64) :: cs(max_cand), cz(max_cand), err(max_cand)
    integer(int32) :: csc(max_cand), czp(max_cand)
    real(real64) :: lo, hi, st, wi, ai, e
    integer(int32) :: c0, sc, zp, zc, nc, c, i, best_sc, best_zp
    call group_span(v, lo, hi)
    ! clamping the reals to 64 / +-64 first keeps the int64 conversions defined and cannot change the results
    c0 = int(min(max(ceiling(min((hi - lo) / 15.0_real64 / d, 64.0_real64), int64), 1_int64), &
                 int(sc_max, int64)), int32)
    nc = 0
    do sc = max(1, (5 * c0) / 8), min(sc_max, c0 + 1)
      st = d * real(sc, real64)
      zc = int(floor(min(max(8.0_real64 - (lo + hi) / (2.0_real64 * st), -64.0_real64), 64.0_real64), int64), int32)
      do zp = max(0, min(zp_max, zc - 1)), min(zp_max, max(0, zc + 1))
        nc = nc + 1
        csc(nc) = sc
        czp(nc) = zp
        cs(nc) = st
        cz(nc) = -(real(zp, real64) * st)
      end do
    end do
    err(1:nc) = 0.0_real64
    do i = 1, size(v)
      wi = v(i)
      ai = real(a(i), real64)
      if (even_lane(col0 + i - 1)) then             ! L = q4
        do c = 1, nc
          e = wi - (cz(c) + cs(c) * level4((wi - cz(c)) / cs(c)))
          err(c) = err(c) + ai * (e * e)
        end do
      else                                          ! L = 2*q3
        do c = 1, nc
          e = wi - (cz(c) + cs(c) * (2.0_real64 * level3((wi - cz(c)) / cs(c))))
          err(c) = err(c) + ai * (e * e)
        end do
      end if
    end do
    best_sc = c0                 ! kept when no error is below the initial bound (pyref: math.inf)
    best_zp = 0
    e = huge(1.0_real64)
    do c = 1, nc
      if (err(c) < e) then
        e = err(c)
        best_sc = csc(c)
        best_zp = czp(c)
      end if
    end do
    s = d * real(best_sc, real64)
    z = -(real(best_zp, real64) * s)
    code = best_sc + best_zp * 64
  end subroutine search_grid

end module q35_grid
