//! The one shape check every gradient check starts with: does the claimed
//! gradient have the parameters' blocks (same names, shapes and order)?

use crate::checker::{CheckError, Parameters};

/// One block's layout: `(name, rows, cols)`.
pub type BlockLayout = (String, usize, usize);

/// The blocks of `params` as `(name, rows, cols)`, after checking that
/// `grad` has exactly these blocks in this order.
///
/// # Errors
/// [`CheckError::BlockCount`] or [`CheckError::BlockMismatch`], as
/// [`crate::checker::check`] reports them.
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
