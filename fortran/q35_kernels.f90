! q35 kernels called from Python through f2py (bridge/). Standard Fortran 2018.
!
! Layout: Python's C-ordered W[N, K] is Fortran's w(k, n) (column k of row n is contiguous), packed[N, P] is
! packed(p, n), scales[N, G] is scales(ng, n), x[B, K] is x(k, b) and y[B, N] is y(n, b). No copies.
! The bridge validates every input first; the kernels still check what they rely on and report through `info`
! (0 = ok, 1 = inconsistent sizes, 2 = non-finite or out-of-range value) instead of touching memory they
! were not given.
module q35_kernels
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32, int64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  !$ use omp_lib, only: omp_get_max_threads
  implicit none
  private
  public :: sizes_ok, group_blocks, params_ok
  public :: q35_constants, q35_quantize, q35_quantize_compact, q35_pack, q35_unpack, q35_dequantize

contains

  ! The format constants as the kernels see them; the bridge compares them with pyref at import.
  subroutine q35_constants(consts)
    integer(int32), intent(out) :: consts(8)
    consts = [lo4, hi4, lo3, hi3, pair_bits, pairs_per_block, block_bytes, weights_per_block]
  end subroutine q35_constants

  ! Also used by q35_matmul.
  pure logical function sizes_ok(k, p, gs, ng)
    integer(int32), intent(in) :: k, p, gs, ng
    sizes_ok = k >= 1 .and. gs >= 1 .and. p == block_bytes * ((k + weights_per_block - 1) / weights_per_block) &
               .and. ng == (k + gs - 1) / gs .and. (mod(gs, weights_per_block) == 0 .or. ng == 1)
  end function sizes_ok

  ! Blocks b0..b1 (0-based) that hold the columns of group j (1-based); groups never split a block.
  pure subroutine group_blocks(j, gs, k, b0, b1)
    integer(int32), intent(in) :: j, gs, k
    integer(int32), intent(out) :: b0, b1
    b0 = ((j - 1) * gs) / weights_per_block
    b1 = (min(j * gs, k) - 1) / weights_per_block
  end subroutine group_blocks

  ! SPEC §3: quantize every group of every row, then pack (§4).
  subroutine q35_quantize(w, gs, ng, p, packed, scales, zeros, info, k, n)
    integer(int32), intent(in) :: k, n, gs, ng, p
    real(real32), intent(in) :: w(k, n)
    integer(int8), intent(out) :: packed(p, n)
    real(real32), intent(out) :: scales(ng, n), zeros(ng, n)
    integer(int32), intent(out) :: info
    integer(int32) :: codes(k)
    integer(int32) :: row, j, col, k0, k1
    real(real64) :: m, mx, z, s

    packed = 0_int8
    scales = 0.0_real32
    zeros = 0.0_real32
    info = 1
    if (.not. sizes_ok(k, p, gs, ng)) return
    info = 2
    if (.not. all(ieee_is_finite(w))) return
    if (any(abs(real(w, real64)) > f16_max)) return
    info = 0
    do row = 1, n
      do j = 1, ng
        k0 = (j - 1) * gs + 1
        k1 = min(j * gs, k)
        m = real(minval(w(k0:k1, row)), real64)
        mx = real(maxval(w(k0:k1, row)), real64)
        z = f16_down(m)
        s = max(f16_up((mx - z) / 15.0_real64), min_scale)
        do col = k0, k1
          codes(col) = lane_code(real(w(col, row), real64), z, s, col)
        end do
        scales(j, row) = real(s, real32)   ! exact: s and z are binary16 values
        zeros(j, row) = real(z, real32)
      end do
      call pack_row(codes, packed(:, row))
    end do
  end subroutine q35_quantize

  ! SPEC §8: per row a binary16 scale d; per group the (sc, zp) that minimises sum a_k*(w_k - w_hat_k)**2 over
  ! sc in [max(1, 5*c0/8), min(63, c0+1)] and zp in [zc-1, zc+1] (clamped to 0..15), first minimum wins.
  ! The arithmetic and its order are those of pyref.search_group, so the choice is bit-identical. Rows are split
  ! over nthreads OpenMP threads (<= 0: the OpenMP default); each row is computed alone, so the bits do not depend
  ! on the thread count.
  subroutine q35_quantize_compact(w, a, gs, ng, p, nthreads, packed, row_scales, group_codes, info, k, n)
    integer(int32), intent(in) :: k, n, gs, ng, p, nthreads
    real(real32), intent(in) :: w(k, n), a(k)
    integer(int8), intent(out) :: packed(p, n)
    real(real32), intent(out) :: row_scales(n)
    integer(int32), intent(out) :: group_codes(ng, n)
    integer(int32), intent(out) :: info
    integer(int32) :: row, nt

    packed = 0_int8
    row_scales = 0.0_real32
    group_codes = 0
    info = 1
    if (.not. sizes_ok(k, p, gs, ng)) return
    info = 2
    if (.not. all(ieee_is_finite(w)) .or. .not. all(ieee_is_finite(a))) return
    if (any(abs(real(w, real64)) > f16_max) .or. any(a < 0.0_real32)) return
    info = 0
    nt = nthreads
    !$ if (nt <= 0) nt = omp_get_max_threads()
    nt = max(1, nt)
    !$omp parallel do schedule(dynamic, 16) num_threads(nt) default(shared) private(row)
    do row = 1, n
      call compact_row(w(:, row), a, gs, ng, packed(:, row), row_scales(row), group_codes(:, row))
    end do
    !$omp end parallel do
  end subroutine q35_quantize_compact

  ! One row of q35_quantize_compact.
  subroutine compact_row(w, a, gs, ng, packed, row_scale, group_codes)
    real(real32), intent(in) :: w(:), a(:)
    integer(int32), intent(in) :: gs, ng
    integer(int8), intent(out) :: packed(:)
    real(real32), intent(out) :: row_scale
    integer(int32), intent(out) :: group_codes(:)
    integer(int32) :: codes(size(w))
    integer(int32) :: j, col, k, k0, k1, best_sc, best_zp
    real(real64) :: lo, hi, d, s, z, s0max
    k = size(w)
    s0max = 0.0_real64
    do j = 1, ng
      call group_span(w((j - 1) * gs + 1:min(j * gs, k)), lo, hi)
      s0max = max(s0max, (hi - lo) / 15.0_real64)
    end do
    d = max(f16_up(s0max / real(sc_max, real64)), min_scale)
    do j = 1, ng
      k0 = (j - 1) * gs + 1
      k1 = min(j * gs, k)
      call search_group(w(k0:k1), a(k0:k1), k0, d, best_sc, best_zp)
      s = d * real(best_sc, real64)
      z = -(real(best_zp, real64) * s)
      do col = k0, k1
        codes(col) = lane_code(real(w(col), real64), z, s, col)
      end do
      group_codes(j) = best_sc + best_zp * 64
    end do
    row_scale = real(d, real32)   ! exact: d is a binary16 value
    call pack_row(codes, packed)
  end subroutine compact_row

  ! The candidate grids of one group in pyref's order (sc ascending, then zp ascending) and the first with the
  ! strictly smallest error. Every candidate's error is accumulated in column order as in pyref.group_error; the
  ! candidates are independent, so the inner loop over them vectorises (vdivpd, vroundpd, ... across lanes).
  pure subroutine search_group(w, a, col0, d, best_sc, best_zp)
    real(real32), intent(in) :: w(:), a(:)
    integer(int32), intent(in) :: col0
    real(real64), intent(in) :: d
    integer(int32), intent(out) :: best_sc, best_zp
    integer(int32), parameter :: max_cand = 3 * sc_max
    real(real64) :: cs(max_cand), cz(max_cand), err(max_cand)
    integer(int32) :: csc(max_cand), czp(max_cand)
    real(real64) :: lo, hi, s, wi, ai, t, q, e
    integer(int32) :: c0, sc, zp, zc, nc, c, i
    call group_span(w, lo, hi)
    c0 = int(min(max(ceiling((hi - lo) / 15.0_real64 / d, int64), 1_int64), int(sc_max, int64)), int32)
    nc = 0
    do sc = max(1, (5 * c0) / 8), min(sc_max, c0 + 1)
      s = d * real(sc, real64)
      ! clamping to +-64 first keeps the int32 conversion defined and cannot change the clamped zp range
      zc = int(min(max(floor(8.0_real64 - (lo + hi) / (2.0_real64 * s), int64), -64_int64), 64_int64), int32)
      do zp = max(0, min(zp_max, zc - 1)), min(zp_max, max(0, zc + 1))
        nc = nc + 1
        csc(nc) = sc
        czp(nc) = zp
        cs(nc) = s
        cz(nc) = -(real(zp, real64) * s)
      end do
    end do
    err(1:nc) = 0.0_real64
    do i = 1, size(w)
      wi = real(w(i), real64)
      ai = real(a(i), real64)
      if (mod(col0 + i - 1, 2) == 1) then          ! even lane (1-based odd column): L = q4
        do c = 1, nc
          t = (wi - cz(c)) / cs(c)
          q = real(int(min(max(t + 0.5_real64, 0.0_real64), 15.5_real64), int32), real64)   ! = clamp(floor(.))
          e = wi - (cz(c) + cs(c) * q)
          err(c) = err(c) + ai * (e * e)
        end do
      else                                          ! odd lane: L = 2*q3
        do c = 1, nc
          t = (wi - cz(c)) / cs(c)
          q = real(int(min(max(t * 0.5_real64 + 0.5_real64, 0.0_real64), 7.5_real64), int32), real64)
          e = wi - (cz(c) + cs(c) * (2.0_real64 * q))
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
  end subroutine search_group

  ! lo = min(min(w), 0), hi = max(max(w), 0) in binary64.
  pure subroutine group_span(w, lo, hi)
    real(real32), intent(in) :: w(:)
    real(real64), intent(out) :: lo, hi
    lo = min(real(minval(w), real64), 0.0_real64)
    hi = max(real(maxval(w), real64), 0.0_real64)
  end subroutine group_span

  ! The code of column col (1-based) on the grid (z, s): 4-bit on even columns, 3-bit on odd ones.
  pure integer(int32) function lane_code(w, z, s, col) result(q)
    real(real64), intent(in) :: w, z, s
    integer(int32), intent(in) :: col
    if (mod(col, 2) == 1) then
      q = code4(w, z, s)
    else
      q = code3(w, z, s)
    end if
  end function lane_code

  pure subroutine pack_row(codes, bytes)
    integer(int32), intent(in) :: codes(:)
    integer(int8), intent(out) :: bytes(:)
    integer(int32) :: padded(weights_per_block), pairs(pairs_per_block)
    integer(int32) :: b, i, c0, k
    k = size(codes)
    do b = 0, size(bytes) / block_bytes - 1
      padded = 0
      c0 = b * weights_per_block
      do i = 1, min(weights_per_block, k - c0)
        padded(i) = codes(c0 + i)
      end do
      do i = 1, pairs_per_block
        pairs(i) = encode_pair(padded(2 * i - 1), padded(2 * i))
      end do
      call pack_block(pairs, bytes(b * block_bytes + 1:(b + 1) * block_bytes))
    end do
  end subroutine pack_row

  ! Per-weight codes (even columns 0..15, odd 0..7) -> payload.
  subroutine q35_pack(codes, p, packed, info, k, n)
    integer(int32), intent(in) :: k, n, p
    integer(int32), intent(in) :: codes(k, n)
    integer(int8), intent(out) :: packed(p, n)
    integer(int32), intent(out) :: info
    integer(int32) :: row, col, hi
    packed = 0_int8
    info = 1
    if (k < 1 .or. p /= block_bytes * ((k + weights_per_block - 1) / weights_per_block)) return
    info = 2
    do row = 1, n
      do col = 1, k
        hi = merge(hi4, hi3, mod(col, 2) == 1)
        if (codes(col, row) < 0 .or. codes(col, row) > hi) return
      end do
    end do
    info = 0
    do row = 1, n
      call pack_row(codes(:, row), packed(:, row))
    end do
  end subroutine q35_pack

  ! Payload -> the first k per-weight codes of every row.
  subroutine q35_unpack(packed, k, codes, info, p, n)
    integer(int32), intent(in) :: p, n, k
    integer(int8), intent(in) :: packed(p, n)
    integer(int32), intent(out) :: codes(k, n)
    integer(int32), intent(out) :: info
    integer(int32) :: row, b, i, c0, pairs(pairs_per_block), wcodes(weights_per_block)
    codes = 0
    info = 1
    if (k < 1 .or. p /= block_bytes * ((k + weights_per_block - 1) / weights_per_block)) return
    info = 0
    do row = 1, n
      do b = 0, p / block_bytes - 1
        call unpack_block(packed(b * block_bytes + 1:(b + 1) * block_bytes, row), pairs)
        do i = 1, pairs_per_block
          wcodes(2 * i - 1) = iand(pairs(i), 15)
          wcodes(2 * i) = pairs(i) / 2**bits_even
        end do
        c0 = b * weights_per_block
        do i = 1, min(weights_per_block, k - c0)
          codes(c0 + i, row) = wcodes(i)
        end do
      end do
    end do
  end subroutine q35_unpack

  pure logical function params_ok(scales, zeros)
    real(real32), intent(in) :: scales(:, :), zeros(:, :)
    params_ok = all(ieee_is_finite(scales)) .and. all(ieee_is_finite(zeros)) .and. all(scales > 0.0_real32)
  end function params_ok

  ! SPEC §5: w_hat = f32(z + s*L), computed in binary64 where it is exact, rounded once.
  subroutine q35_dequantize(packed, scales, zeros, k, gs, w, info, p, n, ng)
    integer(int32), intent(in) :: p, n, ng, k, gs
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: w(k, n)
    integer(int32), intent(out) :: info
    real(real32) :: lat(weights_per_block)
    integer(int32) :: row, j, b, b0, b1, i, c0
    w = 0.0_real32
    info = 1
    if (.not. sizes_ok(k, p, gs, ng)) return
    info = 2
    if (.not. params_ok(scales, zeros)) return
    info = 0
    do row = 1, n
      do j = 1, ng
        call group_blocks(j, gs, k, b0, b1)
        do b = b0, b1
          call lattice_codes_of_block(packed(b * block_bytes + 1:(b + 1) * block_bytes, row), lat)
          c0 = b * weights_per_block
          do i = 1, min(weights_per_block, k - c0)
            w(c0 + i, row) = real(real(zeros(j, row), real64) + real(scales(j, row), real64) * real(lat(i), real64), &
                                  real32)
          end do
        end do
      end do
    end do
  end subroutine q35_dequantize

end module q35_kernels
