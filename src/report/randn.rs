//! `np.random.seed(s); np.random.randn(...)`, bit for bit: numpy's legacy
//! generator (`RandomState`), a Mersenne Twister MT19937 with the polar
//! Box–Muller method of its `legacy_gauss`.
//!
//! The question draws its initial weights with `np.random.randn` (unseeded);
//! with this generator, the report's seed `s` is exactly what the question's
//! code draws after `np.random.seed(s)`, so every run can be repeated in
//! numpy (`fixtures/original/original_rnn.py init --seed s` writes the same
//! weights; a test checks seed 0 against `fixtures/original/initial_weights.txt`).

/// numpy's legacy `RandomState`: MT19937 and a cached second normal deviate.
#[derive(Clone, Debug)]
pub(crate) struct NumpyRandom {
    key: [u32; N],
    pos: usize,
    gauss: Option<f64>,
}

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

impl NumpyRandom {
    /// `np.random.seed(seed)` (an integer seed: MT19937's `init_genrand`).
    pub(crate) fn seed(seed: u32) -> Self {
        let mut key = [0u32; N];
        key[0] = seed;
        for i in 1..N {
            let prev = key[i - 1];
            key[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        NumpyRandom {
            key,
            pos: N,
            gauss: None,
        }
    }

    /// The next 32-bit output of MT19937 (tempered).
    fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.regenerate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn regenerate(&mut self) {
        for i in 0..N {
            let y = (self.key[i] & UPPER_MASK) | (self.key[(i + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// `np.random.random_sample()`: 53 random bits in `[0, 1)`.
    pub(crate) fn random_sample(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// One standard-normal deviate of `np.random.randn` (`legacy_gauss`):
    /// the polar method draws two at a time and returns the cached one next.
    ///
    /// ```text
    /// repeat x1 = 2u − 1, x2 = 2v − 1, r² = x1² + x2²  until 0 < r² < 1
    /// f = √(−2 ln r² / r²);  return f·x2, keep f·x1 for the next call
    /// ```
    pub(crate) fn gauss(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.randn(rows, cols)`: filled row by row (C order).
    pub(crate) fn randn(&mut self, rows: usize, cols: usize) -> nalgebra::DMatrix<f64> {
        let values: Vec<f64> = (0..rows * cols).map(|_| self.gauss()).collect();
        nalgebra::DMatrix::from_row_slice(rows, cols, &values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_output() {
        // The first output of MT19937 seeded with init_genrand(5489) is
        // 3499211612 (the reference implementation's default seed).
        let mut r = NumpyRandom::seed(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        // np.random.seed(0); np.random.random_sample() == 0.5488135039273248
        let mut r = NumpyRandom::seed(0);
        assert_eq!(r.random_sample(), 0.548_813_503_927_324_8);
    }

    #[test]
    fn randn_matches_numpy() {
        // np.random.seed(0); np.random.randn(3) ==
        // [1.764052345967664, 0.4001572083672233, 0.9787379841057392]
        let mut r = NumpyRandom::seed(0);
        let m = r.randn(1, 3);
        assert_eq!(
            m.as_slice(),
            &[
                1.764_052_345_967_664,
                0.400_157_208_367_223_3,
                0.978_737_984_105_739_2
            ]
        );
        // A different seed, a different stream.
        assert_ne!(NumpyRandom::seed(1).randn(1, 3), m);
    }
}
