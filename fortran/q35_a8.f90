! q35 integer-activation matmul (W3.5·A8, SPEC §5.1), called from Python through f2py (bridge/kernels.py).
! Layout as in q35_kernels.f90: x[B, K] is x(k, b), y[B, N] is y(n, b), packed[N, P] is packed(p, n).
!
! Semantics (SPEC §5.1): x is quantized per block of `ab` columns to codes q in [-127, 127] with scale dx
! (binary64); per piece (a weight group intersected with an activation block) the kernel forms the exact integers
! I = sum q*L and S = sum q, then acc = acc + dx*(s*I + z*S) in binary64, piece by piece in column order, and
! y = real(acc, real32). Everything but the integer sums is scalar binary64 in that order, so the result is the
! reference's bit for bit (pyref/a8.py).
!
! How the integer sums vectorise (checked with -fopt-info-vec and objdump; see block_dots): each 7-byte block is
! read as one 8-byte little-endian word (a scalar load per block: gfortran cannot vectorise loads at a stride of 7
! bytes) and stored; a vector loop over 16 blocks at a time splits the words into four 14-bit windows of two pair
! codes each, takes the 16 lattice codes L with uniform shifts and masks (vpsrlw, vpand), multiplies them by the
! activation codes stored lane-transposed (xt(block, lane)) with vpmullw (|L*q| <= 15*127 fits int16) and adds the
! 16 products of a block in int16 (|sum| <= 16*1905 < 2**15). The per-block sums, widened to int32 (vpmovsxwd),
! are summed per unit of gcd(group, activation block) columns by vectorised halving steps (unit_sums) and per piece
! from those units (exact, so in any order). There is no horizontal reduction in the hot loop.
! What the compiler makes of it (gfortran 12, -O3 -march=x86-64-v3, objdump): block_dots' loop takes 16 blocks
! (256 weights) per iteration in about 165 instructions: 8 vpermd + 4 vpblendd to split the stored words into
! lows and highs, about 30 shifts/ands/vpackusdw/vpermq for the 14-bit windows, 16 x (vpsrlw, vpand, vpmullw with
! the activation codes as memory operand, vpaddw), 2 vpmovsxwd and stores, plus reloads of the 16 lane pointers
! (register pressure). Measured with callgrind on 1024x4096 (g192, A=256, one thread): 1.20 instructions per
! weight in all: block_dots 0.52, the scalar 8-byte block loads 0.16, unit/piece sums 0.25, the binary64 float
! sequence 0.13, checks 0.05. Not tried yet: vpmaddubsw-style u8 x s8 pair products (32 lanes per instruction, as
! ggml does), which gfortran 12 does not emit from standard Fortran as far as we know.
module q35_a8
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int16, int32, int64
  use, intrinsic :: iso_c_binding, only: c_loc, c_f_pointer
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use q35_core
  use q35_kernels, only: sizes_ok, params_ok, thread_count
  implicit none
  private
  public :: q35_gemm_a8, q35_quantize_a8

  integer(int32), parameter :: a8_max = 127, max_block = 4096
  integer(int32), parameter :: bpb = block_bytes, wpb = weights_per_block

  ! A prepared activation: the pieces (block ranges), block scales, S = sum q and lane-transposed codes.
  type :: prepared
    integer(int32) :: np = 0, nblk = 0, unit = 1, nunits = 0
    integer(int32), allocatable :: pu0(:), pu1(:), grp(:), blk(:)   ! pieces as unit ranges (see unit_sums)
    integer(int32), allocatable :: xs(:, :)        ! (piece, batch column): S = sum q
    real(real64), allocatable :: dx(:, :)          ! (activation block, batch column)
    integer(int16), allocatable :: xt(:, :, :)     ! (block, lane, batch column): q of column 16(block-1)+lane
  end type prepared

