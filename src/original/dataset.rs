//! The original question's training data, **reconstructed**: the question
//! does not give `As` and `C_reals`, only the probe after training
//! (after 0.2 then 0.3 comes 0.4; after 0.4 then 0.3 comes 0.2).
//!
//! The reconstruction: inputs `[1, 1, 1, x_i]` with `x` a triangle wave
//! 0.1, 0.2, …, 0.9, 0.8, …, 0.2, 0.1, 0.2, … (period 16), 50 samples, and
//! the target of sample `i` is the next value of the wave, `x_{i+1}`. The
//! same data is committed as `fixtures/triangle_wave.csv` (a test checks that
//! they agree bit for bit); `fixtures/README.md` says how it was chosen.

use nalgebra::DMatrix;

/// Samples per epoch (the question's `range(50)`).
pub const SAMPLES: usize = 50;

/// Period of the triangle wave: 0.1 up to 0.9 (9 values), then 0.8 down to 0.2 (7 values).
pub const PERIOD: usize = 16;

/// Value `i` (from 0) of the triangle wave 0.1, 0.2, …, 0.9, 0.8, …, 0.2, 0.1, …
///
/// Computed as `k / 10` with an integer `k`, which is the double nearest to the
/// decimal `0.k` (what both the CSV file and Python's `k / 10` give).
///
/// ```
/// use rnn_gradcheck::original::dataset::triangle_wave;
/// let wave: Vec<f64> = (0..17).map(triangle_wave).collect();
/// assert_eq!(&wave[..3], &[0.1, 0.2, 0.3]);
/// assert_eq!(&wave[7..11], &[0.8, 0.9, 0.8, 0.7]);
/// assert_eq!(&wave[15..17], &[0.2, 0.1]);
/// ```
pub fn triangle_wave(i: usize) -> f64 {
    let phase = i % PERIOD;
    let k = if phase <= 8 { phase + 1 } else { 17 - phase };
    k as f64 / 10.0
}

/// A sequence of samples: columns are time steps (the crate's convention).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Inputs `[1, 1, 1, x_i]`, `4 × SAMPLES`.
    pub x: DMatrix<f64>,
    /// Targets `x_{i+1}`, `1 × SAMPLES`.
    pub targets: DMatrix<f64>,
}

impl Dataset {
    /// The first `t_len` samples (clamped to the number available).
    pub fn prefix(&self, t_len: usize) -> Dataset {
        let t_len = t_len.min(self.x.ncols());
        Dataset {
            x: self.x.columns(0, t_len).into_owned(),
            targets: self.targets.columns(0, t_len).into_owned(),
        }
    }

    /// Samples `start .. start + t_len` (clamped to the number available).
    pub fn window(&self, start: usize, t_len: usize) -> Dataset {
        let start = start.min(self.x.ncols());
        let t_len = t_len.min(self.x.ncols() - start);
        Dataset {
            x: self.x.columns(start, t_len).into_owned(),
            targets: self.targets.columns(start, t_len).into_owned(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.ncols()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The reconstructed data set: 50 samples, inputs `[1, 1, 1, x_i]`, targets
/// `x_{i+1}` (see the [module docs](self)).
///
/// ```
/// use rnn_gradcheck::original::dataset::triangle_wave_dataset;
/// let d = triangle_wave_dataset();
/// assert_eq!(d.x.shape(), (4, 50));
/// assert_eq!(d.x.column(1).as_slice(), &[1.0, 1.0, 1.0, 0.2]);
/// assert_eq!(d.targets[(0, 1)], 0.3);
/// ```
pub fn triangle_wave_dataset() -> Dataset {
    Dataset {
        x: DMatrix::from_fn(
            4,
            SAMPLES,
            |r, i| if r < 3 { 1.0 } else { triangle_wave(i) },
        ),
        targets: DMatrix::from_fn(1, SAMPLES, |_, i| triangle_wave(i + 1)),
    }
}
