//! Fast paths: allocation-free forward + BPTT, and a full central-difference
//! check of an [`Rnn`](crate::Rnn) running near the CPU's peak.
//!
//! * [`Workspace`]: the loss and its full-BPTT gradient into reusable
//!   buffers (training loops call it every epoch).
//! * [`check_central`]: the same [`CheckReport`](crate::CheckReport) as
//!   [`checker::check_central`](crate::checker::check_central) on every entry, many times
//!   faster: output-layer entries need only the output layer, perturbed
//!   recurrences run in batches as matrix-matrix products, on every core.
//! * [`check_projections`]: `k` random directions, `2k` forward passes
//!   whatever the size, escalating to [`check_central`] to localise a failure (and
//!   what it can miss: sparse errors).
//!
//! # One operation sequence per number
//! Every kernel computes each output element by a fixed sequence of IEEE-754
//! operations, independent of blocking, vector width and thread count:
//!
//! * a product-sum `Σ_k a_k b_k` is a chain of fused multiply-adds in
//!   ascending `k`, starting from `+0.0`: `s ← fma(a_k, b_k, s)`;
//! * the sigmoid is our own (`exp` from `+ − × ÷`, `fma`, `floor`,
//!   round-half-even and exponent bits: operations IEEE-754 rounds exactly,
//!   so scalar and vector code agree bit for bit; within 2 ulps of
//!   [`crate::activation::sigmoid`] outside the subnormal tail, as the
//!   kernels' unit tests assert); `tanh` is the standard library's;
//! * the loss is `½ Σ_t Σ_o d²` as one fma chain, `t` outer, `o` inner;
//!   with step weights `w_t` ([`crate::Rnn::step_weights`]) it is `½ S` with
//!   `S ← fma(w_t, r_t, S)` over the steps with `w_t ≠ 0` (in ascending `t`),
//!   `r_t = Σ_o d²` one fma chain per step (a step of weight 0 is skipped,
//!   as the plain model skips it);
//! * a softmax head's cross-entropy is `0 − S` with `S ← fma(w_t, c_t, S)`
//!   (`w_t = 1` without weights), `c_t = Σ_o target_o (z_o − m_t − lse_t)`
//!   the stable log-likelihood of [`crate::model::softmax_cross_entropy`]:
//!   `m_t = max_o z_o`, `lse_t = ln Σ_o e^{z_o − m_t}` with our `exp` (its
//!   arguments are `≤ 0`, the sigmoid's kernel) and the standard library's
//!   `ln`, the sums in ascending `o`.
//!
//! So results are bit-identical across instruction sets ([`Isa`]) and thread
//! counts, and the fast check's loss values are bit-identical to separate
//! forward passes with [`Workspace::loss`]. Against the plain
//! [`Rnn::forward`](crate::Rnn::forward) (nalgebra's sums, the standard
//! library's `exp`) they agree to rounding: a few ulps of the loss.

mod check;
mod kernels;
mod lanes;
pub mod projection;
#[doc(hidden)] // the benchmark harness's problems (examples/bench_peers.rs, benches/)
pub mod workloads;
mod workspace;

pub use check::{check_batch, check_batch_with_isa, check_central, check_with_isa};
pub use kernels::Isa;
pub use projection::{
    check_projections, projection_direction, DirectionCheck, ProjectionOptions, ProjectionReport,
};
pub use workspace::{gradient_step, Workspace};
