//! Tests of the kernels: accuracy of the sigmoid, and bit-identity across
//! instruction sets and layouts.

use super::sigmoid::{exp_nonpositive, pow2, INV_FACT, LN2_HI, LN2_LO, LOG2E};
use super::*;
use crate::activation::Activation;

fn specials() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1e-300,
        -1e-300,
        1e-17,
        0.5,
        -0.5,
        1.0,
        -1.0,
        36.0,
        -36.0,
        708.0,
        -708.0,
        709.9,
        -709.9,
        744.0,
        -744.0,
        745.2,
        -745.2,
        800.0,
        -800.0,
        1e300,
        -1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
    ];
    // A dense sweep and a pseudo-random one (fixed LCG).
    v.extend((-4000..=4000).map(|i| f64::from(i) / 100.0));
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
        v.push((u - 0.5) * 1500.0);
    }
    v
}

#[test]
fn our_sigmoid_is_within_two_ulps_of_the_reference_and_exact_at_the_edges() {
    for a in specials() {
        let ours = sigmoid(a);
        let reference = crate::activation::sigmoid(a);
        if reference == 0.0 || ours == 0.0 {
            // Deep in the subnormal tail both are 0 or within a few subnormal steps.
            assert!(ours.abs() < 1e-320 && reference.abs() < 1e-320, "{a}");
            continue;
        }
        let ulps = (ours.to_bits() as i64 - reference.to_bits() as i64).abs();
        let tail = reference < f64::MIN_POSITIVE;
        assert!(
            ulps <= 2 || tail,
            "sigmoid({a}): {ours} vs {reference} ({ulps} ulps)"
        );
    }
    assert_eq!(sigmoid(0.0), 0.5);
    assert_eq!(sigmoid(f64::INFINITY), 1.0);
    assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
    assert!(sigmoid(f64::NAN).is_nan());
}

#[test]
fn exp_matches_the_standard_library_to_an_ulp() {
    let mut worst = 0;
    for i in 0..=74_500 {
        let x = -f64::from(i) / 100.0;
        let (ours, std) = (exp_nonpositive(x), x.exp());
        if std < f64::MIN_POSITIVE {
            assert!((ours - std).abs() <= 2.0 * 4.9e-324, "{x}");
            continue;
        }
        worst = worst.max((ours.to_bits() as i64 - std.to_bits() as i64).abs());
    }
    assert!(worst <= 1, "worst {worst} ulps");
}

#[test]
fn a_deliberately_wrong_exp_polynomial_would_be_caught() {
    // Negative control for the test above: dropping the last Taylor term
    // (degree 12 instead of 13) is off by more than an ulp somewhere.
    let truncated = |x: f64| {
        let n = (x * LOG2E).round_ties_even();
        let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
        let mut p = INV_FACT[11];
        for k in (0..11).rev() {
            p = p.mul_add(r, INV_FACT[k]);
        }
        p * pow2(n)
    };
    let worst = (0..=70_000)
        .map(|i| -f64::from(i) / 100.0)
        .map(|x| (truncated(x).to_bits() as i64 - x.exp().to_bits() as i64).abs())
        .max()
        .unwrap();
    assert!(worst > 1, "worst {worst}");
}

