//! `summary.json`: every metric the narrative quotes, machine-readable. One
//! object: the run's header, then each experiment's keys
//! ([`super::experiments::Experiment::summary`]) in list order.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::training::{spread, RunResult};
use super::variants::Variant;
use super::Results;
use crate::train::{LearningRate, LossMetrics};

/// A key of `summary.json` and its value, already serialised (pretty, at the
/// indentation of a top-level key).
pub(crate) type Field = (&'static str, Box<RawValue>);

/// The field `key: value`.
///
/// # Errors
/// When `value` cannot be serialised.
pub(crate) fn field(key: &'static str, value: &impl Serialize) -> Result<Field, serde_json::Error> {
    // Indent the value's own lines by one level, as if it were written in
    // place (JSON strings hold no raw newlines, so only the layout changes).
    let text = serde_json::to_string_pretty(value)?.replace('\n', "\n  ");
    Ok((key, RawValue::from_string(text)?))
}

/// An object of fields, in their order.
struct Object(Vec<Field>);

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// What wrote the report: `rnn-gradcheck 0.1.0 diagnose report`.
pub(crate) fn generator() -> String {
    format!(
        "rnn-gradcheck {} diagnose report",
        env!("CARGO_PKG_VERSION")
    )
}

/// `summary.json`, pretty-printed, with a final newline.
///
/// # Errors
/// When a value cannot be serialised.
pub(crate) fn json(r: &Results) -> Result<Vec<u8>, serde_json::Error> {
    let p = &r.plan;
    let mut fields = vec![
        field("generator", &generator())?,
        field("seed", &p.options.seed)?,
        field("quick", &p.options.quick)?,
        field("seeds", &p.seeds)?,
        field(
            "dataset",
            &"the question's data, reconstructed (fixtures/triangle_wave.csv): 50 samples, \
              inputs [1, 1, 1, w_i], target w_(i+1), where w is the triangle wave 0.1, 0.2, \
              …, 0.9, 0.8, …, 0.1 (period 16)",
        )?,
        field(
            "initial_weights",
            &"what the question's init_weights draws after np.random.seed(s): AB, \
              BC, B_RNN from np.random.randn (numpy's generator reproduced bit for \
              bit); seed 0 is fixtures/original/initial_weights.txt",
        )?,
    ];
    for e in &r.experiments {
        fields.extend(e.summary()?);
    }
    let mut json = serde_json::to_vec_pretty(&Object(fields))?;
    json.push(b'\n');
    Ok(json)
}

/// The metrics of one full-sequence run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct RunSummary {
    /// The gradient.
    pub(crate) variant: Variant,
    /// The seed of the initial weights.
    pub(crate) seed: u32,
    /// The schedule.
    pub(crate) lr: LearningRate,
    /// The loss at epoch 0.
    pub(crate) initial_loss: f64,
    /// The metrics.
    #[serde(flatten)]
    pub(crate) metrics: LossMetrics,
}

impl RunSummary {
    /// The summary of one run.
    pub(crate) fn of(run: &RunResult) -> Self {
        RunSummary {
            variant: run.job.variant,
            seed: run.job.seed,
            lr: run.job.lr,
            initial_loss: run.losses[0],
            metrics: run.metrics,
        }
    }
}

/// Medians over seeds of the metrics of one set of runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct MedianSummary {
    /// The set: a variant's name, or `lr=…` for the question's code.
    pub(crate) name: String,
    /// Median of `min_loss`.
    pub(crate) min_loss: f64,
    /// Median of `final_loss`.
    pub(crate) final_loss: f64,
    /// Median of `fraction_up`.
    pub(crate) fraction_up: f64,
    /// Median of `oscillation_amplitude`.
    pub(crate) oscillation_amplitude: f64,
    /// Median of `total_rise`.
    pub(crate) total_rise: f64,
    /// Seeds whose loss never went up after the warm-up.
    pub(crate) monotone_seeds: usize,
    /// Seeds.
    pub(crate) seeds: usize,
}

impl MedianSummary {
    /// The medians of `metrics`, one per seed.
    pub(crate) fn of<'a>(
        name: String,
        metrics: impl Iterator<Item = &'a LossMetrics> + Clone,
    ) -> Self {
        let med = |f: fn(&LossMetrics) -> f64| spread(metrics.clone().map(f)).0;
        MedianSummary {
            name,
            min_loss: med(|m| m.min_loss),
            final_loss: med(|m| m.final_loss),
            fraction_up: med(|m| m.fraction_up),
            oscillation_amplitude: med(|m| m.oscillation_amplitude),
            total_rise: med(|m| m.total_rise),
            monotone_seeds: metrics.clone().filter(|m| m.fraction_up == 0.0).count(),
            seeds: metrics.count(),
        }
    }

    /// The set called `name` among `medians`.
    ///
    /// # Panics
    /// If there is none.
    pub(crate) fn find<'a>(medians: &'a [MedianSummary], name: &str) -> &'a MedianSummary {
        medians
            .iter()
            .find(|m| m.name == name)
            .expect("every set is summarised")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_in_place_as_one_pretty_object() {
        #[derive(serde::Serialize)]
        struct Whole {
            a: Vec<(u32, f64)>,
            b: Inner,
        }
        #[derive(Clone, Copy, serde::Serialize)]
        struct Inner {
            x: Option<f64>,
            y: f64,
        }
        let inner = Inner {
            x: None,
            y: f64::NAN,
        };
        let a = vec![(1, 0.5), (2, 1e-300)];
        let fields = vec![field("a", &a).unwrap(), field("b", &inner).unwrap()];
        assert_eq!(
            serde_json::to_string_pretty(&Object(fields)).unwrap(),
            serde_json::to_string_pretty(&Whole { a, b: inner }).unwrap()
        );
    }
}
