//! A bit reader for the bit-packed headers of H.264 (SPS) and AAC (AudioSpecificConfig).

use super::ContainerError;

/// Reads bits MSB first, with the exp-Golomb codes of H.264 §9.1.
///
/// Every read is bounds-checked and reports [`ContainerError::Truncated`] naming the
/// structure being read, so hostile input ends in an error, never a panic.
#[derive(Debug)]
pub(super) struct BitReader<'a> {
    /// Which structure is being read, for error messages.
    what: &'static str,
    data: &'a [u8],
    /// Position of the next bit, counted from the first bit of `data`.
    bit: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(what: &'static str, data: &'a [u8]) -> Self {
        Self { what, data, bit: 0 }
    }

    fn truncated(&self, bits: usize) -> ContainerError {
        ContainerError::truncated(self.what, (self.bit + bits).div_ceil(8), self.data.len())
    }

    /// Bits not yet read.
    pub(super) fn remaining(&self) -> usize {
        self.data.len() * 8 - self.bit
    }

    pub(super) fn flag(&mut self) -> Result<bool, ContainerError> {
        let byte = self
            .data
            .get(self.bit / 8)
            .ok_or_else(|| self.truncated(1))?;
        let set = byte & (0x80 >> (self.bit % 8)) != 0;
        self.bit += 1;
        Ok(set)
    }

    /// Reads `n <= 32` bits as an unsigned number.
    pub(super) fn bits(&mut self, n: u32) -> Result<u32, ContainerError> {
        debug_assert!(n <= 32);
        if n as usize > self.remaining() {
            return Err(self.truncated(n as usize));
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.flag()?);
        }
        // n <= 32, so v < 2^32.
        Ok(v as u32)
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), ContainerError> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        self.bit += n;
        Ok(())
    }

    /// Unsigned exp-Golomb, `ue(v)`.
    pub(super) fn ue(&mut self) -> Result<u32, ContainerError> {
        let mut leading_zeros = 0;
        while !self.flag()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(ContainerError::malformed(
                    self.what,
                    "exp-Golomb code longer than 32 bits",
                ));
            }
        }
        let suffix = u64::from(self.bits(leading_zeros)?);
        // At most 2^32 - 2, so it fits.
        Ok(((1u64 << leading_zeros) - 1 + suffix) as u32)
    }

    /// `ue(v)` with the upper bound the standard gives for this field.
    pub(super) fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, ContainerError> {
        let v = self.ue()?;
        if v > max {
            return Err(ContainerError::malformed(
                self.what,
                format!("{field} = {v} (at most {max})"),
            ));
        }
        Ok(v)
    }

    /// Signed exp-Golomb, `se(v)`: 0, 1, -1, 2, -2, ...
    pub(super) fn se(&mut self) -> Result<i64, ContainerError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_and_exp_golomb_fields() {
        // 1 | 010 | 011 | 00100 | 00101 | 101 | 0000:
        // flag, ue 1, se -1 (code 2), ue 3, ue 4, three bits, four left over.
        let data = [0b1010_0110, 0b0100_0010, 0b1101_0000];
        let mut r = BitReader::new("test", &data);
        assert!(r.flag().expect("bit"));
        assert_eq!(r.ue().expect("ue"), 1);
        assert_eq!(r.se().expect("se"), -1);
        assert_eq!(r.ue().expect("ue"), 3);
        assert_eq!(r.ue().expect("ue"), 4);
        assert_eq!(r.bits(3).expect("bits"), 0b101);
        assert_eq!(r.remaining(), 4);
        assert!(matches!(r.bits(5), Err(ContainerError::Truncated { .. })));
        r.skip(4).expect("in range");
        assert!(matches!(r.flag(), Err(ContainerError::Truncated { .. })));
    }

    #[test]
    fn overlong_exp_golomb_is_an_error() {
        let mut r = BitReader::new("test", &[0; 8]);
        assert!(matches!(r.ue(), Err(ContainerError::Malformed { .. })));
        let mut r = BitReader::new("test", &[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(r.ue().expect("31 leading zeros"), u32::MAX - 1);
    }
}
