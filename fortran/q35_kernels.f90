! q35 kernels called from Python through f2py (bridge/). Standard Fortran 2018.
!
! Layout: Python's C-ordered W[N, K] is Fortran's w(k, n) (column k of row n is contiguous), packed[N, P] is
! packed(p, n), scales[N, G] is scales(ng, n), x[B, K] is x(k, b) and y[B, N] is y(n, b). No copies.
! Every routine reports through `info` (q35_core's status codes).
module q35_kernels
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32, int64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_grid, only: even_lane, lane_code, minmax_grid, compact_row_scale, search_grid
  !$ use omp_lib, only: omp_get_max_threads
  implicit none
  private
  public :: sizes_ok, group_blocks, params_ok
  public :: q35_constants, q35_quantize, q35_quantize_compact, q35_pack, q35_unpack, q35_dequantize
  public :: thread_count, row_halves, halves_reader_ok, half_shift, half_mask, half_scale

  ! Lattice code l (1..8) of a block half-word h (row_halves) is iand(h, half_mask(l)) / 2**half_shift(l): the
  ! even lane keeps bits 7p..7p+3 (q4), the odd lane bits 7p+4..7p+6 in place of 2*q3 (mask 14 shifted).
  ! iand(h, half_mask(l)) has at most 4 significant bits, so its conversion to binary32 is exact.
  integer(int32), parameter :: half_shift(8) = [0, 3, 7, 10, 14, 17, 21, 24]
  integer(int32), parameter :: half_mask(8) = shiftl([15, 14, 15, 14, 15, 14, 15, 14], half_shift)
  real(real32), parameter :: half_scale(8) = 2.0_real32**(-half_shift)
  ! The same for a doubled half-word 2*h (q35_dequantize: no lane has shift 0; see halves_to_weights).
  integer(int32), parameter :: dq_mask(8) = 2 * half_mask
  real(real32), parameter :: dq_scale(8) = half_scale / 2

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
    real(real64) :: wr(k), z, s

    packed = 0_int8
    scales = 0.0_real32
    zeros = 0.0_real32
    info = status_bad_sizes
    if (.not. sizes_ok(k, p, gs, ng)) return
    info = status_bad_value
    if (.not. all(ieee_is_finite(w))) return
    if (any(abs(real(w, real64)) > f16_max)) return
    info = status_ok
    do row = 1, n
      wr = real(w(:, row), real64)
      do j = 1, ng
        k0 = (j - 1) * gs + 1
        k1 = min(j * gs, k)
        call minmax_grid(wr(k0:k1), z, s)
        do col = k0, k1
          codes(col) = lane_code(wr(col), z, s, col)
        end do
        scales(j, row) = real(s, real32)   ! exact: s and z are binary16 values
        zeros(j, row) = real(z, real32)
      end do
      call pack_row_codes(codes, packed(:, row))
    end do
  end subroutine q35_quantize

  ! SPEC §8: per row a binary16 scale d; per group the (sc, zp) that minimises sum a_k*(w_k - w_hat_k)**2 over
  ! sc in [max(1, 5*c0/8), min(63, c0+1)] and zp in [zc-1, zc+1] (clamped to 0..15), first minimum wins.
  ! q35_grid runs pyref.search_group's arithmetic in its order, so the choice is bit-identical. Rows are split
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
    info = status_bad_sizes
    if (.not. sizes_ok(k, p, gs, ng)) return
    info = status_bad_value
    if (.not. all(ieee_is_finite(w)) .or. .not. all(ieee_is_finite(a))) return
    if (any(abs(real(w, real64)) > f16_max) .or. any(a < 0.0_real32)) return
    info = status_ok
    nt = thread_count(nthreads, n)
    !$omp parallel do schedule(dynamic, 16) num_threads(nt) default(shared) private(row)
    do row = 1, n
      call compact_row(w(:, row), a, gs, ng, packed(:, row), row_scales(row), group_codes(:, row))
    end do
    !$omp end parallel do
  end subroutine q35_quantize_compact

  ! One row of q35_quantize_compact: SPEC §8 steps 1-4 (q35_grid), then the row's payload.
  subroutine compact_row(w, a, gs, ng, packed, row_scale, group_codes)
    real(real32), intent(in) :: w(:), a(:)
    integer(int32), intent(in) :: gs, ng
    integer(int8), intent(out) :: packed(:)
    real(real32), intent(out) :: row_scale
    integer(int32), intent(out) :: group_codes(:)
    integer(int32) :: codes(size(w))
    real(real64) :: wr(size(w)), d, s, z
    integer(int32) :: j, col, k, k0, k1
    k = size(w)
    wr = real(w, real64)
    d = compact_row_scale(wr, gs)
    do j = 1, ng
      k0 = (j - 1) * gs + 1
      k1 = min(j * gs, k)
      call search_grid(wr(k0:k1), a(k0:k1), k0, d, group_codes(j), z, s)
      do col = k0, k1
        codes(col) = lane_code(wr(col), z, s, col)
      end do
    end do
    row_scale = real(d, real32)   ! exact: d is a binary16 value
    call pack_row_codes(codes, packed)
  end subroutine compact_row

  ! Per-weight codes (even columns 0..15, odd 0..7) -> payload.
  subroutine q35_pack(codes, p, packed, info, k, n)
    integer(int32), intent(in) :: k, n, p
    integer(int32), intent(in) :: codes(k, n)
    integer(int8), intent(out) :: packed(p, n)
    integer(int32), intent(out) :: info
    integer(int32) :: row, col, hi
    packed = 0_int8
    info = status_bad_sizes
    if (k < 1 .or. p /= block_bytes * ((k + weights_per_block - 1) / weights_per_block)) return
    info = status_bad_value
    do row = 1, n
      do col = 1, k
        hi = merge(hi4, hi3, even_lane(col))
        if (codes(col, row) < 0 .or. codes(col, row) > hi) return
      end do
    end do
    info = status_ok
    do row = 1, n
      call pack_row_codes(codes(:, row), packed(:, row))
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
    info = status_bad_sizes
    if (k < 1 .or. p /= block_bytes * ((k + weights_per_block - 1) / weights_per_block)) return
    info = status_ok
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

  ! Finite scales > 0 and finite zeros. |v| <= huge is false for NaN and +-Inf (IEEE comparisons) and, unlike
  ! ieee_is_finite (an out-of-line call per element), vectorises: this check ran at 16 instructions per group.
  pure logical function params_ok(scales, zeros)
    real(real32), intent(in) :: scales(:, :), zeros(:, :)
    params_ok = count(.not. (abs(scales) <= huge(scales) .and. scales > 0.0_real32)) == 0 &
                .and. count(.not. abs(zeros) <= huge(zeros)) == 0    ! count: no early exit, so it vectorises
  end function params_ok

  ! SPEC §5: w_hat = f32(z + s*L), rows split over nthreads OpenMP threads (<= 0: the OpenMP default); each row
  ! is computed alone, so the bits do not depend on the thread count.
  ! Fast path (every group of a valid QTensor): s*L is exact in binary32 and z + s*L exact in binary64 (see
  ! f32_exact), so one binary32 multiply and one binary32 add (no FMA: -ffp-contract=off) round the exact value
  ! once, as SPEC's binary64 formula does. A row's blocks are read as 28-bit half-words (row_halves) whose 8
  ! lattice codes each are iand(h, half_mask(l)) * 2**-half_shift(l), so 8 weights are a few vector instructions
  ! (halves_to_weights). Other groups, and processors whose transfer() is not little-endian, take the element-wise
  ! binary64 formula.
  subroutine q35_dequantize(packed, scales, zeros, k, gs, nthreads, w, info, p, n, ng)
    integer(int32), intent(in) :: p, n, ng, k, gs, nthreads
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: w(k, n)
    integer(int32), intent(out) :: info
    integer(int32) :: row, nt
    logical :: fast
    info = status_bad_sizes
    if (sizes_ok(k, p, gs, ng)) then
      info = status_bad_value
      if (params_ok(scales, zeros)) info = status_ok
    end if
    if (info /= status_ok) then
      w = 0.0_real32
      return
    end if
    fast = halves_reader_ok()
    nt = thread_count(nthreads, n)
    !$omp parallel do schedule(static) num_threads(nt) default(shared) private(row)
    do row = 1, n
      call dequantize_row(packed(:, row), scales(:, row), zeros(:, row), gs, fast, w(:, row))
    end do
    !$omp end parallel do
  end subroutine q35_dequantize

  ! The number of OpenMP threads for a request of `requested` over n independent rows (<= 0: the OpenMP default).
  integer(int32) function thread_count(requested, n) result(nt)
    integer(int32), intent(in) :: requested, n
    nt = requested
    !$ if (nt <= 0) nt = omp_get_max_threads()
    nt = max(1, min(nt, n))
  end function thread_count

  ! One row of q35_dequantize: w(1:k) from the row's bytes and its groups' (s, z).
  pure subroutine dequantize_row(bytes, s, z, gs, fast, w)
    integer(int8), intent(in), contiguous :: bytes(:)
    real(real32), intent(in), contiguous :: s(:), z(:)
    integer(int32), intent(in) :: gs
    logical, intent(in) :: fast
    real(real32), intent(out), contiguous :: w(:)
    integer(int32) :: h0(size(bytes) / block_bytes), h1(size(h0))
    integer(int32) :: j, b0, b1
    if (fast) then
      call row_halves(bytes, size(h0), h0, h1)
      h0 = 2 * h0                                  ! doubled: see halves_to_weights
      h1 = 2 * h1
    end if
    do j = 1, size(s)
      call group_blocks(j, gs, size(w), b0, b1)
      if (fast .and. f32_exact(s(j), z(j))) then
        call dequantize_blocks_f32(h0, h1, s(j), z(j), b0, b1, w)
      else
        call dequantize_blocks_f64(bytes, s(j), z(j), b0, b1, w)
      end if
    end do
  end subroutine dequantize_row

  ! True when s*L (L <= 15) is exact in binary32 and z + s*L exact in binary64: s and z on the 2**-24 grid with
  ! |z| and 15*s below 2**18 (so the sum is a multiple of 2**-24 below 2**43), s with at most 20 significant bits
  ! (times L's 4 bits: at most 24). Every valid QTensor qualifies (SPEC §5, §8: 11 or 17 significant bits).
  pure logical function f32_exact(s, z) result(ok)
    real(real32), intent(in) :: s, z
    real(real64), parameter :: grid = 2.0_real64**24, bound = 2.0_real64**42
    real(real64) :: ss, zz
    integer(int64) :: m
    ss = real(s, real64) * grid          ! exact: scaling by a power of two, far from the binary64 limits
    zz = real(z, real64) * grid
    ok = ss > 0.0_real64 .and. 15.0_real64 * ss < bound .and. abs(zz) < bound .and. &
         abs(ss - aint(ss)) <= 0.0_real64 .and. abs(zz - aint(zz)) <= 0.0_real64    ! integers: on the grid
    if (.not. ok) return
    m = int(ss, int64)
    ok = shiftr(m, trailz(m)) < 2_int64**20
  end function f32_exact

  ! True when transfer() of 4 bytes gives their little-endian two's complement value (row_halves assumes it).
  logical function halves_reader_ok()
    integer(int8), parameter :: probe(4) = [1_int8, 2_int8, 3_int8, -127_int8]
    integer(int32) :: t
    t = transfer(probe, t)
    halves_reader_ok = iand(t, 2**24 - 1) == 1 + 2 * 256 + 3 * 65536 .and. shiftr(t, 24) == 129
  end function halves_reader_ok

  ! The two 28-bit half-words of every block of one row (fast reader): h0 = bits 0-27 of the block (pairs 0-3:
  ! bytes 0-3, top nibble masked off), h1 = bits 28-55 (pairs 4-7: bytes 3-6 shifted right by 4). Both reads stay
  ! inside the block. Also used by q35_matmul.
  pure subroutine row_halves(row, nblk, h0, h1)
    integer(int32), intent(in) :: nblk
    integer(int8), intent(in) :: row(nblk * block_bytes)
    integer(int32), intent(out) :: h0(nblk), h1(nblk)
    integer(int32), parameter :: mask28 = 2**28 - 1
    integer(int32) :: b, o, t
    do b = 1, nblk
      o = (b - 1) * block_bytes
      t = transfer(row(o + 1:o + 4), t)
      h0(b) = iand(t, mask28)
      t = transfer(row(o + 4:o + 7), t)
      h1(b) = iand(shiftr(t, 4), mask28)
    end do
  end subroutine row_halves

  ! Blocks b0..b1 (0-based) of one group, binary32 fast path (see q35_dequantize); h0, h1: the row's doubled
  ! half-words.
  pure subroutine dequantize_blocks_f32(h0, h1, s, z, b0, b1, w)
    integer(int32), intent(in), contiguous :: h0(:), h1(:)
    real(real32), intent(in) :: s, z
    integer(int32), intent(in) :: b0, b1
    real(real32), intent(inout), contiguous :: w(:)
    real(real32) :: last(weights_per_block)
    integer(int32) :: k, bfull, o
    k = size(w)
    bfull = min(b1, k / weights_per_block - 1)      ! the last block whose 16 weights all lie inside the row
    if (bfull >= b0) call halves_to_weights(h0(b0 + 1:bfull + 1), h1(b0 + 1:bfull + 1), s, z, &
                                            w(b0 * weights_per_block + 1:(bfull + 1) * weights_per_block), &
                                            bfull - b0 + 1)
    if (bfull < b1) then                           ! a partial last block: decode it whole, keep the columns in k
      call halves_to_weights(h0(b1 + 1:b1 + 1), h1(b1 + 1:b1 + 1), s, z, last, 1)
      o = b1 * weights_per_block
      w(o + 1:k) = last(1:k - o)
    end if
  end subroutine dequantize_blocks_f32

  ! The m blocks of doubled half-words h0, h1 -> w(:, b) = z + s * L for their 16 lattice codes, L = iand(h,
  ! dq_mask(l)) * dq_scale(l) (both products exact). Each half is one vector of 8 (SLP: vpbroadcastd, vpand,
  ! vcvtdq2ps, two vmulps, vaddps, vmovups: about 1 instruction per weight, callgrind) as long as its 8 lanes are
  ! the same operations: with plain half-words, lane 1 (shift 0, scale 1.0) folds to fewer operations and gfortran
  ! 12 falls back to scalar code (5-6 instructions per weight), hence the doubling. The loop over blocks is kept
  ! scalar (vectorised across blocks it needs 8x8 transposes: 1.45 instructions per weight).
  pure subroutine halves_to_weights(h0, h1, s, z, w, m)
    integer(int32), intent(in) :: m, h0(m), h1(m)
    real(real32), intent(in) :: s, z
    real(real32), intent(out) :: w(weights_per_block, m)
    integer(int32) :: b, l
    !GCC$ novector
    do b = 1, m
      do l = 1, pairs_per_block
        w(l, b) = z + s * (dq_scale(l) * real(iand(h0(b), dq_mask(l)), real32))
        w(pairs_per_block + l, b) = z + s * (dq_scale(l) * real(iand(h1(b), dq_mask(l)), real32))
      end do
    end do
  end subroutine halves_to_weights

  ! Blocks b0..b1 (0-based) of one group, SPEC §5's formula as written: binary64, rounded once.
  pure subroutine dequantize_blocks_f64(bytes, s, z, b0, b1, w)
    integer(int8), intent(in), contiguous :: bytes(:)
    real(real32), intent(in) :: s, z
    integer(int32), intent(in) :: b0, b1
    real(real32), intent(inout), contiguous :: w(:)
    real(real32) :: lat(weights_per_block)
    integer(int32) :: b, i, c0
    do b = b0, b1
      call lattice_codes_of_block(bytes(b * block_bytes + 1:(b + 1) * block_bytes), lat)
      c0 = b * weights_per_block
      do i = 1, min(weights_per_block, size(w) - c0)
        w(c0 + i) = real(real(z, real64) + real(s, real64) * real(lat(i), real64), real32)
      end do
    end do
  end subroutine dequantize_blocks_f64

end module q35_kernels
