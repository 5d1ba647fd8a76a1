//! The backward passes the experiments compare: the correct BPTT and the bug
//! catalogue's wrong ones ([`Backward`]), and the four rows of the ablation
//! ([`Variant`]): the question's backward pass, each of its two defects
//! fixed alone, and both fixed.

pub use crate::bugs::Backward;
use crate::bugs::Bug;
use crate::plot::{Rgb, PALETTE};

impl serde::Serialize for Backward {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A row of the ablation: which of the question's two defects are fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Variant {
    /// Both defects: the catalogue's [`Bug::Original`], the question's
    /// backward pass on a whole sequence.
    Original,
    /// The sigmoid derivative taken at the full pre-activation `a_t`, still
    /// nothing carried back in time: [`Bug::DhNextDropped`] (one-step
    /// truncated BPTT).
    PreactivationFixed,
    /// Propagation through time restored, the derivative still at the wrong
    /// pre-activations: [`Bug::WrongPreActivation`].
    TimeFixed,
    /// Both fixed: full BPTT, the true gradient.
    Correct,
}

impl Variant {
    /// Every variant, from the original to the correct gradient.
    pub(crate) const ALL: [Variant; 4] = [
        Variant::Original,
        Variant::PreactivationFixed,
        Variant::TimeFixed,
        Variant::Correct,
    ];

    /// The backward pass of this row.
    pub(crate) fn backward(self) -> Backward {
        match self {
            Variant::Original => Backward::Bug(Bug::Original),
            Variant::PreactivationFixed => Backward::Bug(Bug::DhNextDropped),
            Variant::TimeFixed => Backward::Bug(Bug::WrongPreActivation),
            Variant::Correct => Backward::Correct,
        }
    }

    /// The name used in files (CSV columns, JSON).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::PreactivationFixed => "preactivation-fixed",
            Variant::TimeFixed => "time-fixed",
            Variant::Correct => "correct",
        }
    }

    /// A legend label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Variant::Original => "original: both defects",
            Variant::PreactivationFixed => "derivative fixed, time still dropped",
            Variant::TimeFixed => "time fixed, derivative still wrong",
            Variant::Correct => "both fixed: correct BPTT",
        }
    }

    /// The same colour for a variant in every figure.
    pub(crate) fn color(self) -> Rgb {
        match self {
            Variant::Original => PALETTE[1],
            Variant::PreactivationFixed => PALETTE[4],
            Variant::TimeFixed => PALETTE[3],
            Variant::Correct => PALETTE[0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bptt::{bptt, bptt_truncated};
    use crate::model::Gradients;
    use crate::original::{DerivativeAt, Original, Start};
    use crate::random::random_problem;
    use crate::train::GradientFn;

    fn close(a: &Gradients, b: &Gradients, blocks: &[&str]) {
        for name in blocks {
            let (x, y) = (a.block(name).unwrap(), b.block(name).unwrap());
            for (u, v) in x.iter().zip(y) {
                approx::assert_relative_eq!(u, v, max_relative = 1e-10, epsilon = 1e-13);
            }
        }
    }

    #[test]
    fn the_rows_are_the_defects_of_the_question_removed_one_at_a_time() {
        let weights = ["W_xh", "W_hh", "W_hy"];
        let (rnn, x, y) = random_problem(4, 3, 5, 2, 8, 1.0);
        let tr = rnn.forward(&x, &y);
        let g = |v: Variant| v.backward().gradient(&rnn, &x, &y);
        close(&g(Variant::Correct), &bptt(&rnn, &x, &y, &tr), &weights);
        close(
            &g(Variant::PreactivationFixed),
            &bptt_truncated(&rnn, &x, &y, &tr, crate::bptt::Truncation::Window(1)),
            &weights,
        );
        // The original row is the replica's own per-sequence gradient from a
        // carried state (the question's network: sigmoid, no biases).
        let nn = crate::report::data::initial_original(2, 0.01);
        let data = crate::report::data::dataset();
        let mut rnn = nn.rnn();
        rnn.params.h_0.fill(0.3);
        let carried = Original::from_rnn(&rnn, Start::Carried, 0.01).unwrap();
        let replica = carried
            .frozen_gradient(&data, DerivativeAt::AsWritten)
            .to_gradients();
        close(
            &Variant::Original
                .backward()
                .gradient(&rnn, &data.x, &data.targets),
            &replica,
            &weights,
        );
        // Negative control: the rows differ from each other.
        let gs: Vec<Gradients> = Variant::ALL
            .iter()
            .map(|v| v.backward().gradient(&rnn, &data.x, &data.targets))
            .collect();
        for i in 0..4 {
            for j in i + 1..4 {
                assert!((&gs[i].w_hh - &gs[j].w_hh).norm() > 1e-3 * gs[3].w_hh.norm());
            }
        }
    }

    #[test]
    fn names_round_trip_and_the_seam_returns_the_loss() {
        for b in Backward::all() {
            assert_eq!(b.name().parse::<Backward>(), Ok(b));
        }
        assert_eq!(Backward::all().len(), Bug::ALL.len() + 1);
        assert!("no-such".parse::<Backward>().is_err());
        let (rnn, x, y) = random_problem(1, 2, 3, 1, 4, 1.0);
        let mut grad = rnn.params.zeros_like();
        let loss = Backward::Bug(Bug::OutputErrorSign).loss_and_gradient(&rnn, &x, &y, &mut grad);
        assert_eq!(loss, rnn.loss(&x, &y));
        let correct = Backward::Correct.gradient(&rnn, &x, &y);
        approx::assert_relative_eq!(grad.w_hy, -correct.w_hy, max_relative = 1e-12);
    }
}
