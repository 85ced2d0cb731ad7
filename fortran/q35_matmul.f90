! q35 fused dequant-matmul kernels (SPEC §5), called from Python through f2py (bridge/).
! Same layout conventions as q35_kernels.f90: x[B, K] is x(k, b), y[B, N] is y(n, b).
!
! Fast path (standard Fortran, IEEE binary32, no reassociation or contraction flags needed):
! * A 7-byte block (SPEC §4) is the 56-bit little-endian value V. Its low 28 bits hold pairs 0-3 and its high
!   28 bits pairs 4-7, laid out alike, so a block is two 28-bit half-words h0, h1 and lattice code l (1..8) of a
!   half-word is iand(h, half_mask(l)) / 2**half_shift(l): the even lane keeps bits 7p..7p+3 (q4), the odd lane
!   bits 7p+4..7p+6 in place of 2*q3 (mask 14 shifted). iand(h, half_mask(l)) has at most 4 significant bits, so
!   its conversion to binary32 is exact.
! * The division by 2**half_shift(l) is folded into x: xt = x * 2**-half_shift(l), exact unless x is tiny (x*2**-24
!   would lose bits when |x| < 2**-102), and (x*2**-s)*(L*2**s) rounds exactly as x*L does. Inputs with a nonzero
!   |x| < 2**-100 take the portable path below instead, as does a processor whose transfer() is not little-endian.
! * x is stored transposed by lane (xt(block, lane)), so the inner loop runs over blocks with unit stride and
!   every lane is one vector AND, one int->float conversion, one multiply and one add: gfortran vectorises it.
! * Each block is read as two 4-byte words with transfer() (q35_kernels' row_halves), both inside the block.
! * Sums are binary32, per group as SPEC §5 describes: per-block partial dots (four partial sums over lanes), their
!   sum over the group, then z*sum(x) + s*sum(x*L), then the sum over groups. The §5 bound holds for any order.
! * OpenMP splits the output rows into one contiguous share per thread; a row's arithmetic does not depend on which
!   thread computes it, so the result is the same for every thread count.
module q35_matmul
  use, intrinsic :: iso_fortran_env, only: real32, int8, int32
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_kernels, only: sizes_ok, group_blocks, params_ok, thread_count, row_halves, halves_reader_ok, &
                         half_mask, half_scale
  implicit none
  private
  public :: q35_gemm

  integer(int32), parameter :: wpb = weights_per_block, bpb = block_bytes
  real(real32), parameter :: tiny_x = 2.0_real32**(-100)
  integer(int32), parameter :: vb = 16   ! blocks per chunk: one 16-lane vector of blocks

contains

  ! y(:, c) = W_hat x(:, c) for a small batch; each block is decoded once per tile of up to 4 batch columns. Output
  ! rows are split into nthreads contiguous shares (<= 0: the OpenMP default); every row is computed the same way
  ! whatever the thread count, so the bits do not depend on it.
  subroutine q35_gemm(x, packed, scales, zeros, gs, nthreads, y, info, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs, nthreads
    real(real32), intent(in) :: x(k, nb)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: y(n, nb)
    integer(int32), intent(out) :: info
    real(real32), allocatable :: sx(:, :)
    integer(int32) :: c, j
    y = 0.0_real32
    info = status_bad_sizes
    if (.not. sizes_ok(k, p, gs, ng) .or. nb < 1) return
    info = status_bad_value
    if (.not. params_ok(scales, zeros) .or. .not. all(ieee_is_finite(x))) return
    info = status_ok
    ! The zero-point term needs sum(x) per group; it depends on x only, so compute it once.
    allocate(sx(ng, nb))
    do c = 1, nb
      do j = 1, ng
        sx(j, c) = sum(x((j - 1) * gs + 1:min(j * gs, k), c))
      end do
    end do
    if (halves_reader_ok() .and. .not. any(abs(x) > 0.0_real32 .and. abs(x) < tiny_x)) then
      call gemm_fast(x, sx, packed, scales, zeros, gs, thread_count(nthreads, n), y, k, nb, p, n, ng)
    else
      call gemm_portable(x, sx, packed, scales, zeros, gs, thread_count(nthreads, n), y, k, nb, p, n, ng)
    end if
  end subroutine q35_gemm

  ! src(1:2m) -> dst(1:m): dst(i) = src(2i-1) + src(2i).
  pure subroutine pair_step(src, dst, m)
    integer(int32), intent(in) :: m
    real(real32), intent(in) :: src(2 * m)
    real(real32), intent(out) :: dst(m)
    integer(int32) :: i
    do i = 1, m
      dst(i) = src(2 * i - 1) + src(2 * i)
    end do
  end subroutine pair_step

  ! a(1:m*ns) holds ns consecutive segments of length m; on return a(1:ns) holds their sums (pairwise while m is
  ! even, then in order). e is scratch of at least m*ns/2 elements.
  pure subroutine segment_sums(a, e, m0, ns)
    real(real32), intent(inout) :: a(:), e(:)
    integer(int32), intent(in) :: m0, ns
    integer(int32) :: m, j
    m = m0
    if (m == 8) then              ! the default group size: the same pairwise tree in one pass
      do j = 1, ns
        e(j) = ((a(8 * j - 7) + a(8 * j - 6)) + (a(8 * j - 5) + a(8 * j - 4))) &
               + ((a(8 * j - 3) + a(8 * j - 2)) + (a(8 * j - 1) + a(8 * j)))
      end do
      a(1:ns) = e(1:ns)
      return
    end if
    do while (m > 1 .and. mod(m, 2) == 0)
      call pair_step(a, e, (m / 2) * ns)
      m = m / 2
      if (m == 1 .or. mod(m, 2) /= 0) then
        a(1:m * ns) = e(1:m * ns)
        exit
      end if
      call pair_step(e, a, (m / 2) * ns)
      m = m / 2
    end do
    if (m > 1) then
      do j = 1, ns
        a(j) = sum(a((j - 1) * m + 1:j * m))
      end do
    end if
  end subroutine segment_sums

  ! The fast path: x lane-transposed and pre-scaled once (shared), then every thread's share of the rows.
  subroutine gemm_fast(x, sx, packed, scales, zeros, gs, nt, y, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs, nt
    real(real32), intent(in) :: x(k, nb), sx(ng, nb), scales(ng, n), zeros(ng, n)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(inout) :: y(n, nb)
    real(real32), allocatable :: xt(:, :, :, :)
    integer(int32) :: nblk, nbg, nch, c, l, b, col, t
    nblk = p / bpb
    nbg = merge(nblk, gs / wpb, ng == 1)   ! blocks per group (the last group may be shorter)
    nch = (max(nblk, nbg * ng) + vb - 1) / vb
    allocate(xt(vb, wpb, nb, nch))
    ! Chunks of vb blocks: xt(i, l, c, ch) = x(16(b-1)+l, c) * 2**-half_shift(lane l within its half) for block
    ! b = vb(ch-1)+i; zero past k. Within a chunk every operand is at a constant offset from one base address.
    xt = 0.0_real32
    do c = 1, nb
      do b = 1, nblk
        do l = 1, wpb
          col = (b - 1) * wpb + l
          if (col <= k) xt(mod(b - 1, vb) + 1, l, c, (b - 1) / vb + 1) = x(col, c) * half_scale(mod(l - 1, 8) + 1)
        end do
      end do
    end do
    !$omp parallel do schedule(static) num_threads(nt) default(shared) private(t)
    do t = 1, nt
      call fast_rows(xt, sx, packed, scales, zeros, nbg, (t - 1) * n / nt + 1, t * n / nt, y, nb, p, n, ng, nch)
    end do
    !$omp end parallel do
  end subroutine gemm_fast

  ! Rows first..last of the fast path, with this thread's scratch.
  subroutine fast_rows(xt, sx, packed, scales, zeros, nbg, first, last, y, nb, p, n, ng, nch)
    integer(int32), intent(in) :: nb, p, n, ng, nch, nbg, first, last
    real(real32), intent(in) :: xt(vb, wpb, nb, nch), sx(ng, nb), scales(ng, n), zeros(ng, n)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(inout) :: y(n, nb)
    real(real32), allocatable, target :: d(:, :)
    real(real32), allocatable :: e(:), t(:)
    real(real32), pointer, contiguous :: dflat(:)
    integer(int32), allocatable :: h0(:), h1(:)
    integer(int32) :: nblk, row, c, j
    logical :: flat
    nblk = p / bpb
    flat = mod(vb * nch, nbg) == 0
    allocate(d(vb * nch, nb), e(vb * nch * nb), t(max(ng, 2)), h0(vb * nch), h1(vb * nch))
    dflat(1:vb * nch * nb) => d
    ! Blocks past the row are zero codes against zero x: their partial dots are exact zeros, so every group can be
    ! summed as nbg blocks.
    h0 = 0
    h1 = 0
    do row = first, last
      call row_halves(packed(1, row), nblk, h0, h1)
      c = 0
      do while (c + 4 <= nb)
        call dot_tile4(h0, h1, xt, nb, nch, c, d)
        c = c + 4
      end do
      if (c + 2 <= nb) then
        call dot_tile2(h0, h1, xt, nb, nch, c, d)
        c = c + 2
      end if
      if (c + 1 <= nb) call dot_tile1(h0, h1, xt, nb, nch, c, d)
      if (flat) then
        ! every column's blocks are whole groups: reduce all columns in one pass (group j of column c lands at
        ! flat index (c-1)*(vb*nch/nbg) + j)
        call segment_sums(dflat, e, nbg, vb * nch * nb / nbg)
        do c = 1, nb
          do j = 1, ng
            t(j) = zeros(j, row) * sx(j, c) + scales(j, row) * dflat((c - 1) * (vb * nch / nbg) + j)
          end do
          call segment_sums(t, e, ng, 1)
          y(row, c) = t(1)
        end do
      else
        do c = 1, nb
          call segment_sums(d(:, c), e, nbg, ng)
          do j = 1, ng
            t(j) = zeros(j, row) * sx(j, c) + scales(j, row) * d(j, c)
          end do
          call segment_sums(t, e, ng, 1)
          y(row, c) = t(1)
        end do
      end if
    end do
  end subroutine fast_rows

  ! d(b, c0+1) = sum over the 16 lanes of block b of xt * L (x already scaled by 2**-half_shift).
  pure subroutine dot_tile1(h0, h1, xt, nb, nch, c0, d)
    integer(int32), intent(in) :: nb, nch, c0
    integer(int32), intent(in) :: h0(vb, nch), h1(vb, nch)
    real(real32), intent(in) :: xt(vb, wpb, nb, nch)
    real(real32), intent(inout) :: d(vb, nch, nb)
    real(real32) :: a1, a2, a3, a4
    integer(int32) :: ch, i, l
    do ch = 1, nch
      do i = 1, vb
        a1 = 0.0_real32
        a2 = 0.0_real32
        a3 = 0.0_real32
        a4 = 0.0_real32
        !GCC$ unroll 4
        do l = 1, 4
          a1 = a1 + xt(i, l, c0 + 1, ch) * real(iand(h0(i, ch), half_mask(l)), real32)
          a2 = a2 + xt(i, l + 4, c0 + 1, ch) * real(iand(h0(i, ch), half_mask(l + 4)), real32)
          a3 = a3 + xt(i, l + 8, c0 + 1, ch) * real(iand(h1(i, ch), half_mask(l)), real32)
          a4 = a4 + xt(i, l + 12, c0 + 1, ch) * real(iand(h1(i, ch), half_mask(l + 4)), real32)
        end do
        d(i, ch, c0 + 1) = (a1 + a2) + (a3 + a4)
      end do
    end do
  end subroutine dot_tile1

  pure subroutine dot_tile2(h0, h1, xt, nb, nch, c0, d)
    integer(int32), intent(in) :: nb, nch, c0
    integer(int32), intent(in) :: h0(vb, nch), h1(vb, nch)
    real(real32), intent(in) :: xt(vb, wpb, nb, nch)
    real(real32), intent(inout) :: d(vb, nch, nb)
    real(real32) :: a1, a2, b1, b2, t0, t1
    integer(int32) :: ch, i, l
    do ch = 1, nch
      do i = 1, vb
        a1 = 0.0_real32
        a2 = 0.0_real32
        b1 = 0.0_real32
        b2 = 0.0_real32
        !GCC$ unroll 8
        do l = 1, 8
          t0 = real(iand(h0(i, ch), half_mask(l)), real32)
          t1 = real(iand(h1(i, ch), half_mask(l)), real32)
          a1 = a1 + xt(i, l, c0 + 1, ch) * t0
          a2 = a2 + xt(i, l + 8, c0 + 1, ch) * t1
          b1 = b1 + xt(i, l, c0 + 2, ch) * t0
          b2 = b2 + xt(i, l + 8, c0 + 2, ch) * t1
        end do
        d(i, ch, c0 + 1) = a1 + a2
        d(i, ch, c0 + 2) = b1 + b2
      end do
    end do
  end subroutine dot_tile2

  pure subroutine dot_tile4(h0, h1, xt, nb, nch, c0, d)
    integer(int32), intent(in) :: nb, nch, c0
    integer(int32), intent(in) :: h0(vb, nch), h1(vb, nch)
    real(real32), intent(in) :: xt(vb, wpb, nb, nch)
    real(real32), intent(inout) :: d(vb, nch, nb)
    real(real32) :: a1, a2, b1, b2, c1, c2, d1, d2, t0, t1
    integer(int32) :: ch, i, l
    do ch = 1, nch
      do i = 1, vb
        a1 = 0.0_real32
        a2 = 0.0_real32
        b1 = 0.0_real32
        b2 = 0.0_real32
        c1 = 0.0_real32
        c2 = 0.0_real32
        d1 = 0.0_real32
        d2 = 0.0_real32
        !GCC$ unroll 8
        do l = 1, 8
          t0 = real(iand(h0(i, ch), half_mask(l)), real32)
          t1 = real(iand(h1(i, ch), half_mask(l)), real32)
          a1 = a1 + xt(i, l, c0 + 1, ch) * t0
          a2 = a2 + xt(i, l + 8, c0 + 1, ch) * t1
          b1 = b1 + xt(i, l, c0 + 2, ch) * t0
          b2 = b2 + xt(i, l + 8, c0 + 2, ch) * t1
          c1 = c1 + xt(i, l, c0 + 3, ch) * t0
          c2 = c2 + xt(i, l + 8, c0 + 3, ch) * t1
          d1 = d1 + xt(i, l, c0 + 4, ch) * t0
          d2 = d2 + xt(i, l + 8, c0 + 4, ch) * t1
        end do
        d(i, ch, c0 + 1) = a1 + a2
        d(i, ch, c0 + 2) = b1 + b2
        d(i, ch, c0 + 3) = c1 + c2
        d(i, ch, c0 + 4) = d1 + d2
      end do
    end do
  end subroutine dot_tile4

  ! Portable path: byte-by-byte block reader, unscaled x (any processor, any finite x); rows split as in gemm_fast.
  subroutine gemm_portable(x, sx, packed, scales, zeros, gs, nt, y, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs, nt
    real(real32), intent(in) :: x(k, nb), sx(ng, nb), scales(ng, n), zeros(ng, n)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(inout) :: y(n, nb)
    integer(int32) :: t
    !$omp parallel do schedule(static) num_threads(nt) default(shared) private(t)
    do t = 1, nt
      call portable_rows(x, sx, packed, scales, zeros, gs, (t - 1) * n / nt + 1, t * n / nt, y, k, nb, p, n, ng)
    end do
    !$omp end parallel do
  end subroutine gemm_portable

  subroutine portable_rows(x, sx, packed, scales, zeros, gs, first, last, y, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs, first, last
    real(real32), intent(in) :: x(k, nb), sx(ng, nb), scales(ng, n), zeros(ng, n)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(inout) :: y(n, nb)
    real(real32) :: acc(nb), lat(wpb)
    integer(int32) :: row, j, b, b0, b1, c0, c, kk
    do row = first, last
      do j = 1, ng
        acc = 0.0_real32
        call group_blocks(j, gs, k, b0, b1)
        do b = b0, b1
          call lattice_codes_of_block(packed(b * bpb + 1:(b + 1) * bpb, row), lat)
          c0 = b * wpb
          kk = min(wpb, k - c0)
          do c = 1, nb
            acc(c) = acc(c) + sum(x(c0 + 1:c0 + kk, c) * lat(1:kk))
          end do
        end do
        y(row, :) = y(row, :) + zeros(j, row) * sx(j, :) + scales(j, row) * acc
      end do
    end do
  end subroutine portable_rows

end module q35_matmul
