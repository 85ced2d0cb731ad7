! q35 format core: constants, status codes and pure helpers shared by the kernels (SPEC.md §2-§4).
! Standard Fortran 2018; every routine is pure, no vendor extensions.
! Bytes travel as integer(int8) (two's complement); they are read back with an explicit +256, never
! with bit operations on negative integers, whose result the standard leaves to the processor.
module q35_core
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32, int64
  implicit none
  private
  public :: lo4, hi4, lo3, hi3, bits_even, bits_odd, pair_bits, pairs_per_block, block_bytes, &
            weights_per_block, min_scale, f16_max, sc_max, zp_max
  public :: status_ok, status_bad_sizes, status_bad_value, status_not_positive_definite, &
            status_propagation_overflow, status_big_endian
  public :: f16_down, f16_up, encode_pair, pack_block, unpack_block, byte_value, &
            lattice_codes_of_block, pack_row_codes

  integer(int32), parameter :: lo4 = 0, hi4 = 15, lo3 = 0, hi3 = 7
  integer(int32), parameter :: bits_even = 4, bits_odd = 3, pair_bits = bits_even + bits_odd
  integer(int32), parameter :: pairs_per_block = 8
  integer(int32), parameter :: block_bytes = pair_bits * pairs_per_block / 8
  integer(int32), parameter :: weights_per_block = 2 * pairs_per_block
  integer(int32), parameter :: sc_max = 63, zp_max = 15   ! compact scale codes 1..63, zero points 0..15
  real(real64), parameter :: min_scale = 2.0_real64**(-24)
  real(real64), parameter :: f16_max = 65504.0_real64

  ! The `info` every wrapped routine returns (bridge/kernels.py and bridge/gptq.py turn them into errors).
  ! The bridge validates every input first; the kernels still check what they rely on and report instead of
  ! touching memory they were not given.
  integer(int32), parameter :: status_ok = 0
  integer(int32), parameter :: status_bad_sizes = 1                ! inconsistent sizes
  integer(int32), parameter :: status_bad_value = 2                ! non-finite or out-of-range input
  integer(int32), parameter :: status_not_positive_definite = 3    ! GPTQ: a Cholesky pivot <= 0 after damping
  integer(int32), parameter :: status_propagation_overflow = 4     ! GPTQ: a working value became non-finite
  integer(int32), parameter :: status_big_endian = 5               ! A8: transfer() is not little-endian

contains

  ! Exponent of the binary16 unit in the last place at x: max(e - 11, -24) with x = f*2**e, 0.5 <= |f| < 1.
  pure integer(int32) function f16_ulp_exponent(x) result(u)
    real(real64), intent(in) :: x
    u = max(exponent(x) - 11, -24)
  end function f16_ulp_exponent

  ! Largest binary16 value <= x (|x| <= 65504). floor returns an integer, so -0 becomes +0.
  pure real(real64) function f16_down(x) result(r)
    real(real64), intent(in) :: x
    integer(int32) :: u
    u = f16_ulp_exponent(x)
    r = scale(real(floor(scale(x, -u), int64), real64), u)
  end function f16_down

  ! Smallest binary16 value >= x (|x| <= 65504).
  pure real(real64) function f16_up(x) result(r)
    real(real64), intent(in) :: x
    integer(int32) :: u
    u = f16_ulp_exponent(x)
    r = scale(real(ceiling(scale(x, -u), int64), real64), u)
  end function f16_up

  pure integer(int32) function encode_pair(q4, q3) result(c)
    integer(int32), intent(in) :: q4, q3
    c = q4 + q3 * 2**bits_even
  end function encode_pair

  ! Unsigned value 0..255 of a stored byte.
  elemental integer(int32) function byte_value(b) result(v)
    integer(int8), intent(in) :: b
    v = int(b, int32)
    if (v < 0) v = v + 256
  end function byte_value

  ! 8 pair codes -> 7 bytes: V = sum c(i) * 2**(7*(i-1)), little-endian.
  pure subroutine pack_block(pair_codes, bytes)
    integer(int32), intent(in) :: pair_codes(pairs_per_block)
    integer(int8), intent(out) :: bytes(block_bytes)
    integer(int64) :: v
    integer(int32) :: i, b
    v = 0_int64
    do i = 1, pairs_per_block
      v = ior(v, ishft(int(pair_codes(i), int64), pair_bits * (i - 1)))
    end do
    do i = 1, block_bytes
      b = int(iand(ishft(v, -8 * (i - 1)), 255_int64), int32)
      if (b > 127) b = b - 256
      bytes(i) = int(b, int8)
    end do
  end subroutine pack_block

  ! 7 bytes -> 8 pair codes.
  pure subroutine unpack_block(bytes, pair_codes)
    integer(int8), intent(in) :: bytes(block_bytes)
    integer(int32), intent(out) :: pair_codes(pairs_per_block)
    integer(int64) :: v
    integer(int32) :: i
    v = 0_int64
    do i = 1, block_bytes
      v = ior(v, ishft(int(byte_value(bytes(i)), int64), 8 * (i - 1)))
    end do
    do i = 1, pairs_per_block
      pair_codes(i) = int(iand(ishft(v, -pair_bits * (i - 1)), 127_int64), int32)
    end do
  end subroutine unpack_block

  ! 7 bytes -> 16 lattice codes L (q4 on even lanes, 2*q3 on odd lanes), as reals for the dot products.
  pure subroutine lattice_codes_of_block(bytes, lat)
    integer(int8), intent(in) :: bytes(block_bytes)
    real(real32), intent(out) :: lat(weights_per_block)
    integer(int64) :: v, c
    integer(int32) :: i
    v = 0_int64
    do i = 1, block_bytes
      v = ior(v, ishft(int(byte_value(bytes(i)), int64), 8 * (i - 1)))
    end do
    do i = 1, pairs_per_block
      c = iand(ishft(v, -pair_bits * (i - 1)), 127_int64)
      lat(2 * i - 1) = real(iand(c, 15_int64), real32)
      lat(2 * i) = real(2_int64 * ishft(c, -bits_even), real32)
    end do
  end subroutine lattice_codes_of_block

  ! Per-weight codes of one row -> its payload (SPEC §4): padded to whole 16-weight blocks with code 0.
  pure subroutine pack_row_codes(codes, bytes)
    integer(int32), intent(in) :: codes(:)
    integer(int8), intent(out) :: bytes(:)
    integer(int32) :: padded(weights_per_block), pairs(pairs_per_block)
    integer(int32) :: b, i, c0
    do b = 0, size(bytes) / block_bytes - 1
      padded = 0
      c0 = b * weights_per_block
      do i = 1, min(weights_per_block, size(codes) - c0)
        padded(i) = codes(c0 + i)
      end do
      do i = 1, pairs_per_block
        pairs(i) = encode_pair(padded(2 * i - 1), padded(2 * i))
      end do
      call pack_block(pairs, bytes(b * block_bytes + 1:(b + 1) * block_bytes))
    end do
  end subroutine pack_row_codes

end module q35_core