contains

  ! SPEC §5.1 quantization of one block: m = max|x|; q = clamp(floor(x*(127/m) + 0.5), -127, 127); dx = m/127.
  pure subroutine quantize_block(x, q, dx)
    real(real32), intent(in) :: x(:)
    integer(int32), intent(out) :: q(:)
    real(real64), intent(out) :: dx
    real(real64) :: m, inv
    integer(int32) :: i
    m = real(maxval(abs(x)), real64)
    q = 0
    dx = 0.0_real64
    if (.not. m > 0.0_real64) return
    inv = real(a8_max, real64) / m
    do i = 1, size(x)
      q(i) = int(min(max(floor(real(x(i), real64) * inv + 0.5_real64, int64), -int(a8_max, int64)), &
                     int(a8_max, int64)), int32)
    end do
    dx = m / real(a8_max, real64)
  end subroutine quantize_block

  ! The activation codes and block scales of x (exposed for tests and for callers that reuse them).
  subroutine q35_quantize_a8(x, ab, q, dx, info, k, nb, nab)
    integer(int32), intent(in) :: k, nb, ab, nab
    real(real32), intent(in) :: x(k, nb)
    integer(int8), intent(out) :: q(k, nb)
    real(real64), intent(out) :: dx(nab, nb)
    integer(int32), intent(out) :: info
    integer(int32) :: qi(ab), c, a, c0, c1
    q = 0_int8
    dx = 0.0_real64
    info = status_bad_sizes
    if (k < 1 .or. ab < wpb .or. mod(ab, wpb) /= 0 .or. ab > max_block .or. nab /= (k + ab - 1) / ab) return
    info = status_bad_value
    if (.not. all(ieee_is_finite(x))) return
    info = status_ok
    do c = 1, nb
      do a = 1, nab
        c0 = (a - 1) * ab + 1
        c1 = min(a * ab, k)
        call quantize_block(x(c0:c1, c), qi(1:c1 - c0 + 1), dx(a, c))
        q(c0:c1, c) = int(qi(1:c1 - c0 + 1), int8)
      end do
    end do
  end subroutine q35_quantize_a8

  ! Pieces, block scales, S = sum q and lane-transposed codes of x (SPEC §5.1).
  subroutine prepare(x, k, nb, gs, ab, pr)
    integer(int32), intent(in) :: k, nb, gs, ab
    real(real32), intent(in) :: x(k, nb)
    type(prepared), intent(inout) :: pr
    integer(int32) :: q(wpb * ((k + wpb - 1) / wpb), nb)
    integer(int32) :: nab, c, a, c0, c1, p, l
    nab = (k + ab - 1) / ab
    pr%nblk = (k + wpb - 1) / wpb
    allocate(pr%dx(nab, nb), pr%xt(pr%nblk, wpb, nb))
    q = 0
    do c = 1, nb
      do a = 1, nab
        c0 = (a - 1) * ab + 1
        c1 = min(a * ab, k)
        call quantize_block(x(c0:c1, c), q(c0:c1, c), pr%dx(a, c))
      end do
      do l = 1, wpb
        pr%xt(:, l, c) = int(q(l::wpb, c), int16)
      end do
    end do
    ! pieces: cut at every group and every activation-block boundary (both multiples of 16 columns)
    pr%np = 0
    c0 = 0
    do while (c0 < k)
      pr%np = pr%np + 1
      c0 = min((c0 / gs + 1) * gs, (c0 / ab + 1) * ab, k)
    end do
    ! units: runs of `unit` blocks that no piece boundary but the row's end cuts (gcd of group and activation
    ! block, in blocks; a group of the whole row, which may end mid-block, does not cut)
    pr%unit = ab / wpb
    if (mod(gs, wpb) == 0) pr%unit = gcd(gs / wpb, pr%unit)
    pr%nunits = (pr%nblk + pr%unit - 1) / pr%unit
    allocate(pr%pu0(pr%np), pr%pu1(pr%np), pr%grp(pr%np), pr%blk(pr%np), pr%xs(pr%np, nb))
    c0 = 0
    do p = 1, pr%np
      c1 = min((c0 / gs + 1) * gs, (c0 / ab + 1) * ab, k)
      pr%pu0(p) = c0 / (wpb * pr%unit) + 1
      pr%pu1(p) = ((c1 + wpb - 1) / wpb - 1) / pr%unit + 1
      pr%grp(p) = c0 / gs + 1
      pr%blk(p) = c0 / ab + 1
      do c = 1, nb
        pr%xs(p, c) = sum(q(c0 + 1:c1, c))
      end do
      c0 = c1
    end do
  end subroutine prepare

  pure integer(int32) function gcd(a, b) result(g)
    integer(int32), intent(in) :: a, b
    integer(int32) :: r, t
    g = a
    r = b
    do while (r /= 0)
      t = mod(g, r)
      g = r
      r = t
    end do
  end function gcd

  ! us(i) = the sum of d over unit i (`unit` blocks; the last unit may be shorter); d is overwritten. Every piece
  ! is a run of whole units, so its I is then a sum of a few units. Sums of the pieces' own block ranges cost 5
  ! instructions per block (short loops of varying length), sum() over fixed columns 8; halving steps (adjacent
  ! pairs, unit boundaries never fall inside a pair) vectorise at well under 1 per block. Exact in int32 (SPEC
  ! §5.1), so the order does not matter.
  pure subroutine unit_sums(d, nblk, unit, us)
    integer(int32), intent(in) :: nblk, unit
    integer(int32), intent(inout) :: d(:), us(:)
    integer(int32) :: m, cnt, j
    logical :: in_us
    m = unit
    cnt = nblk
    in_us = .false.
    do while (mod(m, 2) == 0)
      if (in_us) then
        call pair_sums(us, d, cnt)
      else
        call pair_sums(d, us, cnt)
      end if
      in_us = .not. in_us
      cnt = (cnt + 1) / 2
      m = m / 2
    end do
    if (.not. in_us) us(1:cnt) = d(1:cnt)
    if (m > 1) then                                ! an odd factor left (rare: e.g. 48-column groups)
      do j = 1, (cnt + m - 1) / m
        us(j) = sum(us((j - 1) * m + 1:min(j * m, cnt)))
      end do
    end if
  end subroutine unit_sums

  ! dst(i) = src(2i-1) + src(2i); an odd last element is copied.
  pure subroutine pair_sums(src, dst, cnt)
    integer(int32), intent(in) :: cnt
    integer(int32), intent(in) :: src(cnt)
    integer(int32), intent(out) :: dst((cnt + 1) / 2)
    integer(int32) :: i
    do i = 1, cnt / 2
      dst(i) = src(2 * i - 1) + src(2 * i)
    end do
    if (mod(cnt, 2) == 1) dst((cnt + 1) / 2) = src(cnt)
  end subroutine pair_sums

  ! The 8-byte little-endian word at the start of every block of a row (one scalar load each: the row buffer
  ! must have a byte after its last block).
  subroutine block_words(row, nblk, w)
    integer(int32), intent(in) :: nblk
    integer(int8), intent(in), target :: row(bpb * nblk + 1)
    integer(int64), intent(out) :: w(nblk)
    integer(int64), pointer :: v
    integer(int32) :: b
    do b = 1, nblk
      call c_f_pointer(c_loc(row(bpb * (b - 1) + 1)), v)
      w(b) = v
    end do
  end subroutine block_words

  ! d(b) = sum over the 16 lanes of block b of L * q (exact; int16 products and sums, then int32). w32 holds each
  ! block's word as (low, high) 32-bit halves; h0 = bits 0-27 (pairs 0-3), h1 = bits 28-55 (pairs 4-7); each
  ! half is two 14-bit windows of two pairs: q4 = bits 0-3, L = 2*q3 = bits 3-6 (bit 3 cleared), then +7.
  pure subroutine block_dots(w32, xt, d, nblk)
    integer(int32), intent(in) :: nblk
    integer(int32), intent(in) :: w32(2, nblk)
    integer(int16), intent(in) :: xt(nblk, wpb)
    integer(int32), intent(out) :: d(nblk)
    integer(int32), parameter :: m14 = 2**14 - 1, m28 = 2**28 - 1, m24 = 2**24 - 1
    integer(int32) :: b, h0, h1
    integer(int16) :: u1, u2, u3, u4, t
    do b = 1, nblk
      h0 = iand(w32(1, b), m28)
      h1 = ior(shiftr(w32(1, b), 28), shiftl(iand(w32(2, b), m24), 4))
      u1 = int(iand(h0, m14), int16)
      u2 = int(shiftr(h0, 14), int16)
      u3 = int(iand(h1, m14), int16)
      u4 = int(shiftr(h1, 14), int16)
      t = iand(u1, 15_int16) * xt(b, 1) + iand(shiftr(u1, 3), 14_int16) * xt(b, 2) &
        + iand(shiftr(u1, 7), 15_int16) * xt(b, 3) + iand(shiftr(u1, 10), 14_int16) * xt(b, 4) &
        + iand(u2, 15_int16) * xt(b, 5) + iand(shiftr(u2, 3), 14_int16) * xt(b, 6) &
        + iand(shiftr(u2, 7), 15_int16) * xt(b, 7) + iand(shiftr(u2, 10), 14_int16) * xt(b, 8) &
        + iand(u3, 15_int16) * xt(b, 9) + iand(shiftr(u3, 3), 14_int16) * xt(b, 10) &
        + iand(shiftr(u3, 7), 15_int16) * xt(b, 11) + iand(shiftr(u3, 10), 14_int16) * xt(b, 12) &
        + iand(u4, 15_int16) * xt(b, 13) + iand(shiftr(u4, 3), 14_int16) * xt(b, 14) &
        + iand(shiftr(u4, 7), 15_int16) * xt(b, 15) + iand(shiftr(u4, 10), 14_int16) * xt(b, 16)
      d(b) = int(t, int32)
    end do
  end subroutine block_dots

  ! One output row: I for every piece and batch column, then acc = acc + dx*(s*I + z*S) piece by piece
  ! (SPEC §5.1), y = real(acc, real32). w, d, us, isum: scratch of the calling thread.
  subroutine a8_row(row, nbytes, pr, s, z, nb, y, w, d, us, isum)
    integer(int32), intent(in) :: nbytes, nb
    integer(int8), intent(in) :: row(nbytes)
    type(prepared), intent(in) :: pr
    real(real32), intent(in) :: s(:), z(:)
    real(real32), intent(out) :: y(:)
    integer(int64), intent(inout), target :: w(:)
    integer(int32), intent(inout) :: d(:), us(:), isum(:)
    integer(int32), pointer, contiguous :: w32(:, :)
    real(real64) :: acc
    integer(int32) :: p, c
    call block_words(row, pr%nblk, w)
    call c_f_pointer(c_loc(w), w32, [2, pr%nblk])
    do c = 1, nb
      call block_dots(w32, pr%xt(:, :, c), d, pr%nblk)
      call unit_sums(d, pr%nblk, pr%unit, us)
      if (pr%np == pr%nunits) then                 ! every piece is one unit (e.g. group = activation block)
        isum(1:pr%np) = us(1:pr%np)
      else
        do p = 1, pr%np
          isum(p) = sum(us(pr%pu0(p):pr%pu1(p)))
        end do
      end if
      acc = 0.0_real64
      do p = 1, pr%np
        acc = acc + pr%dx(pr%blk(p), c) * (real(s(pr%grp(p)), real64) * real(isum(p), real64) &
                                           + real(z(pr%grp(p)), real64) * real(pr%xs(p, c), real64))
      end do
      y(c) = real(acc, real32)
    end do
  end subroutine a8_row

  ! Rows first..last of y (one thread's share): scratch allocated once.
  subroutine a8_rows(packed, p, n, first, last, pr, scales, zeros, nb, y)
    integer(int32), intent(in) :: p, n, first, last, nb
    integer(int8), intent(in) :: packed(p, n)
    type(prepared), intent(in) :: pr
    real(real32), intent(in) :: scales(:, :), zeros(:, :)
    real(real32), intent(inout) :: y(:, :)
    integer(int64), allocatable, target :: w(:)
    integer(int32), allocatable :: d(:), us(:), isum(:)
    integer(int8) :: tail(p + 1)
    integer(int32) :: row
    allocate(w(pr%nblk), d(pr%nblk), us(pr%nblk), isum(pr%np))
    ! every row but the last has a byte after its last block (the next row's first); the last uses a copy
    do row = first, min(last, n - 1)
      call a8_row(packed(1, row), p + 1, pr, scales(:, row), zeros(:, row), nb, y(row, :), w, d, us, isum)
    end do
    if (last == n) then
      tail(1:p) = packed(:, n)
      tail(p + 1) = 0_int8
      call a8_row(tail, p + 1, pr, scales(:, n), zeros(:, n), nb, y(n, :), w, d, us, isum)
    end if
  end subroutine a8_rows

  ! y(:, c) = W_hat applied to x(:, c) with int8 activations (SPEC §5.1), rows split into nthreads contiguous
  ! shares (<= 0: the OpenMP default). Every row is computed the same way whatever the thread count.
  subroutine q35_gemm_a8(x, packed, scales, zeros, gs, ab, nthreads, y, info, k, nb, p, n, ng)
    integer(int32), intent(in) :: k, nb, p, n, ng, gs, ab, nthreads
    real(real32), intent(in) :: x(k, nb)
    integer(int8), intent(in) :: packed(p, n)
    real(real32), intent(in) :: scales(ng, n), zeros(ng, n)
    real(real32), intent(out) :: y(n, nb)
    integer(int32), intent(out) :: info
    type(prepared) :: pr
    integer(int32) :: t, nt
    y = 0.0_real32
    info = status_bad_sizes
    if (.not. sizes_ok(k, p, gs, ng) .or. nb < 1 .or. ab < wpb .or. mod(ab, wpb) /= 0 .or. ab > max_block) return
    info = status_bad_value
    if (.not. params_ok(scales, zeros) .or. .not. all(ieee_is_finite(x))) return
    info = status_big_endian
    if (.not. little_endian()) return
    info = status_ok
    call prepare(x, k, nb, gs, ab, pr)
    nt = thread_count(nthreads, n)
    !$omp parallel do schedule(static) num_threads(nt) default(shared) private(t)
    do t = 1, nt
      call a8_rows(packed, p, n, (t - 1) * n / nt + 1, t * n / nt, pr, scales, zeros, nb, y)
    end do
    !$omp end parallel do
  end subroutine q35_gemm_a8

  ! True when transfer() of bytes gives the little-endian value the int16 windows assume.
  logical function little_endian()
    integer(int8), parameter :: probe(2) = [1_int8, 2_int8]
    little_endian = transfer(probe, 0_int16) == 513_int16
  end function little_endian

end module q35_a8
