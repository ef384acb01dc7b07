//! The tests' one seeded pseudo-random generator, so no crate is needed and every run can be
//! replayed from its seed. Integration tests use it as `common::rng::Rng`; the library's unit
//! tests include this same file (`crate::test_rng`, declared in `src/lib.rs`).
// Each crate that includes this file uses a different part of it.
#![allow(dead_code)]

/// SplitMix64: a 64-bit state, one addition and two multiply-xorshift rounds per number.
pub struct Rng(u64);

impl Rng {
    /// A generator whose numbers are fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}
