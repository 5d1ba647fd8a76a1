//! The data and initial weights every experiment uses.
//!
//! * The data: the question's reconstructed training set,
//!   [`triangle_wave_dataset`](crate::original::dataset::triangle_wave_dataset) (50 samples, inputs `[1, 1, 1, w_i]`, target
//!   `w_{i+1}`; the same numbers as `fixtures/triangle_wave.csv`).
//! * The weights of seed `s`: what the question's `init_weights` draws after
//!   `np.random.seed(s)`, bit for bit (numpy's legacy generator,
//!   reproduced in `src/report/randn.rs`): `AB`, `BC`, `B_RNN`
//!   from `np.random.randn`, in that order, and `B_t = [0]`. Seed 0 is the
//!   fixed initial set `fixtures/original/initial_weights.txt` of the
//!   replica's golden test.

use super::randn::NumpyRandom;
use crate::model::Rnn;
use crate::original::Original;

pub(crate) use crate::original::dataset::triangle_wave_dataset as dataset;

/// The original network's sizes: 4 inputs, 6 hidden units, 1 output.
pub(crate) const SIZES: (usize, usize, usize) = (4, 6, 1);

/// The question's `NN` after `np.random.seed(seed); NN.init_weights()`, with
/// `weight_multiplier = lr`.
pub fn initial_original(seed: u32, lr: f64) -> Original {
    let (n_in, n_h, n_out) = SIZES;
    let mut rng = NumpyRandom::seed(seed);
    let ab = rng.randn(n_in, n_h);
    let bc = rng.randn(n_h, n_out);
    let b_rnn = rng.randn(n_h, n_h);
    Original::new(ab, bc, b_rnn, lr).expect("the question's sizes fit together")
}

/// The same network in the crate's terms ([`Original::rnn`]): `W_xh = ABᵀ`,
/// `W_hh = B_RNNᵀ`, `W_hy = BCᵀ`, sigmoid hidden and output units, no
/// biases, `h_0 = 0`.
pub(crate) fn initial_rnn(seed: u32) -> Rnn {
    initial_original(seed, 0.01).rnn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    /// The blocks of a file written by `fixtures/original/original_rnn.py`.
    fn read_blocks(text: &str) -> Vec<(String, DMatrix<f64>)> {
        let mut lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty());
        let mut out = Vec::new();
        while let Some(header) = lines.next() {
            let f: Vec<&str> = header.split_whitespace().collect();
            let (rows, cols): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let values: Vec<f64> = (0..rows)
                .flat_map(|_| lines.next().unwrap().split_whitespace())
                .map(|v| v.parse().unwrap())
                .collect();
            out.push((
                f[0].to_string(),
                DMatrix::from_row_slice(rows, cols, &values),
            ));
        }
        out
    }

    #[test]
    fn seed_zero_is_the_golden_tests_initial_weights_bit_for_bit() {
        let golden = read_blocks(include_str!("../../fixtures/original/initial_weights.txt"));
        let nn = initial_original(0, 0.01);
        let mine = [("AB", &nn.ab), ("BC", &nn.bc), ("B_RNN", &nn.b_rnn)];
        assert_eq!(golden.len(), 3);
        for ((name, expected), (my_name, m)) in golden.iter().zip(mine) {
            assert_eq!(name, my_name);
            assert_eq!(expected, m, "{name}");
        }
        // Another seed draws other weights.
        assert_ne!(initial_original(1, 0.01).ab, nn.ab);
        assert!(nn.is_fresh());
    }

    #[test]
    fn the_crate_network_is_the_transposed_original_starting_at_zero() {
        let rnn = initial_rnn(3);
        let nn = initial_original(3, 0.01);
        assert_eq!(rnn.params.w_xh, nn.ab.transpose());
        assert_eq!(rnn.params.w_hh, nn.b_rnn.transpose());
        assert_eq!(rnn.params.w_hy, nn.bc.transpose());
        assert!(rnn.params.h_0.iter().all(|&h| h == 0.0));
        assert!(rnn.params.b_h.is_none() && rnn.params.b_y.is_none());
        assert_eq!(dataset().x.shape(), (4, 50));
    }
}
