//! The benchmark workloads: the same weights and data as the numpy and JAX
//! peers, read from their `.npz` files (copies in `fixtures/bench/`).
//!
//! File format (written by the peers' `gen_data.py`): arrays `W_xh`
//! (`n_h × n_in`), `W_hh`, `W_hy` (`n_out × n_h`), `b_h`, `b_y` (vectors), `X`
//! (`T × n_in`), `Y` (`T × n_out`), all float64. The peers' model is ours with
//! sigmoid hidden and output units and `h_0 = 0`; their biases are zero but
//! trained, so they are present here too.

use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, DVector};

use crate::activation::Activation;
use crate::case::npz::{self, Npy};
use crate::case::raw::RawArray;
use crate::case::CaseError;
use crate::model::{Params, Rnn};

/// The workloads of the benchmark, smallest first.
pub const NAMES: [&str; 3] = ["seed", "small", "medium"];

/// One benchmark problem.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `seed`, `small` or `medium`.
    pub name: String,
    /// The sigmoid/sigmoid network with the peers' weights.
    pub rnn: Rnn,
    /// Inputs, `n_in × T`.
    pub x: DMatrix<f64>,
    /// Targets, `n_out × T`.
    pub targets: DMatrix<f64>,
}

impl Workload {
    /// `(n_in, n_h, n_out, T)`.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        let p = &self.rnn.params;
        (p.n_in(), p.n_h(), p.n_out(), self.x.ncols())
    }

    /// Floating-point operations of one forward pass, counting a
    /// multiply-add as two: `2 T (n_h n_in + n_h² + n_out n_h)`.
    pub fn forward_flops(&self) -> f64 {
        let (n_in, n_h, n_out, t) = self.dims();
        2.0 * t as f64 * (n_h * n_in + n_h * n_h + n_out * n_h) as f64
    }
}

/// Why a workload file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a readable `.npz` archive of numbers (the case files' reader).
    #[error(transparent)]
    Npz(#[from] CaseError),
    /// An array is missing or has the wrong shape.
    #[error("{path}: key {key}: {problem}")]
    Array {
        /// The file.
        path: PathBuf,
        /// The array's key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// `DIR/NAME.npz` for each workload in [`NAMES`]; the copies of the peers'
/// files are in the crate's `fixtures/bench/`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.npz"))
}

/// A workload from a peers' `.npz` file, read by the case files' `.npz`
/// reader (the same limits on hostile input).
///
/// # Errors
/// [`WorkloadError`] naming the file, the key and the problem.
pub fn load_npz(path: &Path, name: &str) -> Result<Workload, WorkloadError> {
    let bytes = std::fs::read(path).map_err(|source| WorkloadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let shown = path.display().to_string();
    let mut arrays: Vec<(String, RawArray)> = Vec::new();
    for (key, array) in npz::arrays(&bytes, &shown, |_| Ok(()))? {
        if let Npy::Numbers(a) = array {
            arrays.push((key, a));
        }
    }
    let problem = |key: &str, problem: String| WorkloadError::Array {
        path: path.to_path_buf(),
        key: key.to_string(),
        problem,
    };
    let mut take = |key: &str| -> Result<RawArray, WorkloadError> {
        let i = arrays
            .iter()
            .position(|(k, _)| k == key)
            .ok_or_else(|| problem(key, "missing".into()))?;
        Ok(arrays.swap_remove(i).1)
    };
    let (w_xh, w_hh, w_hy) = (take("W_xh")?, take("W_hh")?, take("W_hy")?);
    let (b_h, b_y, x, y) = (take("b_h")?, take("b_y")?, take("X")?, take("Y")?);

    let rank2 = |a: &RawArray, key: &str| match a.shape[..] {
        [r, c] => Ok((r, c)),
        _ => Err(problem(
            key,
            format!("shape {:?}, expected a rank-2 array", a.shape),
        )),
    };
    let (n_h, _) = rank2(&w_hh, "W_hh")?;
    let (_, n_in) = rank2(&w_xh, "W_xh")?;
    let (n_out, _) = rank2(&w_hy, "W_hy")?;
    let (t_len, _) = rank2(&x, "X")?;
    let expect = |a: &RawArray, key: &str, shape: &[usize]| match a.shape == shape {
        true => Ok(()),
        false => Err(problem(
            key,
            format!("shape {:?}, expected {shape:?}", a.shape),
        )),
    };
    expect(&w_hh, "W_hh", &[n_h, n_h])?;
    expect(&w_xh, "W_xh", &[n_h, n_in])?;
    expect(&w_hy, "W_hy", &[n_out, n_h])?;
    expect(&b_h, "b_h", &[n_h])?;
    expect(&b_y, "b_y", &[n_out])?;
    expect(&x, "X", &[t_len, n_in])?;
    expect(&y, "Y", &[t_len, n_out])?;

    // numpy's C order is row-major: an r × c array is nalgebra's from_row_slice.
    let params = Params {
        w_xh: DMatrix::from_row_slice(n_h, n_in, &w_xh.data),
        w_hh: DMatrix::from_row_slice(n_h, n_h, &w_hh.data),
        w_hy: DMatrix::from_row_slice(n_out, n_h, &w_hy.data),
        b_h: Some(DVector::from_vec(b_h.data)),
        b_y: Some(DVector::from_vec(b_y.data)),
        h_0: DVector::zeros(n_h),
    };
    Ok(Workload {
        name: name.to_string(),
        rnn: Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid),
        // X is T × n_in row-major, so its values are x_1, x_2, … : n_in × T column-major.
        x: DMatrix::from_column_slice(n_in, t_len, &x.data),
        targets: DMatrix::from_column_slice(n_out, t_len, &y.data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Result<Workload, WorkloadError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bench");
        load_npz(&path(&dir, name), name)
    }

    #[test]
    fn the_seed_workload_has_the_peers_shapes_and_first_values() {
        let w = load("seed").unwrap();
        assert_eq!(w.dims(), (4, 6, 1, 50));
        // Values printed by numpy: np.load('seed.npz')['W_xh'][0, 1] and [3, 2],
        // ['X'][1, 0] and [7, 3], ['Y'][9, 0].
        assert_eq!(w.rnn.params.w_xh[(0, 1)], 0.4108090717505792);
        assert_eq!(w.rnn.params.w_xh[(3, 2)], -0.24105965633998913);
        assert_eq!(w.x[(0, 1)], -0.03557522360132692);
        assert_eq!(w.x[(3, 7)], -0.23915146022693534);
        assert_eq!(w.targets[(0, 9)], 0.9268052023585862);
        let z = load("medium").unwrap();
        assert_eq!(z.dims(), (32, 128, 16, 100));
        assert_eq!(z.rnn.params.b_h.as_ref().unwrap().len(), 128);
        assert!(w.rnn.params.b_y.as_ref().unwrap().iter().all(|&b| b == 0.0));
    }

    #[test]
    fn the_losses_are_the_numpy_peers_losses() {
        // numpy_rnn.RNN(load_data(w)).loss_only(), printed with repr().
        for (name, numpy) in [
            ("seed", 2.3068845777240243),
            ("small", 3.287413131898812),
            ("medium", 70.89153089893232),
        ] {
            let w = load(name).unwrap();
            let ours = w.rnn.loss(&w.x, &w.targets);
            approx::assert_relative_eq!(ours, numpy, max_relative = 1e-13);
        }
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let e = load_npz(Path::new("/nonexistent/x.npz"), "x").unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.npz: "), "{e}");
    }
}
