//! BPTT against values worked out by hand for a one-unit network and T = 1.

use approx::assert_relative_eq;
use nalgebra::{dmatrix, dvector, DMatrix};
use rnn_gradcheck::{bptt, Activation, Params, Rnn};

/// n_in = n_h = n_out = 1, no biases, sigmoid/sigmoid:
/// w_xh = 0.5, w_hh = 0.3, w_hy = 2, h_0 = 0.4, x_1 = 1, target_1 = 1.
fn one_unit() -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let params = Params {
        w_xh: dmatrix![0.5],
        w_hh: dmatrix![0.3],
        w_hy: dmatrix![2.0],
        b_h: None,
        b_y: None,
        h_0: dvector![0.4],
    };
    (
        Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid),
        dmatrix![1.0],
        dmatrix![1.0],
    )
}

#[test]
fn forward_by_hand() {
    let (rnn, x, y) = one_unit();
    let tr = rnn.forward(&x, &y);
    // a_1 = w_xh x_1 + w_hh h_0 = 0.5 + 0.3 · 0.4 = 0.62
    assert_relative_eq!(tr.a[(0, 0)], 0.62, max_relative = 1e-15);
    // h_1 = σ(0.62) = 0.650218548573827
    assert_relative_eq!(tr.h[(0, 1)], 0.650_218_548_573_827_1, max_relative = 1e-15);
    assert_eq!(tr.h[(0, 0)], 0.4, "column 0 of h is h_0");
    // z_1 = w_hy h_1 = 1.300437097147654, y_1 = σ(z_1) = 0.78590853658597
    assert_relative_eq!(tr.z[(0, 0)], 1.300_437_097_147_654_2, max_relative = 1e-15);
    assert_relative_eq!(tr.y[(0, 0)], 0.785_908_536_585_970_4, max_relative = 1e-15);
    // L = ½ (y_1 − 1)² = 0.0229175773533804
    assert_relative_eq!(tr.loss, 0.022_917_577_353_380_392, max_relative = 1e-14);
}

#[test]
fn backward_by_hand() {
    let (rnn, x, y) = one_unit();
    let g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    // dz_1 = (y_1 − 1) · y_1 (1 − y_1) = −0.0360222393597819
    // dW_hy = dz_1 h_1 = −0.0234223281928964
    assert_relative_eq!(
        g.w_hy[(0, 0)],
        -0.023_422_328_192_896_39,
        max_relative = 1e-13
    );
    // da_1 = (w_hy dz_1) · h_1 (1 − h_1) = −0.0163853919021829
    // dW_xh = da_1 x_1 = −0.0163853919021829
    assert_relative_eq!(
        g.w_xh[(0, 0)],
        -0.016_385_391_902_182_935,
        max_relative = 1e-13
    );
    // dW_hh = da_1 h_0 = −0.0065541567608732
    assert_relative_eq!(
        g.w_hh[(0, 0)],
        -0.006_554_156_760_873_175,
        max_relative = 1e-13
    );
    // dh_0 = w_hh da_1 = −0.0049156175706549
    assert_relative_eq!(g.h_0[0], -0.004_915_617_570_654_881, max_relative = 1e-13);
    // No biases: none reported.
    assert!(g.b_h.is_none() && g.b_y.is_none());
}

#[test]
fn biases_get_the_sum_of_their_deltas() {
    // With zero biases present the forward pass is unchanged, and with T = 1
    // db_h = Σ_t da_t = da_1 and db_y = Σ_t dz_t = dz_1, the hand values of
    // `backward_by_hand` (checked against them, not against BPTT's own
    // dW_xh and dW_hy, which share any error in da and dz).
    let (mut rnn, x, y) = one_unit();
    rnn.params.b_h = Some(dvector![0.0]);
    rnn.params.b_y = Some(dvector![0.0]);
    let g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    // da_1 = (w_hy dz_1) · h_1 (1 − h_1) = −0.0163853919021829
    assert_relative_eq!(
        g.b_h.unwrap()[0],
        -0.016_385_391_902_182_94,
        max_relative = 1e-13
    );
    // dz_1 = (y_1 − 1) · y_1 (1 − y_1) = −0.0360222393597819
    assert_relative_eq!(
        g.b_y.unwrap()[0],
        -0.036_022_239_359_781_93,
        max_relative = 1e-13
    );
}
