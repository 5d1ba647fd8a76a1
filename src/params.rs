//! Parameters as named real blocks: the [`Parameters`] trait every checker
//! reads them through, the simplest implementation ([`NamedBlocks`]), and
//! the one shape check every gradient check starts with
//! ([`matching_layout`]): does the claimed gradient have the parameters'
//! blocks (same names, shapes and order)?

/// One named block of parameters (a matrix; a vector is a `rows × 1` block),
/// stored column-major as nalgebra stores it.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The block's name, e.g. `"W_hh"`.
    pub name: &'a str,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The `rows · cols` values, column-major: entry `(i, j)` is `values[i + j·rows]`.
    pub values: &'a [f64],
}

/// Anything whose parameters can be seen as named real blocks.
pub trait Parameters {
    /// The blocks, in a fixed order.
    fn blocks(&self) -> Vec<Block<'_>>;

    /// Mutable access to entry `index` (column-major) of block `block`.
    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64;
}

/// Named blocks owned as nalgebra matrices: the simplest [`Parameters`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NamedBlocks(pub Vec<(String, nalgebra::DMatrix<f64>)>);

impl Parameters for NamedBlocks {
    fn blocks(&self) -> Vec<Block<'_>> {
        self.0
            .iter()
            .map(|(name, m)| Block {
                name,
                rows: m.nrows(),
                cols: m.ncols(),
                values: m.as_slice(),
            })
            .collect()
    }
    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        &mut self.0[block].1.as_mut_slice()[index]
    }
}

/// The error of a check that cannot start: the claimed gradient does not
/// have the parameters' blocks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Different numbers of blocks.
    #[error("the gradient has {found} blocks, the parameters have {expected}")]
    BlockCount {
        /// Parameter blocks.
        expected: usize,
        /// Gradient blocks.
        found: usize,
    },
    /// A block differs in name or shape.
    #[error("gradient block {found_name:?} ({found_rows}×{found_cols}) does not match parameter block {name:?} ({rows}×{cols})")]
    BlockMismatch {
        /// Parameter block name.
        name: String,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
        /// Gradient block name.
        found_name: String,
        /// Its rows.
        found_rows: usize,
        /// Its columns.
        found_cols: usize,
    },
}

/// One block's layout: `(name, rows, cols)`.
pub type BlockLayout = (String, usize, usize);

/// The blocks of `params` as `(name, rows, cols)`, after checking that
/// `grad` has exactly these blocks in this order.
///
/// # Errors
/// [`CheckError::BlockCount`] or [`CheckError::BlockMismatch`], as
/// [`crate::checker::check_central`] reports them.
pub fn matching_layout<P, G>(params: &P, grad: &G) -> Result<Vec<BlockLayout>, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
{
    let layout: Vec<BlockLayout> = params
        .blocks()
        .iter()
        .map(|b| (b.name.to_string(), b.rows, b.cols))
        .collect();
    let grad_blocks = grad.blocks();
    if grad_blocks.len() != layout.len() {
        return Err(CheckError::BlockCount {
            expected: layout.len(),
            found: grad_blocks.len(),
        });
    }
    for ((name, rows, cols), g) in layout.iter().zip(&grad_blocks) {
        if g.name != name || g.rows != *rows || g.cols != *cols {
            return Err(CheckError::BlockMismatch {
                name: name.clone(),
                rows: *rows,
                cols: *cols,
                found_name: g.name.to_string(),
                found_rows: g.rows,
                found_cols: g.cols,
            });
        }
    }
    Ok(layout)
}