/// Every multiversioned kernel gives the same bits on both instruction sets.
#[test]
fn kernels_are_bit_identical_across_instruction_sets() {
    let v = specials();
    let (m, n) = (23, 19);
    let a: Vec<f64> = (0..m * n).map(|i| v[(i * 37) % v.len()] / 300.0).collect();
    let x: Vec<f64> = (0..n).map(|i| v[(i * 101 + 5) % v.len()] / 50.0).collect();
    let mut y1 = vec![0.0; m];
    gemv(Isa::Portable, m, n, &a, &x, &mut y1);
    for isa in Isa::all_supported() {
        for act in Activation::ALL {
            let mut o1 = vec![0.0; v.len()];
            let mut o2 = vec![0.0; v.len()];
            act_add(Isa::Portable, act, &v, Some(&v), &mut o1);
            act_add(isa, act, &v, Some(&v), &mut o2);
            assert!(o1.iter().zip(&o2).all(|(p, q)| p.to_bits() == q.to_bits()));
            act_add_scalar(Isa::Portable, act, &v, 0.25, &mut o1);
            act_add_scalar(isa, act, &v, 0.25, &mut o2);
            assert!(o1.iter().zip(&o2).all(|(p, q)| p.to_bits() == q.to_bits()));
            let mut s1 = vec![0.5; v.len()];
            let mut s2 = vec![0.5; v.len()];
            accumulate_loss_row(Isa::Portable, act, &v, Some(0.1), 0.3, &mut s1);
            accumulate_loss_row(isa, act, &v, Some(0.1), 0.3, &mut s2);
            assert!(s1.iter().zip(&s2).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
        let mut y2 = vec![0.0; m];
        gemv(isa, m, n, &a, &x, &mut y2);
        assert_eq!(y1, y2);
    }
    // gemv is the plain chain.
    for (i, yi) in y1.iter().enumerate() {
        let s = (0..n).fold(0.0f64, |s, k| a[k * m + i].mul_add(x[k], s));
        assert_eq!(s.to_bits(), yi.to_bits());
    }
}

#[test]
fn the_panel_gemv_is_gemv_bit_for_bit() {
    for (rows, n) in [(6, 6), (8, 3), (37, 29), (128, 128)] {
        let m = abt_rows(rows);
        let a: Vec<f64> = (0..rows * n)
            .map(|i| ((i * 7919) % 97) as f64 / 31.0 - 1.5)
            .collect();
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.77).sin()).collect();
        let mut packed = vec![f64::NAN; m * n];
        pack_rows8(rows, n, |i, k| a[k * rows + i], &mut packed);
        let mut y = vec![0.0; rows];
        gemv(Isa::Portable, rows, n, &a, &x, &mut y);
        for isa in Isa::all_supported() {
            let mut yp = vec![f64::NAN; m];
            gemv_panels(isa, m, n, &packed, &x, &mut yp);
            assert!(y.iter().zip(&yp).all(|(p, q)| p.to_bits() == q.to_bits()));
            assert!(yp[rows..].iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn the_packed_product_equals_gemv_column_by_column() {
    let (m, k, n) = (13, 11, 2 * LANE_MULTIPLE);
    let a: Vec<f64> = (0..m * k)
        .map(|i| ((i * 7919) % 97) as f64 / 31.0 - 1.5)
        .collect();
    let bm: Vec<f64> = (0..k * n)
        .map(|i| ((i * 104_729) % 89) as f64 / 17.0 - 2.5)
        .collect();
    let mut packed = Vec::new();
    for isa in Isa::all_supported() {
        pack_panels(isa, m, k, |i, p| a[p * m + i], &mut packed);
        let mut c = vec![f64::NAN; padded_rows(isa, m) * n];
        gemm_packed(isa, k, &packed, &bm, n, n, &mut c, n);
        for q in 0..n {
            let col: Vec<f64> = (0..k).map(|p| bm[p * n + q]).collect();
            let mut y = vec![0.0; m];
            gemv(Isa::Portable, m, k, &a, &col, &mut y);
            for i in 0..m {
                assert_eq!(c[i * n + q].to_bits(), y[i].to_bits(), "{isa:?} ({i}, {q})");
            }
        }
    }
}

#[test]
fn gemm_abt_is_the_sum_of_outer_products() {
    for (n, kk) in (1..=9).map(|n| (n, 5)).chain([(5, 300)]) {
        let m = 16;
        let a: Vec<f64> = (0..m * kk).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * kk).map(|i| (i as f64 * 0.91).cos()).collect();
        for isa in Isa::all_supported() {
            let mut c = vec![f64::NAN; m * n];
            gemm_abt(isa, m, n, kk, &a, m, &b, n, &mut c);
            for i in 0..m {
                for j in 0..n {
                    // Sums in another order: equal to 1e-14 of Σ |terms|.
                    let s: f64 = (0..kk).map(|t| a[t * m + i] * b[t * n + j]).sum();
                    let size: f64 = (0..kk).map(|t| (a[t * m + i] * b[t * n + j]).abs()).sum();
                    assert!(
                        (c[j * m + i] - s).abs() <= 1e-14 * size,
                        "{} vs {s}",
                        c[j * m + i]
                    );
                }
            }
        }
    }
}

/// The heads' kernels give the same bits on every instruction set, and the
/// lanes' softmax is the scalar one lane by lane.
#[test]
fn the_heads_are_bit_identical_across_instruction_sets_and_lanes() {
    let v = specials();
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.abs() < 50.0).collect();
    let (n_out, t_len, lanes) = (7, 40, 16);
    let z: Vec<f64> = (0..n_out * t_len)
        .map(|i| finite[(i * 131 + 7) % finite.len()])
        .collect();
    let targets: Vec<f64> = (0..n_out * t_len)
        .map(|i| f64::from(i % n_out == (i / n_out) % n_out))
        .collect();
    let weights: Vec<f64> = (0..t_len).map(|t| f64::from(t % 3 != 0) * 0.3).collect();
    let mut dz1 = vec![0.0; n_out * t_len];
    let mut dz2 = dz1.clone();
    for isa in Isa::all_supported() {
        for ce in [false, true] {
            for w in [None, Some(&weights[..])] {
                let a = sequence_loss(Isa::Portable, ce, n_out, &z, &targets, w);
                let b = sequence_loss(isa, ce, n_out, &z, &targets, w);
                assert_eq!(a.to_bits(), b.to_bits());
                for act in [Activation::Softmax, Activation::Tanh] {
                    output_delta(Isa::Portable, act, n_out, &z, &targets, w, &mut dz1, n_out);
                    output_delta(isa, act, n_out, &z, &targets, w, &mut dz2, n_out);
                    assert!(dz1
                        .iter()
                        .zip(&dz2)
                        .all(|(p, q)| p.to_bits() == q.to_bits()));
                }
            }
        }
        // Lanes: lane q holds step q's column, row-major n_out × lanes.
        let bias: Vec<f64> = (0..n_out).map(|o| 0.1 * o as f64 - 0.2).collect();
        let mut rows = vec![0.0; n_out * lanes];
        for q in 0..lanes {
            for o in 0..n_out {
                rows[o * lanes + q] = z[q * n_out + o];
            }
        }
        let target = &targets[3 * n_out..4 * n_out];
        let (mut m, mut lse, mut c) = (vec![0.0; lanes], vec![0.0; lanes], vec![0.0; lanes]);
        log_likelihood_lanes(
            isa,
            n_out,
            &rows,
            lanes,
            Some(&bias),
            target,
            &mut m,
            &mut lse,
            &mut c,
        );
        for (q, c) in c.iter().enumerate() {
            let column: Vec<f64> = (0..n_out).map(|o| z[q * n_out + o] + bias[o]).collect();
            assert_eq!(
                c.to_bits(),
                log_likelihood(&column, target).to_bits(),
                "lane {q}"
            );
        }
    }
}

/// Our cross-entropy agrees with the model's (`model::softmax_cross_entropy`,
/// the standard library's `exp`) to rounding, also where a probability
/// underflows; and the delta is `p − target`.
#[test]
fn our_cross_entropy_is_the_models_to_rounding() {
    let columns = [
        vec![0.3, -1.2, 2.5, 0.0],
        vec![700.0, -700.0, 0.0, 1.0],
        vec![-1e-3, 1e-3, 5.0, 5.0],
        vec![40.0, -40.0, 39.0, 0.5],
    ];
    for (k, z) in columns.iter().enumerate() {
        let target: Vec<f64> = (0..4).map(|o| f64::from(o == k % 4)).collect();
        let zm = nalgebra::DMatrix::from_column_slice(4, 1, z);
        let tm = nalgebra::DMatrix::from_column_slice(4, 1, &target);
        let (p, loss) = crate::model::softmax_cross_entropy(&zm, &tm);
        let ours = sequence_loss(Isa::Portable, true, 4, z, &target, None);
        assert!(
            (ours - loss).abs() <= 4.0 * f64::EPSILON * (loss.abs() + z[k % 4].abs()),
            "{ours} vs {loss}"
        );
        let mut dz = vec![0.0; 4];
        output_delta(
            Isa::Portable,
            Activation::Softmax,
            4,
            z,
            &target,
            None,
            &mut dz,
            4,
        );
        for o in 0..4 {
            let want = p[o] - target[o];
            assert!(
                (dz[o] - want).abs() <= 4.0 * f64::EPSILON,
                "{} vs {want}",
                dz[o]
            );
        }
    }
}
