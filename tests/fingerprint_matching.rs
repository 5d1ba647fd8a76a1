//! Fingerprint matching, before the bug catalogue is wired in: with
//! truncated-BPTT gradients standing in for catalogue variants, a user whose
//! numbers come from one variant is matched to that variant and no other.
//! (Once the catalogue is part of the crate, the same property runs over
//! `diagnosis::fingerprint::catalogue`.)

mod common;

use proptest::prelude::*;
use rnn_gradcheck::case::{Case, Format, Layout, Param, UserGrads};
use rnn_gradcheck::diagnosis::fingerprint::{catalogue, Candidate};
use rnn_gradcheck::diagnosis::{diagnose, fingerprint_against, DiagnoseOptions};
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::{bptt_truncated, Gradients, Truncation};

fn user_grads(g: &Gradients) -> UserGrads {
    let col =
        |v: &nalgebra::DVector<f64>| nalgebra::DMatrix::from_column_slice(v.len(), 1, v.as_slice());
    let mut out = vec![
        (Param::WXh, g.w_xh.clone()),
        (Param::WHh, g.w_hh.clone()),
        (Param::WHy, g.w_hy.clone()),
        (Param::H0, col(&g.h_0)),
    ];
    if let Some(b) = &g.b_h {
        out.push((Param::BH, col(b)));
    }
    if let Some(b) = &g.b_y {
        out.push((Param::BY, col(b)));
    }
    UserGrads(out)
}

proptest! {
    #![proptest_config(common::config(64, "proptest-regressions/fingerprint_matching.txt"))]

    #[test]
    fn each_stand_in_variant_is_identified_from_its_own_gradients(
        seed in any::<u64>(),
        n_in in 1usize..=5,
        n_h in 2usize..=8,
        t_len in 4usize..=12,
        pick in 0usize..3,
    ) {
        let (rnn, x, y) = random_problem(seed, n_in, n_h, 1, t_len, 1.5);
        let trace = rnn.forward(&x, &y);
        let windows = [Truncation::Window(1), Truncation::Window(2), Truncation::Full];
        let candidates: Vec<Candidate> = windows
            .iter()
            .map(|w| Candidate {
                name: format!("{w:?}"),
                grads: bptt_truncated(&rnn, &x, &y, &trace, *w),
            })
            .collect();
        let case = Case {
            path: "stand-in".into(),
            format: Format::Json,
            layout: Layout::Column,
            rnn: rnn.clone(),
            inputs: x.clone(),
            targets: y.clone(),
            grads: Some(user_grads(&candidates[pick].grads)),
            f32_evidence: None,
        };
        let m = fingerprint_against(&case, &candidates, &DiagnoseOptions::default());
        prop_assert_eq!(m, vec![candidates[pick].name.clone()]);
    }
}

#[test]
fn without_the_catalogue_matches_are_unavailable_not_empty() {
    let (rnn, x, y) = random_problem(1, 2, 3, 1, 4, 1.0);
    assert!(catalogue(&rnn, &x, &y).is_none());
    let case = rnn_gradcheck::case::load("fixtures/cases/row_question.json").unwrap();
    let d = diagnose(case, &DiagnoseOptions::default()).unwrap();
    assert_eq!(d.matches, None);
    assert!(d.matches_note.unwrap().contains("not part of this build"));
}
